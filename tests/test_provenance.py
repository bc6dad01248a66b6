"""Code-aware reruns: the import-graph digest (finepseudo.provenance), and on the shared tiny run, that
editing one library module, or flipping one config key, plans again exactly the rules that read it."""

import copy
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from finepseudo.config import validate_config
from finepseudo.provenance import code_digest, module_closure
from wfutil import ROOT, planned_rules, snakemake


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


@pytest.fixture()
def pkg(tmp_path):
    """A small ``finepseudo`` package: absolute, relative, lazy and ``from pkg import module`` imports."""
    src = tmp_path / "src"
    _write(src, {
        "finepseudo/__init__.py": "",
        "finepseudo/a.py": "from finepseudo.b import f\n",
        "finepseudo/b.py": "def f():\n    from .sub import c  # lazy, relative\n    return c\n",
        "finepseudo/sub/__init__.py": "",
        "finepseudo/sub/c.py": "from .. import d\nimport json\n",
        "finepseudo/d.py": "X = 1\n",
        "finepseudo/unrelated.py": "Y = 2\n",
    })
    script = tmp_path / "script.py"
    script.write_text("import sys\nfrom finepseudo.a import f  # noqa\n")
    return src, script


def test_closure_follows_every_kind_of_import(pkg):
    src, script = pkg
    names = {str(p.relative_to(src)) for p in module_closure(script, src)}
    assert names == {"finepseudo/__init__.py", "finepseudo/a.py", "finepseudo/b.py", "finepseudo/sub/__init__.py",
                     "finepseudo/sub/c.py", "finepseudo/d.py"}


def test_digest_changes_with_imported_code_only_and_not_with_the_folder(pkg, tmp_path):
    src, script = pkg
    before = code_digest(script, src)
    (src / "finepseudo/unrelated.py").write_text("Y = 3\n")
    from finepseudo import provenance

    provenance._digest.cache_clear()
    assert code_digest(script, src) == before  # a module nobody imports
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "src", moved / "src")
    shutil.copy(script, moved / "script.py")
    assert code_digest(moved / "script.py", moved / "src") == before  # the same files in another folder
    (src / "finepseudo/d.py").write_text("X = 2\n")  # reached only through a lazy relative import
    provenance._digest.cache_clear()
    assert code_digest(script, src) != before


# ----------------------------------------------------------------------------------------------------------
# On the shared tiny run: which rules a dry run plans because their params (settings or code) changed.

def _params_changed(workdir, configs, snakefile=ROOT / "Snakefile"):
    """{config: rules whose jobs' params (settings or code digest) differ from those recorded in ``workdir``},
    for every job of the DAG, planned or not (tests/params_changed.py)."""
    r = subprocess.run([sys.executable, str(Path(__file__).with_name("params_changed.py")), str(snakefile),
                        str(workdir), "results/report.html", *map(str, configs)],
                       capture_output=True, text=True, timeout=1200, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 0, r.stderr[-4000:]
    return {Path(k).name: set(v) for k, v in json.loads(r.stdout.strip().splitlines()[-1]).items()}


pytestmark = pytest.mark.workflow


def test_editing_a_module_reruns_exactly_the_rules_that_import_it(tiny_run, tmp_path):
    """A copy of the code with one module edited, dry-run against the shared run's working directory."""
    code = tmp_path / "code"
    code.mkdir()
    for part in ("Snakefile", "workflow", "src", "config", "envs"):
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, code / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif (ROOT / part).exists():
            shutil.copy2(ROOT / part, code / part)
    test_yaml = ROOT / "config/test.yaml"
    assert _params_changed(tiny_run.parent, [test_yaml], code / "Snakefile") == {"test.yaml": set()}
    # the modules each rule's script imports, directly or not, as the import graph stands today
    expected = {
        "pseudo/pseudolabel.py": {"select_hparams", "pseudo_label", "retrain_fe", "retrain_fa", "pseudo_quality",
                                  "export_model"},
        "data/synthdive/drawing.py": {"generate_synthdive"},
        "report/html.py": {"report"},
        "align/dtw/cpu.py": {"mine_pairs", "train_alignability", "predict_alignability", "pair_verification",
                             "pretrain_gitdl", "select_hparams", "pseudo_label", "retrain_fe", "retrain_fa",
                             "trivial_baselines", "export_model"},
        "baselines/trivial.py": {"trivial_baselines"},
        "export/stream.py": {"export_model"},  # through the step module; predict_videos is not planned here
    }
    for module, rules in expected.items():
        path = code / "src/finepseudo" / module
        text = path.read_text()
        path.write_text(text + "\n# an edit\n")
        try:
            got = _params_changed(tiny_run.parent, [test_yaml], code / "Snakefile")["test.yaml"]
        finally:
            path.write_text(text)
        assert got == rules, module
    # and the dry run plans them (with everything downstream of them)
    path = code / "src/finepseudo/data/synthdive/drawing.py"
    path.write_text(path.read_text() + "\n# an edit\n")
    r = snakemake(tiny_run.parent, "results/report.html", "-n", "--quiet", "rules", snakefile=code / "Snakefile")
    assert {"generate_synthdive", "build_manifest", "extract_frames", "report"} <= planned_rules(r), r.stdout


# Which rules read each config key (the report shows the whole config, so it reads every key). A key missing
# here fails the test: add it with the rules whose settings carry it.
ALL_TORCH = {"pretrain_fe", "train_fe", "evaluate_fe", "evaluate_round", "pretrain_gitdl", "mine_pairs",
             "train_alignability", "predict_alignability", "pair_verification", "select_hparams", "pseudo_label",
             "retrain_fe", "retrain_fa", "trivial_baselines"}
DTW = {"mine_pairs", "predict_alignability", "pair_verification", "select_hparams", "pseudo_label", "retrain_fa"}
READERS = {
    "seed": {"pretrain_fe", "train_fe", "pretrain_gitdl", "train_alignability", "retrain_fe", "retrain_fa"},
    "device": ALL_TORCH,
    "threads": set(),  # how many cores a job uses, not what it computes
    "cpu_kernels": ALL_TORCH,  # which CPU kernels torch and numpy run (finepseudo.kernels): the numbers move
    "frames.workers": set(),  # reading processes: results do not depend on them (tests/test_train.py)
    "dataset.video_ext": {"build_manifest"},
    "dataset.source": {"build_manifest"},
    "dataset.*": set(),  # the other dataset keys name a real dataset's files, unused for SynthDive
    "synthdive.*": {"generate_synthdive"},
    "splits.*": set(),  # which splits exist (new jobs), not how one is computed
    "frames.shards": {"build_manifest"},
    "frames.*": {"extract_frames"},
    "fe.ssl.*": {"pretrain_fe"},
    "fe.arch": {"pretrain_fe", "train_fe"},
    "fe.weights": {"pretrain_fe", "train_fe"},
    "fe.weight_decay": {"pretrain_fe", "train_fe"},
    "fe.augment.*": {"pretrain_fe", "train_fe"},
    "fe.clip_norm": {"pretrain_fe", "train_fe"},
    "fe.clip_frames": {"train_fe", "trivial_baselines"},  # the probe's features pool the evaluation clips
    "fe.init": {"train_fe", "trivial_baselines"},  # ssl_probe runs with fe.init ssl only
    "fe.*": {"train_fe"},
    "alignability.num_frames": {"pretrain_gitdl", "train_alignability", "trivial_baselines"},
    "alignability.gamma": {"train_alignability", "retrain_fa"} | DTW - {"mine_pairs"},
    "alignability.margin": {"train_alignability", "retrain_fa"},
    "alignability.omega": {"train_alignability", "retrain_fa"},
    "alignability.avml.*": {"train_alignability", "retrain_fa"},
    "alignability.tau": {"predict_alignability", "select_hparams"},
    "alignability.gpus": {"pretrain_gitdl", "train_alignability", "retrain_fa"},
    "alignability.hflip": {"pretrain_gitdl", "train_alignability", "retrain_fa"},
    "alignability.dtw_backend": DTW | {"trivial_baselines"},
    "alignability.*": {"pretrain_gitdl"},
    "pseudo.rounds": set(),
    "pseudo.theta": {"select_hparams"},
    "pseudo.fe.*": {"retrain_fe"},
    "pseudo.fa_epochs": {"retrain_fa"},
    "pseudo.*": {"select_hparams", "pseudo_label"},  # calibrate, accept, min_accept, topk_share
    "hparams.val_per_class": {"make_splits"},
    "hparams.theta_grid": {"select_hparams", "pseudo_label"},  # theta is chosen again in every round
    "hparams.target_precision": {"select_hparams", "pseudo_label"},
    "hparams.*": {"select_hparams"},
    "open_world.novel_classes": {"make_splits", "select_hparams"},
    "open_world.delta": {"select_hparams"},
    "eval.clips_per_video": {"evaluate_fe", "evaluate_round", "select_hparams", "pseudo_label", "trivial_baselines"},
    "eval.batch_size": {"evaluate_fe", "evaluate_round", "trivial_baselines"},
    "baselines.pixel_size": {"trivial_baselines"},
    "methods": set(),
    "predict.*": set(),  # a prediction run (rule predict_videos), planned only when predict.videos_dir is set
}
# An export's card records the config its model depends on (finepseudo.plan.NOT_MODEL_KEYS), so
# export_model reads every key but these, besides the keys of the table above.
NOT_MODEL_KEYS = ("threads", "frames.workers", "methods", "splits.", "predict.")
# Keys not flipped, and why.
NOT_FLIPPED = {"dataset.name": "selects the dataset: every path changes, so everything is new"}
# Values for keys whose plain flip would break a cross-key rule or change nothing.
FLIPS = {
    "device": "cuda",
    "dataset.video_ext": ".mkv",
    "synthdive.frame_size": 48,
    "synthdive.phase_scale": [0.8, 1.3],  # [min, max] pairs stay ordered
    "synthdive.idle_frames": [0, 3],
    "synthdive.speed": [0.9, 1.1],
    "synthdive.annotation_margin": [0, 1],
    "synthdive.camera_lag": [0.5, 1.0],
    "synthdive.zoom": [0.9, 1.0],
    "synthdive.movers": [0, 1],
    "fe.ssl.steps": 5,  # null in the test config (epochs): a number of steps instead
    "alignability.gitdl.steps": 5,
    "fe.ssl.clip_frames": 3,  # segments x clip_frames must fit in frames.num_frames
    "frames.num_frames": 24,
    "synthdive.classes": [7, 8, 24, 44],
    "splits.label_percents": [50, 100],
    "methods": ["supervised", "pl"],
    "hparams.select": ["theta"],
    "open_world.novel_classes": 1,
    "predict.method": "pl",
    "predict.name": "elsewhere",
    "predict.frac": 100,
    "predict.seed": 1,
    "predict.batch_size": 4,
}


def _readers(key):
    if key in READERS:
        return READERS[key]
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:i]) + ".*" in READERS:
            return READERS[".".join(parts[:i]) + ".*"]
    raise KeyError(f"config key {key} has no entry in READERS")


def _leaves(d, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, prefix + (k,))
        else:
            yield ".".join(prefix + (k,)), v


def _flip(key, value, schema_enum):
    if key in FLIPS:
        return FLIPS[key]
    if schema_enum:
        return next(v for v in schema_enum if v != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value * 0.5, 6)
    if value is None:
        return "/elsewhere"
    if isinstance(value, list):
        return value[::-1] if len(set(map(str, value))) > 1 else value + [value[-1] * 2]
    if isinstance(value, dict):
        return {"flip": True}
    raise TypeError(f"no flip for {key}={value!r}")


def _schema_enum(schema, key):
    node = schema
    for part in key.split("."):
        node = node.get("properties", {}).get(part, {})
    return node.get("enum")


def _set(cfg, key, value):
    *parents, last = key.split(".")
    for p in parents:
        cfg = cfg[p]
    cfg[last] = value


def test_flipping_each_config_key_reruns_only_the_rules_that_read_it(tiny_run, tmp_path):
    schema_path = ROOT / "workflow/schemas/config.schema.yaml"
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    base.update(yaml.safe_load((ROOT / "config/test.yaml").read_text()))
    full = validate_config(copy.deepcopy(base), schema_path)
    from finepseudo.config import _fill_registries

    schema = yaml.safe_load(schema_path.read_text())
    _fill_registries(schema)
    cases = []
    for key, value in _leaves(full):
        if key in NOT_FLIPPED:
            continue
        cfg = copy.deepcopy(full)
        new = _flip(key, value, _schema_enum(schema, key))
        if key == "fe.weights":  # an input file: it must exist for the jobs that read it to be planned
            new = str(tmp_path / "weights.pt")
            Path(new).write_bytes(b"a state dict")
            _set(cfg, key, new)
        elif key == "predict.videos_dir":  # a folder of videos: the prediction run is planned (a new job)
            new = tmp_path / "videos"
            new.mkdir()
            shutil.copy(tiny_run / "synthdive/raw/videos/test_0000.mp4", new)
            _set(cfg, key, str(new))
        elif key == "fe.augment":  # an empty mapping in the test config (the defaults): flip one of its keys instead
            key, new = "fe.augment.hflip", not full["fe"]["augment"].get("hflip", True)
            cfg["fe"]["augment"]["hflip"] = new
        else:
            _set(cfg, key, new)
        validate_config(copy.deepcopy(cfg), schema_path)  # the flipped config is valid: the test means something
        path = tmp_path / f"{key}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        cases.append((key, path))
    assert len(cases) > 80

    halves = [cases[::2], cases[1::2]]  # two processes: this machine has two cores
    with ThreadPoolExecutor(2) as pool:
        found = {}
        for part in pool.map(lambda h: _params_changed(tiny_run.parent, [p for _, p in h]), halves):
            found.update(part)
    wrong = {}
    for key, path in cases:
        expected = _readers(key) | {"report"}
        if not any(key == k or key.startswith(k) for k in NOT_MODEL_KEYS):
            expected |= {"export_model"}
        if found[path.name] != expected:
            wrong[key] = (sorted(found[path.name]), sorted(expected))
    assert not wrong, "key: (planned, expected)\n" + "\n".join(f"{k}: {v}" for k, v in wrong.items())


# ----------------------------------------------------------------------------------------------------------
# Every file a step reads is an input of its rule: the audit each rule script runs (finepseudo.runlog).

def test_read_audit_names_an_undeclared_file_and_allows_the_declared_ones(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd

    from finepseudo.runlog import ReadAudit, UndeclaredReadError

    monkeypatch.chdir(tmp_path)
    Path("in.tsv").write_text("a\n1\n")
    Path("data").mkdir()
    np.save("data/x.npy", np.zeros(3))
    Path("stale.tsv").write_text("a\n2\n")
    Path("out.pt.resume.pt").write_text("checkpoint")
    outside = tmp_path.parent / f"{tmp_path.name}_outside.txt"
    outside.write_text("not ours")
    audit = ReadAudit(["in.tsv", "data"], outputs=["out.pt"], roots=["."])
    try:
        pd.read_csv("in.tsv")  # a declared input
        np.load("data/x.npy")  # under a declared directory
        Path("out.pt.resume.pt").read_text()  # an output's companion (resume checkpoint)
        outside.read_text()  # outside the working directory: Python's own files, not checked
        Path("new.txt").write_text("written, not read")
        audit.check()  # nothing undeclared so far
    finally:
        audit.stop()
    audit = ReadAudit(["in.tsv"], roots=["."])
    try:
        pd.read_csv("stale.tsv")
    finally:
        audit.stop()
    with pytest.raises(UndeclaredReadError, match=r"stale\.tsv.*declare them"):
        audit.check()
    assert open is not None and open.__name__ == "open"  # the builtin is restored


def test_read_audit_ignores_python_packages_and_the_library_under_the_working_directory(monkeypatch):
    """The README's command runs in the checkout, which holds ``.venv`` and ``src``: package metadata that
    importlib reads (``*.dist-info/entry_points.txt``, ``finepseudo.egg-info``) and the library's modules are
    not a step's data. A data file next to them still counts."""
    import importlib.metadata

    import finepseudo
    from finepseudo.runlog import ReadAudit, UndeclaredReadError

    src = Path(finepseudo.__file__).resolve().parents[1]
    common = Path(os.path.commonpath([str(src), str(Path(sys.prefix).resolve())]))
    monkeypatch.chdir(common)
    audit = ReadAudit([], roots=["."])
    try:
        importlib.metadata.entry_points()  # reads every installed distribution's entry_points.txt
        for dist in ("pytest", "finepseudo"):
            importlib.metadata.distribution(dist).read_text("METADATA")
        Path(finepseudo.__file__).read_bytes()
        audit.check()
    finally:
        audit.stop()
    data = src.parent / "README.md"  # not Python's: under the working directory, it must be declared
    audit = ReadAudit([], roots=["."])
    try:
        data.read_text()
    finally:
        audit.stop()
    with pytest.raises(UndeclaredReadError, match="README.md"):
        audit.check()
