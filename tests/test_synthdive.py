"""SynthDive generator: determinism, Diving48 V2 annotation format, splits, phases, vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import ffmpeg
import numpy as np
import pytest

from finepseudo.data import synthdive as sd
from finepseudo.data.synthdive import encoding, motion

TINY = sd.TINY_CONFIG


def decode(path: Path, size: int = TINY["frame_size"]) -> np.ndarray:
    """All frames of a size x size mp4 as uint8 (T, size, size, 3)."""
    out, _ = ffmpeg.input(str(path)).output("pipe:", format="rawvideo", pix_fmt="rgb24").run(
        capture_stdout=True, capture_stderr=True)
    return np.frombuffer(out, np.uint8).reshape(-1, size, size, 3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sd_a")
    logs: list[str] = []
    summary = sd.generate(out, TINY, seed=3, log=logs.append)
    return out, {"summary": summary, "logs": logs}


@pytest.fixture(scope="module")
def tiny_again(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sd_b")
    sd.generate(out, TINY, seed=3, log=lambda m: None)
    return out


def _ann(root: Path, name: str):
    return json.loads((root / "annotations" / name).read_text())


def test_same_seed_is_deterministic(tiny, tiny_again):
    a, _ = tiny
    for name in ("train.json", "test.json", "vocab.json", "classes.json", "phases.json", "summary.json"):
        assert (a / "annotations" / name).read_bytes() == (tiny_again / "annotations" / name).read_bytes(), name
    for vid in sorted((a / "videos").glob("*.mp4"))[::10]:
        np.testing.assert_array_equal(decode(vid), decode(tiny_again / "videos" / vid.name))


def test_other_seed_differs_and_reruns_clean_up(tmp_path, tiny):
    a, _ = tiny
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "train_9999.mp4").write_bytes(b"stale")
    cfg = {**TINY, "train_per_class": 2, "test_per_class": 1}
    sd.generate(tmp_path, cfg, seed=4, log=lambda m: None)
    first = _ann(tmp_path, "train.json")[0]["vid_name"]
    assert not np.array_equal(decode(tmp_path / "videos" / f"{first}.mp4")[:5], decode(a / "videos" / f"{first}.mp4")[:5])
    names = {p.stem for p in (tmp_path / "videos").iterdir()}
    assert names == {x["vid_name"] for x in _ann(tmp_path, "train.json") + _ann(tmp_path, "test.json")}


def test_annotation_format_and_splits(tiny):
    root, info = tiny
    vocab = _ann(root, "vocab.json")
    classes = _ann(root, "classes.json")
    phases = _ann(root, "phases.json")
    k = len(TINY["classes"])
    assert len(vocab) == k and len(classes) == k
    full = sd.load_diving48_vocab()
    for c in classes:
        assert vocab[c["label"]] == full[c["diving48_label"]]
        assert vocab[c["label"]] == [c["takeoff"], c["somersaults"], c["twists"], c["position"]]
    assert [c["diving48_label"] for c in classes] == TINY["classes"]
    names = set()
    for split, per_class in (("train", TINY["train_per_class"]), ("test", TINY["test_per_class"])):
        ann = _ann(root, f"{split}.json")
        assert isinstance(ann, list)
        for a in ann:
            assert set(a) == {"vid_name", "label", "start_frame", "end_frame"}
            assert isinstance(a["label"], int) and 0 <= a["label"] < k
            assert (root / "videos" / f"{a['vid_name']}.mp4").is_file()
            n = len(phases[a["vid_name"]])
            assert 0 <= a["start_frame"] < a["end_frame"] <= n
        counts = np.bincount([a["label"] for a in ann], minlength=k)
        assert (counts == per_class).all(), (split, counts)
        assert info["summary"]["per_class"][split] == {str(c): per_class for c in range(k)}
        names |= {a["vid_name"] for a in ann}
    assert len(names) == info["summary"]["videos"]["train"] + info["summary"]["videos"]["test"]
    assert names == set(phases)
    assert any("videos/s" in line and "left" in line for line in info["logs"])


def test_phases_match_videos(tiny):
    root, _ = tiny
    phases = _ann(root, "phases.json")
    ann = {a["vid_name"]: a for a in _ann(root, "train.json") + _ann(root, "test.json")}
    order = {p: i for i, p in enumerate(sd.PHASES)}
    for name in sorted(phases)[::6]:
        frames = decode(root / "videos" / f"{name}.mp4")
        ph = phases[name]
        assert frames.shape == (len(ph), TINY["frame_size"], TINY["frame_size"], 3)
        assert set(ph) <= set(sd.PHASES)
        a = ann[name]
        # the annotated clip (end exclusive) is the action, with at most annotation_margin idle frames on each
        # side, and the phases of the action come in order
        lo, hi = sd.resolve_config(TINY)["annotation_margin"]
        active = [j for j, p in enumerate(ph) if p != "idle"]
        before, after = active[0] - a["start_frame"], a["end_frame"] - 1 - active[-1]
        assert 0 <= before <= hi and 0 <= after <= hi, (before, after)
        assert all(p == "idle" for p in ph[: active[0]] + ph[active[-1] + 1:])
        action = ph[active[0]:active[-1] + 1]
        assert "idle" not in action
        ranks = [order[p] for p in action]
        assert ranks == sorted(ranks) and set(action) == set(sd.PHASES) - {"idle"}


def test_novel_classes_only_in_train(tmp_path):
    cfg = {**TINY, "classes": [7, 24], "novel_classes": [34], "train_per_class": 2, "test_per_class": 1}
    summary = sd.generate(tmp_path, cfg, seed=0, log=lambda m: None)
    classes = _ann(tmp_path, "classes.json")
    assert [(c["diving48_label"], c["novel"]) for c in classes] == [(7, False), (24, False), (34, True)]
    assert {a["label"] for a in _ann(tmp_path, "test.json")} == {0, 1}
    assert {a["label"] for a in _ann(tmp_path, "train.json")} == {0, 1, 2}
    assert summary["novel_classes"] == 1


def test_parse_class_counts_and_directions():
    assert sd.parse_class(["Back", "25som", "15Twis", "PIKE"]) == {
        "takeoff": "Back", "position": "PIKE", "som_halves": 5, "twist_halves": 3, "facing": -1, "sense": -1}
    assert sd.parse_class(["Forward", "Dive", "NoTwis", "STR"])["som_halves"] == 1
    assert sd.parse_class(["Forward", "45som", "NoTwis", "TUCK"])["som_halves"] == 9
    assert sd.parse_class(["Reverse", "15som", "05Twis", "FREE"])["twist_halves"] == 1
    # every Diving48 class can be rendered
    for attrs in sd.load_diving48_vocab():
        sd.parse_class(attrs)
    with pytest.raises(ValueError, match="take-off"):
        sd.parse_class(["Sideways", "1som", "NoTwis", "PIKE"])


def test_render_video_shapes_and_entry():
    cfg = sd.resolve_config(TINY)
    vocab = sd.load_diving48_vocab()
    for d48 in (7, 14, 29):
        frames, phases = sd.render_video(sd.parse_class(vocab[d48]), cfg, np.random.default_rng(0))
        assert frames.dtype == np.uint8 and frames.shape[1:] == (32, 32, 3)
        assert len(phases) == len(frames)
        # the phases run in the order of a dive, each present, and the entry frames follow the flight
        order = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
        assert [p for p in order if p != "idle"] == ["approach", "takeoff", "flight", "entry", "splash"], order
        first_entry = phases.index("entry")
        assert phases[first_entry - 1] == "flight" and phases.count("entry") >= 1


_NUISANCE_ON = {"speed": [0.6, 1.6], "phase_scale": [0.5, 2.0], "annotation_margin": [2, 4], "background": "varied",
                "camera_lag": [2.0, 3.0], "zoom": [0.7, 0.8], "zoom_drift": 0.2, "roll_deg": 8.0, "framing": 0.2,
                "mirror": 1.0, "view_angle_deg": 40.0, "movers": [3, 3], "colour_jitter": 1.0}


def _render(over: dict, seed: int, d48: int = 24):
    cfg = sd.resolve_config({**TINY, **sd.STATIC_SCENE, "speed": [1.0, 1.0], "annotation_margin": [0, 0], **over})
    rng = np.random.default_rng(seed)
    frames, names = sd.render_video(sd.parse_class(sd.load_diving48_vocab()[d48]), cfg, rng)
    return frames, names, encoding._annotated_span(names, cfg, rng)


def test_static_scene_switches_every_nuisance_key_off():
    assert set(_NUISANCE_ON) >= set(sd.STATIC_SCENE)
    assert set(_NUISANCE_ON) <= set(sd.DEFAULT_CONFIG) and set(_NUISANCE_ON) <= set(sd.CONFIG_DOCS)


@pytest.mark.parametrize("key", sorted(_NUISANCE_ON))
def test_each_nuisance_key_changes_the_render_and_is_seeded(key):
    base, base_names, base_span = _render({}, seed=5)
    on, on_names, on_span = _render({key: _NUISANCE_ON[key]}, seed=5)
    changed = (on.shape != base.shape or not np.array_equal(on, base) or on_names != base_names or on_span != base_span)
    assert changed, f"synthdive.{key} = {_NUISANCE_ON[key]} rendered the same video as with it off"
    again, again_names, again_span = _render({key: _NUISANCE_ON[key]}, seed=5)
    assert np.array_equal(again, on) and again_names == on_names and again_span == on_span  # seeded
    other, *_ = _render({key: _NUISANCE_ON[key]}, seed=6)
    assert other.shape != on.shape or not np.array_equal(other, on)


def test_mirror_flips_the_same_video():
    plain, names, _ = _render({"mirror": 0.0, "background": "varied", "view_angle_deg": 20.0}, seed=9)
    mirrored, names_m, _ = _render({"mirror": 1.0, "background": "varied", "view_angle_deg": 20.0}, seed=9)
    assert names == names_m
    np.testing.assert_array_equal(mirrored, plain[:, :, ::-1])


def test_the_camera_keeps_the_diver_in_frame_while_it_varies():
    cfg = sd.resolve_config({**TINY, "zoom_drift": 0.3, "roll_deg": 10.0, "framing": 0.3, "camera_lag": [4.0, 4.0]})
    spec = sd.parse_class(sd.load_diving48_vocab()[24])
    rng = np.random.default_rng(2)
    fig = motion._draw_figure(spec, cfg, rng)
    water_y = motion._draw_water_level(rng)
    phases = motion._timeline(spec, cfg, rng)
    mot = motion._motion(spec, phases, fig.position_pose, rng)
    view = motion._draw_view(cfg, rng)
    world, _, _ = motion._world_joints(spec, mot, phases, fig, water_y)
    screen = motion._project(world, view)
    cam = motion._camera(screen, mot["visible"], water_y, cfg["frame_size"], cfg, rng)
    assert np.ptp(cam.ppu) > 0.1 * cam.ppu.mean() and np.ptp(cam.roll) > np.radians(2)  # they vary within the video
    off = np.abs(screen.mean(axis=1) - cam.centre) * cam.ppu[:, None] / cfg["frame_size"]  # in frame widths
    tracked = mot["visible"] & (screen.mean(axis=1)[:, 1] > water_y + 0.6)  # the view never sinks below the surface
    assert tracked.sum() > 10 and off[tracked].max() <= 0.3 + 0.05  # the limit, plus the shake


def test_rendering_processes_do_not_change_the_output(tmp_path):
    cfg = {**TINY, "train_per_class": 9, "test_per_class": 1}  # 40 videos: two chunks of the encoder
    sd.generate(tmp_path / "one", cfg, seed=8, log=lambda m: None)
    sd.generate(tmp_path / "two", cfg, seed=8, log=lambda m: None, workers=2)
    for name in ("train.json", "test.json", "phases.json"):
        assert (tmp_path / "one/annotations" / name).read_bytes() == (tmp_path / "two/annotations" / name).read_bytes()
    for vid in sorted((tmp_path / "one/videos").glob("*.mp4"))[::7]:
        np.testing.assert_array_equal(decode(vid), decode(tmp_path / "two/videos" / vid.name))


def test_config_validation():
    with pytest.raises(KeyError, match="unknown synthdive config keys"):
        sd.resolve_config({"nosie_sigma": 3})
    with pytest.raises(ValueError, match="frame_size"):
        sd.resolve_config({"frame_size": 33})
    with pytest.raises(ValueError, match="novel_classes"):
        sd.resolve_config({"classes": [1, 2], "novel_classes": [2]})
    with pytest.raises(ValueError, match="background"):
        sd.resolve_config({"background": "stadium"})
    with pytest.raises(ValueError, match="mirror"):
        sd.resolve_config({"mirror": 1.5})
    with pytest.raises(ValueError, match="zoom"):
        sd.resolve_config({"zoom": [1.2, 0.8]})
    cfg = sd.resolve_config({"phase_frames": {"entry": 5}})
    assert cfg["phase_frames"]["entry"] == 5 and cfg["phase_frames"]["splash"] == sd.DEFAULT_CONFIG["phase_frames"]["splash"]
    assert cfg["classes"] == list(sd.DEFAULT_CLASSES)
    assert set(sd.CONFIG_DOCS) == set(sd.DEFAULT_CONFIG)


def test_every_position_has_joint_angles():
    from finepseudo.data.synthdive.spec import POSITIONS

    assert set(POSITIONS) == set(motion._POSITIONS)
    assert {attrs[3] for attrs in sd.load_diving48_vocab()} <= set(POSITIONS)


def test_the_spec_imports_neither_numpy_nor_ffmpeg():
    """The spec module and the package's eager part stay light: finepseudo.config reads the defaults while
    Snakemake plans the DAG."""
    import os
    import subprocess
    import sys

    code = ("import sys, finepseudo.data.synthdive as sd; sd.resolve_config(None); "
            "print(sorted(m for m in ('numpy', 'ffmpeg', 'finepseudo.data.synthdive.motion', "
            "'finepseudo.data.synthdive.drawing', 'finepseudo.data.synthdive.encoding') if m in sys.modules))")
    src = Path(__file__).resolve().parents[1] / "src"
    path = [str(src)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


def test_builtin_vocab_is_the_official_table(tmp_path):
    vocab = sd.load_diving48_vocab()
    assert len(vocab) == 48 and len({tuple(v) for v in vocab}) == 48
    assert vocab[0] == ["Back", "15som", "05Twis", "FREE"] and vocab[47] == ["Reverse", "Dive", "NoTwis", "TUCK"]
    # Diving48's own Diving48_vocab.json, as published with the dataset, kept in tests/data
    official = Path(__file__).resolve().parent / "data" / "Diving48_vocab.json"
    assert vocab == json.loads(official.read_text())
    f = tmp_path / "vocab.json"
    f.write_text(json.dumps(vocab[:3]))
    assert sd.load_diving48_vocab(f) == vocab[:3]
    with pytest.raises(FileNotFoundError, match="missing.json"):
        sd.load_diving48_vocab(tmp_path / "missing.json")


# Pinned renders, computed with the renderer of the nuisance benchmark (camera, varied scene, viewpoint).
# (Diving48 label, config overrides of TINY, seed) -> (frames shape, phase initials, next draw of the video's
# generator after rendering, sha256 of the uint8 frames). The next draw changes when render_video makes more
# or fewer random draws; the hash changes when draws are reordered or the drawing arithmetic changes. A change
# of numpy (pinned in pyproject.toml) could in principle move a pixel by rounding; the draw count cannot move.
_PINNED_RENDERS = (
    (8, {}, 11, (36, 32, 32, 3), "aaaaatttffffffffffffffffffffeeesssii", 2909658387072682136,
     "4c020025b00cb0906a95b4825204ca95f1ddb518ead92882bab8c5d25af3c643"),
    (21, {"noise_sigma": 0.0, "distractors": [3, 3], "shake_px": 1.5}, 12, (31, 32, 32, 3),
     "iiaaaaattfffffffffffffffeessssi", 3417523772048396955,
     "937dd232453b7e1e15f2157a4c047e3cde52bce1de8f836250f99b859cd14117"),
    (38, {"frame_size": 48, "lighting": 0.3}, 13, (24, 48, 48, 3), "iiaaattfffffffffffeesssi", 951772596133864079,
     "c9d488c47344a72649e0b9726e1b4c999aef5ab7db11b12e97d324ccd32058a0"),
    (30, {}, 14, (17, 32, 32, 3), "aaaattfffffeessss", 1927255272597334292,
     "0351c2b7c8ea3d26ec1befb7d6000647a6d35f54c3bad29dfdb8dec904f62df0"),
)


@pytest.mark.parametrize("d48, over, seed, shape, phases, next_draw, sha", _PINNED_RENDERS)
def test_render_video_is_pinned(d48, over, seed, shape, phases, next_draw, sha):
    import hashlib

    cfg = sd.resolve_config({**TINY, **over})
    rng = np.random.default_rng(seed)
    frames, names = sd.render_video(sd.parse_class(sd.load_diving48_vocab()[d48]), cfg, rng)
    assert frames.shape == shape and "".join(n[0] for n in names) == phases
    assert int(rng.integers(1 << 62)) == next_draw, "render_video makes a different number of random draws"
    assert hashlib.sha256(frames.tobytes()).hexdigest() == sha, "rendered pixels changed (draw order or drawing)"


def test_every_generator_key_is_in_the_schema_and_the_default_config():
    """A key added to the generator must be allowed by the config schema and commented in config.yaml (else a
    user cannot set it, or cannot find it)."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    schema = yaml.safe_load((root / "workflow/schemas/config.schema.yaml").read_text())
    allowed = set(schema["properties"]["synthdive"]["properties"]) - {"seed"}
    assert allowed == set(sd.DEFAULT_CONFIG)
    default = yaml.safe_load((root / "config/config.yaml").read_text())["synthdive"]
    assert set(default) - {"seed"} == set(sd.DEFAULT_CONFIG)
