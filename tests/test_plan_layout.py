"""The workflow's library modules that Snakemake reads while it plans: the results layout (finepseudo.layout),
the experiment plan and stage seeds (finepseudo.plan) and the memory model (finepseudo.resources), called
directly (no Snakemake)."""
from pathlib import Path

import pytest
import yaml

from finepseudo import layout, plan
from finepseudo.resources import mem_mb

ROOT = Path(__file__).resolve().parents[1]


def _config(*patches: dict) -> dict:
    def deep(base, patch):
        out = dict(base)
        for k, v in patch.items():
            out[k] = deep(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for p in patches:
        cfg = deep(cfg, p)
    return cfg


DEFAULT = _config()
TINY = _config(yaml.safe_load((ROOT / "config/test.yaml").read_text()))


def test_templates_are_the_workflow_paths():
    run = dict(dataset="synthdive", frac="10", seed="0")
    assert layout.fill(layout.RUN_DIR, method="pl", **run) == "results/synthdive/methods/pl/frac10_seed0"
    assert layout.fill(layout.ROUND_DIR, method="pl", round=2, **run) == "results/synthdive/methods/pl/frac10_seed0/round2"
    assert layout.fill(layout.AVML_FA, loss="av", init="gitdl", **run) == \
        "results/synthdive/alignability/frac10_seed0/avml_av_gitdl_fa.pt"
    assert layout.SHARD_INDEX == "results/{dataset}/frames/shard{shard}.status.tsv"
    assert layout.log("train_fe", "{sup}/" + layout.RUN) == "results/logs/{dataset}/train_fe/{sup}/frac{frac}_seed{seed}.log"
    assert layout.benchmark("pretrain_fe") == "results/benchmarks/pretrain_fe/{dataset}.tsv"
    assert layout.partial(layout.BASELINE_DIR, baseline="phi_a") == "results/{dataset}/baselines/phi_a/frac{frac}_seed{seed}"
    with pytest.raises(KeyError):
        layout.fill(layout.RUN_DIR, dataset="synthdive", frac="10")
    with pytest.raises(KeyError):
        layout.partial(layout.RUN_DIR, baseline="x")


def test_plan_grid():
    assert plan.fmt_percent(10) == "10" and plan.fmt_percent(2.5) == "2.5"
    runs = plan.runs(TINY)
    assert ("supervised_full", plan.FULL, "0") in runs and ("supervised_full", "50", "0") not in runs
    assert {m for m, _, _ in runs} == set(TINY["methods"])
    ow = _config(yaml.safe_load((ROOT / "config/test.yaml").read_text()), {"open_world": {"novel_classes": 1}})
    assert plan.methods(ow)[-1] == "finepseudo_no_filter"
    assert plan.open_world_delta(ow, "finepseudo") == ow["open_world"]["delta"]
    assert plan.open_world_delta(ow, "pl") is None and plan.open_world_delta(ow, "finepseudo_no_filter") is None
    assert plan.avml_variants(TINY) == [("av", "gitdl")]
    assert plan.uses_phi_a("fa_only") and not plan.uses_phi_a("pl") and not plan.uses_phi_a("supervised")
    assert plan.combine_rule(TINY, "finepseudo_mean") == "average"
    assert plan.calibrate_pe(TINY, "finepseudo_uncal") is False
    assert plan.trained_by("pl") == "retrain_fe" and plan.trained_by("supervised") == "train_fe"


def test_stage_seeds_keep_their_values():
    """The seeds the rules gave each stage before they were named in finepseudo.plan.STAGE_SEEDS."""
    cfg = {"seed": 5}
    assert plan.stage_seed(cfg, "pretrain_fe") == 5 + 7
    assert plan.stage_seed(cfg, "pretrain_gitdl") == 5 + 1
    assert plan.stage_seed(cfg, "fe_init", "3") == 5 + 3000
    assert plan.stage_seed(cfg, "train_alignability", 3) == 5 + 3000 + 2
    assert plan.stage_seed(cfg, "retrain_fe", "3", "2") == 5 + 3000 + 20 + 3
    assert plan.stage_seed(cfg, "retrain_fa", 3, 2) == 5 + 3000 + 20 + 4
    with pytest.raises(ValueError):
        plan.stage_seed(cfg, "retrain_fe", 3)
    with pytest.raises(ValueError):
        plan.stage_seed(cfg, "pretrain_fe", 3)


@pytest.mark.parametrize("cfg, expected", [
    # what Snakemake gave each rule's jobs (attempt 1) for the default and the tiny config
    (DEFAULT, {("fe", True): 1700, ("fe", False): 1600, ("ssl", True): 2300, ("fa", True): 1900, ("fa", False): 1600}),
    (TINY, {("fe", True): 1600, ("fe", False): 1600, ("ssl", True): 1600, ("fa", True): 1600, ("fa", False): 1600}),
])
def test_mem_mb_of_each_job_kind(cfg, expected):
    for (kind, train), mb in expected.items():
        assert mem_mb(cfg, kind, train) == mb, (kind, train)
        assert mem_mb(cfg, kind, train, attempt=2) == 2 * mb


def test_mem_mb_grows_with_processes_and_drops_activations_on_a_gpu():
    one = _config({"device": "cuda"})
    three = _config({"device": "cuda", "fe": {"gpus": 3}, "alignability": {"gpus": 3}})
    for kind in ("fe", "fa"):  # each process its own interpreter and batches in flight
        assert mem_mb(three, kind) >= 3 * mem_mb(one, kind) - 300
        assert mem_mb(three, kind, train=False) == mem_mb(one, kind, train=False)
    assert mem_mb(_config({"device": "cuda"}), "fe") < mem_mb(DEFAULT, "fe")
    with pytest.raises(ValueError):
        mem_mb(DEFAULT, "gpu")
