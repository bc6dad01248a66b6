from pathlib import Path

import pytest
import yaml

from finepseudo.config import ConfigError, load_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def test_default_and_test_configs_are_valid():
    for name in ("config/config.yaml", "config/test.yaml"):
        cfg = load_config(ROOT / name, SCHEMA)
        assert cfg["dataset"]["name"] == "synthdive"
        assert cfg["fe"]["clip_frames"] <= cfg["frames"]["num_frames"]


def test_defaults_fill_missing_sections():
    cfg = validate_config({}, SCHEMA)
    assert cfg["frames"]["on_error"] == "fail"
    assert cfg["methods"] == ["supervised", "supervised_full"]


def test_every_default_config_key_is_commented():
    """Each line of config/config.yaml that sets a key carries a comment (on it or the line above)."""
    lines = (ROOT / "config/config.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("- "):
            continue
        if ":" in s and "#" not in s:
            above = lines[i - 1].strip() if i else ""
            nested_block = s.endswith(":") or lines[i - 1].rstrip().endswith(":")
            assert above.startswith("#") or nested_block, f"config/config.yaml line {i + 1} has no comment: {s}"


@pytest.mark.parametrize(
    "patch, key, words",
    [
        ({"device": "gpu"}, "device", ["'auto'", "'cuda'"]),
        ({"frames": {"on_error": "ignore"}}, "frames.on_error", ["'fail'", "'skip'"]),
        ({"fe": {"lr": -1}}, "fe.lr", ["-1"]),
        ({"fe": {"learning_rate": 0.1}}, "fe", ["learning_rate", "allowed keys", "lr"]),
        ({"methods": ["supervised", "magic"]}, "methods.1", ["'magic'"]),
        ({"splits": {"label_percents": [0]}}, "splits.label_percents.0", ["0"]),
    ],
)
def test_bad_values_name_the_key_and_allowed_values(patch, key, words):
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for k, v in patch.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) else v
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    msg = str(err.value)
    assert f"config key '{key}'" in msg
    for w in words:
        assert w in msg


def test_synthdive_section_lists_every_generator_key():
    from finepseudo.data.synthdive import DEFAULT_CONFIG

    cfg = load_config(ROOT / "config/config.yaml", SCHEMA)
    assert set(cfg["synthdive"]) - {"seed"} == set(DEFAULT_CONFIG)
    schema = yaml.safe_load(SCHEMA.read_text())["properties"]["synthdive"]["properties"]
    assert set(schema) - {"seed"} == set(DEFAULT_CONFIG)


def test_effective_epochs_gives_small_labeled_sets_enough_steps():
    from finepseudo.models.steps import effective_epochs

    assert effective_epochs(420, 30, 16, 600) == 30  # 27 steps per epoch: 810 steps already
    assert effective_epochs(42, 30, 16, 600) == 200  # 3 steps per epoch
    assert effective_epochs(42, 30, 16, 0) == 30


def _deep(base: dict, patch: dict) -> dict:
    """``patch`` layered over ``base`` key by key, as ``snakemake --configfile`` layers a preset."""
    out = dict(base)
    for k, v in patch.items():
        out[k] = _deep(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def test_threads_default_is_the_default_configs():
    assert validate_config({}, SCHEMA)["threads"] == yaml.safe_load((ROOT / "config/config.yaml").read_text())["threads"]


@pytest.mark.parametrize("preset", sorted(p.stem for p in (ROOT / "config/presets").glob("*.yaml")))
def test_presets_pass_the_cross_key_checks(preset):
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    validate_config(_deep(base, yaml.safe_load((ROOT / f"config/presets/{preset}.yaml").read_text())), SCHEMA)


@pytest.mark.parametrize("patch, keys, words", [
    ({"fe": {"clip_frames": 40}}, ["fe.clip_frames", "frames.num_frames"],
     ["fe.clip_frames is 40", "stores only 32 frames", "raise frames.num_frames to at least 40"]),
    ({"fe": {"ssl": {"clip_frames": 33}}}, ["fe.ssl.clip_frames", "frames.num_frames"], ["fe.ssl.clip_frames is 33"]),
    ({"fe": {"ssl": {"segments": 64}}}, ["fe.ssl.segments", "frames.num_frames"], ["fe.ssl.segments is 64"]),
    ({"frames": {"num_frames": 8}}, ["alignability.num_frames", "frames.num_frames"],
     ["alignability.num_frames is 16", "fe.clip_frames is 16", "lower alignability.num_frames"]),
    ({"fe": {"augment": {"span": [0.9, 0.5]}}}, ["fe.augment.span"], ["lo must not exceed hi"]),
    ({"baselines": {"pixel_size": 64}}, ["baselines.pixel_size", "frames.size"],
     ["baselines.pixel_size is 64", "frames.size 48", "at most 48"]),
    ({"synthdive": {"idle_frames": [5, 0]}}, ["synthdive.idle_frames"], ["min must not exceed max"]),
    ({"synthdive": {"classes": [7, 8, 24], "novel_classes": [24]}}, ["synthdive.classes", "synthdive.novel_classes"],
     ["[24] are in both"]),
    ({"synthdive": {"classes": [7, 8]}, "open_world": {"novel_classes": 2}}, ["open_world.novel_classes"],
     ["SynthDive renders 2 classes", "at most 1"]),
    ({"splits": {"label_percents": [10, 1]}}, ["splits.label_percents", "hparams.val_per_class"],
     ["at 1 % labels each class gets 1 labeled video", "train_per_class 80", "hparams.val_per_class: 0"]),
])
def test_cross_key_problems_name_the_keys_and_what_to_do(patch, keys, words):
    cfg = _deep(yaml.safe_load((ROOT / "config/config.yaml").read_text()), patch)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    msg = str(err.value)
    assert "invalid combination of config values" in msg
    for w in [*(f"'{k}'" for k in keys), *words]:
        assert w in msg


def test_cross_key_checks_pass_where_the_combination_is_fine():
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for patch in ({"fe": {"clip_frames": 32, "ssl": {"clip_frames": 32, "segments": 32}}},  # equal is fine
                  {"splits": {"label_percents": [3]}, "hparams": {"val_per_class": 0}},  # no validation asked for
                  {"splits": {"label_percents": [3]}, "methods": ["supervised"]},  # nothing chosen on validation
                  {"dataset": {"name": "diving48"}, "splits": {"label_percents": [1]}},  # sizes unknown: not checked
                  {"fe": {"augment": {"span": [0.5, 0.5], "hflip": True, "translate": 0}}},
                  {"baselines": {"pixel_size": 48}}):  # as large as the stored frames is fine
        validate_config(_deep(base, patch), SCHEMA)


def test_fe_augment_is_checked_against_the_augmentation_keys():
    from finepseudo.models.augment import DEFAULT_AUGMENT

    schema = yaml.safe_load(SCHEMA.read_text())["properties"]["fe"]["properties"]["augment"]
    assert set(schema["properties"]) == set(DEFAULT_AUGMENT) and schema["additionalProperties"] is False
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    validate_config(_deep(base, {"fe": {"augment": dict(DEFAULT_AUGMENT)}}), SCHEMA)  # every default is valid
    for bad, words in (({"hflp": True}, ["config key 'fe.augment'", "'hflp' was unexpected", "allowed keys here",
                                         "hflip"]),
                       ({"span": [0.8]}, ["config key 'fe.augment.span'"]),
                       ({"contrast": 1.5}, ["config key 'fe.augment.contrast'", "1.5"])):
        with pytest.raises(ConfigError) as err:
            validate_config(_deep(base, {"fe": {"augment": bad}}), SCHEMA)
        for w in words:
            assert w in str(err.value)


def test_validating_a_config_imports_neither_ffmpeg_nor_the_renderer():
    """The Snakefile validates the config while it plans the DAG: the SynthDive checks read the generator's
    defaults from its specification, without ffmpeg-python or the rendering code."""
    import os
    import subprocess
    import sys

    code = (f"import sys; from finepseudo.config import load_config; load_config({str(ROOT / 'config/config.yaml')!r}, "
            f"{str(SCHEMA)!r}); print(sorted(m for m in sys.modules if m == 'ffmpeg' or "
            "m.startswith('finepseudo.data.synthdive.') and not m.endswith('.spec')))")
    path = [str(ROOT / "src")] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


def test_cross_key_error_stops_a_dry_run_before_any_job(tmp_path):
    """The Snakefile validates the config: the dry run fails naming both keys and plans (and runs) nothing."""
    from wfutil import snakemake

    cfg = tmp_path / "bad.yaml"
    cfg.write_text((ROOT / "config/test.yaml").read_text().replace("  clip_frames: 8\n  epochs: 2",
                                                                    "  clip_frames: 24\n  epochs: 2"))
    assert cfg.read_text() != (ROOT / "config/test.yaml").read_text()
    wd = tmp_path / "wd"
    r = snakemake(wd, "-n", "results/report.html", configfile=cfg, check=False)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "config keys 'fe.clip_frames', 'frames.num_frames'" in out and "fe.clip_frames is 24" in out
    assert "Job stats" not in out and not (wd / "results").exists()


def test_training_jobs_ask_for_memory_and_gpus_per_process(tmp_path):
    """``fe.gpus`` / ``alignability.gpus`` start that many training processes: the f_E and f_A training rules
    request that many GPUs (with device: cuda) and memory for every process; other rules do not change."""
    import json
    import os
    import subprocess
    import sys

    def resources(gpus: int) -> dict:
        cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
        cfg["device"] = "cuda"
        cfg["fe"]["gpus"] = cfg["alignability"]["gpus"] = gpus
        path = tmp_path / f"gpus{gpus}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        r = subprocess.run([sys.executable, str(Path(__file__).with_name("job_resources.py")), str(ROOT / "Snakefile"),
                            str(tmp_path / f"wd{gpus}"), str(path)], capture_output=True, text=True, timeout=600,
                           env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        assert r.returncode == 0, r.stderr[-4000:]
        return json.loads(r.stdout.strip().splitlines()[-1])

    one, three = resources(1), resources(3)
    training = {"train_fe", "retrain_fe", "pretrain_gitdl", "train_alignability", "retrain_fa"}
    assert training <= set(one)
    for rule in one:
        if rule in training:
            assert three[rule]["gpu"] == 3 * one[rule]["gpu"] == 3, rule
            assert three[rule]["mem_mb"] >= 3 * one[rule]["mem_mb"] - 3 * 100, (rule, one[rule], three[rule])
        else:
            assert three[rule] == one[rule], rule


@pytest.mark.parametrize("preset", ["diving48", "finegym99", "finegym288", "finediving", "benchmark"])
def test_preset_round_length_follows_the_stated_rule(preset):
    """Every GPU preset sizes its rounds with one rule (scripts/preset_budget.py): fe.epochs epochs of the round's
    expanded set (10 % labels + 40 % of the unlabeled pool accepted), rounded up to 100 steps, stated in a comment."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("preset_budget", ROOT / "scripts/preset_budget.py")
    pb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pb)
    text = (ROOT / f"config/presets/{preset}.yaml").read_text()
    cfg = _deep(yaml.safe_load((ROOT / "config/config.yaml").read_text()), yaml.safe_load(text))
    rule = pb.round_steps(cfg)
    assert cfg["pseudo"]["fe"]["steps"] == rule["steps"], (preset, rule)
    assert "Round length, the rule of every preset" in text and f"rounded up to {rule['steps']:,}." in text
    # the rule keeps every preset near fe.epochs passes over the expanded set (FineDiving had ~900 before it)
    epochs = rule["steps"] * cfg["fe"]["batch_size"] / rule["expanded_videos"]
    assert cfg["fe"]["epochs"] <= epochs < cfg["fe"]["epochs"] * 1.15, epochs
