"""Resumable training (finepseudo.resume): every training loop and step, interrupted after an epoch's
checkpoint and run again, ends with the same weights and history as an uninterrupted run, bit for bit on
a CPU (the timing columns aside); a changed setting or input starts over; an unreadable checkpoint is
ignored with a log line; the checkpoint loads with weights_only=True and is deleted with the outputs."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
import torch

from finepseudo import resume
from finepseudo.align.steps import load_fa, pretrain_gitdl_step, save_fa, train_alignability_step
from finepseudo.align.alignability import FrameEncoder
from finepseudo.align.train import pretrain_gitdl, train_avml
from finepseudo.models.distributed import train_classifier_ddp
from finepseudo.data.frames import write_shard
from finepseudo.models.video import build_video_model
from finepseudo.pseudo.steps import retrain_fa_step, retrain_fe_step
from finepseudo.resume import Checkpointer, TrainingStopped, resume_path
from finepseudo.models.ssl import pretrain_fe_step, pretrain_video_ssl
from finepseudo.models.steps import train_fe_step
from finepseudo.models.train import save_checkpoint, train_classifier

pytestmark = pytest.mark.usefixtures("one_thread")

KW = {"widths": (8, 16), "s_strides": (2, 2), "t_strides": (1, 2), "stem_width": 8}
TIMING = {"seconds", "clips_per_s", "eta", "items_per_s", "eta_s"}


def clips_and_labels(n: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    clips = rng.integers(0, 255, size=(n, 8, 16, 16, 3)).astype(np.uint8)
    labels = np.arange(n) % 2
    clips[labels == 1, ..., 0] //= 2  # something to learn
    return torch.from_numpy(clips), labels


def tiny_model(seed: int = 0) -> torch.nn.Module:
    """With dropout, so that the torch generator's state matters after a restart."""
    torch.manual_seed(seed)
    return build_video_model("r2plus1d_tiny", 2, dropout=0.3, **KW)


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def strip(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in TIMING} for h in history]


def interrupted(run, ckpt: Checkpointer, after: int):
    """run(ckpt) stopped after the checkpoint of epoch ``after``, then run(ckpt) again: its result."""
    ckpt.stop_after = after
    with pytest.raises(TrainingStopped):
        run(ckpt)
    assert ckpt.path.exists()
    torch.load(ckpt.path, weights_only=True)  # plain tensors and values only
    ckpt.stop_after = None
    return run(ckpt)


# ------------------------------------------------------------------------------------------------
# the loops


@pytest.mark.parametrize("variant", ["epochs", "steps_with_labeled_share"])
def test_train_classifier_resumes_bit_identically(tmp_path, variant):
    clips, labels = clips_and_labels()
    kw = dict(epochs=3, batch_size=4, lr=1e-2, weight_decay=0.01, clip_frames=4, seed=5)
    if variant != "epochs":  # batch plans that run across epochs (labeled / pseudo queues) and weights
        kw.update(epochs=0, steps=8, labeled_mask=np.arange(10) < 3, labeled_share=0.5,
                  sample_weight=np.linspace(0.2, 1.0, 10))

    def run(ckpt, logs=None):
        m = tiny_model()
        h = train_classifier(m, clips, labels, log=(logs.append if logs is not None else lambda s: None),
                             checkpoint=ckpt, **kw)
        return m.state_dict(), h

    ref_state, ref_hist = run(None)
    logs: list[str] = []
    ckpt = Checkpointer(tmp_path / "fe.pt.resume.pt", {"test": 1}, logs.append)
    state, hist = interrupted(lambda c: run(c, logs), ckpt, after=1)
    assert same_state(ref_state, state)
    assert strip(hist) == strip(ref_hist) and len(hist) == 3
    assert any(f"resuming from epoch 1/3 (checkpoint {ckpt.path})" in m for m in logs)
    assert sum("[train] epoch" in m for m in logs) == 1 + 2  # epoch 1, then 2 and 3 after the restart
    # killed after the last checkpoint, before the outputs were written: nothing left to train
    logs.clear()
    state2, hist2 = run(ckpt, logs)
    assert same_state(ref_state, state2) and strip(hist2) == strip(ref_hist)
    assert not any("[train] epoch" in m for m in logs)


def test_train_classifier_changed_setting_or_corrupt_file_starts_over(tmp_path):
    clips, labels = clips_and_labels()
    kw = dict(epochs=2, batch_size=4, weight_decay=0.0, clip_frames=4, seed=1)
    logs: list[str] = []
    ckpt = Checkpointer(tmp_path / "c.resume.pt", {"test": 1}, logs.append)
    ckpt.stop_after = 1
    with pytest.raises(TrainingStopped):
        train_classifier(tiny_model(), clips, labels, lr=1e-2, log=lambda s: None, checkpoint=ckpt, **kw)
    ckpt.stop_after = None
    ref = tiny_model()
    ref_hist = train_classifier(ref, clips, labels, lr=3e-2, log=lambda s: None, **kw)
    m = tiny_model()
    hist = train_classifier(m, clips, labels, lr=3e-2, log=logs.append, checkpoint=ckpt, **kw)
    assert same_state(ref.state_dict(), m.state_dict()) and strip(hist) == strip(ref_hist)
    assert any("not resuming from" in s and "other settings (lr)" in s for s in logs), logs
    # a truncated checkpoint (a copy cut short, as by a full disk) is ignored with a log line
    data = ckpt.path.read_bytes()
    ckpt.path.write_bytes(data[: len(data) // 2])
    logs.clear()
    m = tiny_model()
    hist = train_classifier(m, clips, labels, lr=3e-2, log=logs.append, checkpoint=ckpt, **kw)
    assert same_state(ref.state_dict(), m.state_dict()) and len(hist) == 2
    assert any(f"ignoring the unreadable checkpoint {ckpt.path}" in s for s in logs), logs


def test_a_state_that_does_not_fit_names_the_file(tmp_path):
    """A matching fingerprint whose state does not fit the model (the code changed between the runs)."""
    clips, labels = clips_and_labels()
    kw = dict(epochs=2, batch_size=4, lr=1e-2, weight_decay=0.0, clip_frames=4, seed=1, log=lambda s: None)
    ckpt = Checkpointer(tmp_path / "c.resume.pt", {}, None)
    ckpt.stop_after = 1
    with pytest.raises(TrainingStopped):
        train_classifier(tiny_model(), clips, labels, checkpoint=ckpt, **kw)
    ckpt.stop_after = None
    torch.manual_seed(0)
    other = build_video_model("r2plus1d_tiny", 2, **{**KW, "stem_width": 4})
    with pytest.raises(RuntimeError, match=f"(?s){re.escape(str(ckpt.path))}.*delete that file to start the training over"):
        train_classifier(other, clips, labels, checkpoint=ckpt, **kw)


def test_ssl_pretraining_resumes_bit_identically(tmp_path):
    clips, _ = clips_and_labels(n=8)
    kw = dict(epochs=3, batch_size=4, lr=3e-3, weight_decay=0.01, clip_frames=4, segments=2, temperature=0.1,
              proj_dim=8, seed=2, log=lambda s: None)

    def run(ckpt):
        m = tiny_model()
        h = pretrain_video_ssl(m, clips, checkpoint=ckpt, **kw)
        return m.state_dict(), h

    ref_state, ref_hist = run(None)
    state, hist = interrupted(run, Checkpointer(tmp_path / "ssl.resume.pt", {}, None), after=2)
    assert same_state(ref_state, state) and strip(hist) == strip(ref_hist) and len(hist) == 3


def test_gitdl_and_avml_resume_bit_identically(tmp_path):
    frames = torch.randint(0, 255, (6, 8, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    g = dict(num_frames=4, dim=8, width=4, layers=1, pool=2, epochs=3, batch_size=3, lr=1e-3, tau=0.1, sigma=1.0,
             seed=3, log=lambda m: None)

    def gitdl(ckpt):
        m, h = pretrain_gitdl(frames, checkpoint=ckpt, **g)
        return m.state_dict(), h

    ref_state, ref_hist = gitdl(None)
    state, hist = interrupted(gitdl, Checkpointer(tmp_path / "gitdl.resume.pt", {}, None), after=1)
    assert same_state(ref_state, state) and strip(hist) == strip(ref_hist) and len(hist) == 3

    labels = np.array([0, 0, 0, 1, 1, 1])  # 3 per class: positives are drawn from the numpy generator
    a = dict(num_frames=4, epochs=3, batch_size=4, lr=1e-3, gamma=0.1, margin=0.1, omega=1.0, use_triplet=True,
             use_score=True, seed=4, log=lambda m: None)

    def avml(ckpt):
        enc = FrameEncoder(dim=8, width=4, layers=1, pool=2)
        enc.load_state_dict(ref_state)
        m, s, h = train_avml(enc, frames, labels, np.array([3, 4, 5, 0, 1, 2]), checkpoint=ckpt, **a)
        return {**m.state_dict(), **{"score." + k: v for k, v in s.state_dict().items()}}, h

    ref_state2, ref_hist2 = avml(None)
    state2, hist2 = interrupted(avml, Checkpointer(tmp_path / "avml.resume.pt", {}, None), after=2)
    assert same_state(ref_state2, state2) and strip(hist2) == strip(ref_hist2) and len(hist2) == 3


def test_ddp_every_rank_resumes_bit_identically(tmp_path):
    """2 gloo processes: rank 0 writes the checkpoint (with both ranks' random states), both load it; the
    caller logs the resume line."""
    clips, labels = clips_and_labels(n=12)
    kw = dict(epochs=3, batch_size=4, lr=1e-2, weight_decay=0.01, clip_frames=4, seed=5)

    def run(ckpt, log=lambda s: None):
        m = tiny_model()
        h = train_classifier_ddp(m, clips, labels, world_size=2, log=log, checkpoint=ckpt, **kw)
        return m.state_dict(), h

    ref_state, ref_hist = run(None)
    logs: list[str] = []
    ckpt = Checkpointer(tmp_path / "ddp.resume.pt", {}, logs.append)
    ckpt.stop_after = 1
    with pytest.raises(Exception, match="TrainingStopped"):  # raised in the workers
        run(ckpt)
    saved = torch.load(ckpt.path, weights_only=True)
    assert saved["epoch"] == 1 and len(saved["state"]["rng"]) == 2
    assert not torch.equal(saved["state"]["rng"][0]["torch"], saved["state"]["rng"][1]["torch"])
    ckpt.stop_after = None
    state, hist = run(ckpt, logs.append)
    assert same_state(ref_state, state) and strip(hist) == strip(ref_hist)
    assert any("resuming from epoch 1/3" in s for s in logs), logs


def _check_ddp_resume(run, path, after: int, epochs: int = 3) -> None:
    """``run(checkpoint, log) -> (state, history)`` in DDP workers, stopped after epoch ``after`` and rerun:
    the result equals an uninterrupted run's, and the caller's log says it resumed."""
    ref_state, ref_hist = run(None)
    logs: list[str] = []
    ckpt = Checkpointer(path, {}, logs.append)
    ckpt.stop_after = after
    with pytest.raises(Exception, match="TrainingStopped"):  # raised in the workers
        run(ckpt)
    ckpt.stop_after = None
    state, hist = run(ckpt, logs.append)
    assert same_state(ref_state, state) and strip(hist) == strip(ref_hist) and len(hist) == epochs
    assert any(f"resuming from epoch {after}/{epochs}" in s for s in logs), logs


def test_ddp_gitdl_resumes_bit_identically(tmp_path):
    from finepseudo.align.train import pretrain_gitdl_ddp

    frames = torch.randint(0, 255, (8, 8, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    g = dict(num_frames=4, dim=8, width=4, layers=1, pool=2, epochs=3, batch_size=4, lr=1e-3, tau=0.1, sigma=1.0,
             seed=3)

    def run(ckpt, log=lambda s: None):
        m, h = pretrain_gitdl_ddp(frames, world_size=2, log=log, checkpoint=ckpt, **g)
        return m.state_dict(), h

    _check_ddp_resume(run, tmp_path / "gitdl.resume.pt", after=2)


def test_ddp_avml_resumes_bit_identically(tmp_path):
    """AVML in 2 gloo processes (alignability.gpus), with an existing f_S as in the rounds: killed after
    epoch 1, the rerun continues to the uninterrupted run's f_A, f_S and history."""
    from finepseudo.align.alignability import ScoreHead
    from finepseudo.align.train import train_avml_ddp

    frames = torch.randint(0, 255, (8, 8, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    a = dict(num_frames=4, epochs=3, batch_size=4, lr=1e-3, gamma=0.1, margin=0.1, omega=1.0, use_triplet=True,
             use_score=True, seed=4)

    def run(ckpt, log=lambda s: None):
        torch.manual_seed(1)
        enc, head = FrameEncoder(dim=8, width=4, layers=1, pool=2), ScoreHead()
        m, s, h = train_avml_ddp(enc, frames, labels, np.array([4, 5, 6, 7, 0, 1, 2, 3]), world_size=2, log=log,
                                 score=head, checkpoint=ckpt, **a)
        return {**m.state_dict(), **{"score." + k: v for k, v in s.state_dict().items()}}, h

    _check_ddp_resume(run, tmp_path / "avml.resume.pt", after=1)


def test_rng_states_round_trip_through_weights_only_load(tmp_path):
    import random

    torch.manual_seed(3)
    np.random.seed(4)
    random.seed(5)
    st = resume.rng_state("cpu")
    path = tmp_path / "rng.pt"
    torch.save(st, path)
    a = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    resume.set_rng_state(torch.load(path, weights_only=True), "cpu")
    b = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


# ------------------------------------------------------------------------------------------------
# the workflow steps: the checkpoint next to the output, its fingerprint, deleted at the end


@pytest.fixture()
def data(tmp_path):
    """12 videos in one shard, 4 classes; manifest, classes, labeled (8), pseudo-labels (4, 3 accepted),
    triplets, a previous round's f_E and an f_A."""
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 255, size=(12, 16, 16, 16, 3)).astype(np.uint8)
    videos = [f"v{i:02d}" for i in range(12)]
    d = tmp_path / "in"
    d.mkdir()
    write_shard(d / "shard0.npy", videos, clips)
    p = {"shards": [str(d / "shard0.npy")]}
    pd.DataFrame({"video": videos, "split": "train"}).to_csv(p.setdefault("manifest", str(d / "manifest.tsv")),
                                                             sep="\t", index=False)
    pd.DataFrame({"name": ["a", "b", "c", "d"]}).to_csv(p.setdefault("classes", str(d / "classes.tsv")), sep="\t",
                                                        index=False)
    labels = np.arange(8) % 4
    pd.DataFrame({"video": videos[:8], "label": labels}).to_csv(p.setdefault("labeled", str(d / "labeled.tsv")),
                                                               sep="\t", index=False)
    pd.DataFrame({"video": videos[8:], "label": [0, 1, 2, 3], "confidence": [0.9, 0.8, 0.7, 0.2],
                  "accepted": [True, True, True, False]}).to_csv(p.setdefault("pseudo", str(d / "pseudo.tsv")),
                                                                 sep="\t", index=False)
    pd.DataFrame({"anchor": videos[:8], "negative": [videos[(i + 1) % 8] for i in range(8)]}).to_csv(
        p.setdefault("triplets", str(d / "triplets.tsv")), sep="\t", index=False)
    torch.manual_seed(1)
    save_checkpoint(p.setdefault("fe", str(d / "fe_prev.pt")), build_video_model("r2plus1d_tiny", 4, **KW),
                    arch="r2plus1d_tiny", num_classes=4, model_kwargs=KW, metadata={"fe": FE, "classes": list("abcd")})
    torch.manual_seed(2)
    save_fa(p.setdefault("fa", str(d / "fa.pt")), FrameEncoder(**ARCH), None,
            {"arch": ARCH, "num_frames": 4, "stage": "gitdl"})
    return p


FE = {"arch": "r2plus1d_tiny", "clip_frames": 4, "batch_size": 4, "lr": 0.01, "weight_decay": 0.0, "augment": {},
      "weights": None, "epochs": 3, "min_steps": 0}
ARCH = {"dim": 8, "width": 4, "layers": 1, "pool": 2}
ALIGN = {**ARCH, "num_frames": 4, "gamma": 0.1, "margin": 0.1, "omega": 1.0, "dtw_backend": "cpu",
         "gitdl": {"epochs": 3, "batch_size": 4, "lr": 1e-3, "tau": 0.1, "sigma": 1.0},
         "avml": {"epochs": 3, "batch_size": 4, "lr": 1e-3}}


def _weights(path: str) -> dict:
    ckpt = torch.load(path, weights_only=True)
    if "state_dict" in ckpt:
        return ckpt["state_dict"]
    return {**ckpt["fa"], **{"fs." + k: v for k, v in (ckpt["fs"] or {}).items()}}


STEPS = {
    "train_fe": lambda p, out, log, **s: train_fe_step(
        labeled=p["labeled"], classes=p["classes"], shards=p["shards"], out_model=out, out_history=out + ".tsv",
        fe={**FE, **s}, seed=0, device="cpu", threads=1, log=log),
    "pretrain_fe": lambda p, out, log, **s: pretrain_fe_step(
        manifest=p["manifest"], shards=p["shards"], out_model=out, out_history=out + ".tsv", fe=FE,
        ssl={"epochs": 3, "batch_size": 4, "clip_frames": 4, "segments": 2, "proj_dim": 8, **s}, seed=0,
        device="cpu", threads=1, log=log),
    "retrain_fe": lambda p, out, log, **s: retrain_fe_step(
        fe=p["fe"], labeled=p["labeled"], pseudo=p["pseudo"], shards=p["shards"], out_model=out,
        out_history=out + ".tsv", recipe={"init": "previous", "steps": 7, "lr": 0.01, "labeled_share": 0.5,
                                          "weight": "confidence", **s}, seed=3, device="cpu", threads=1, log=log),
    "pretrain_gitdl": lambda p, out, log, **s: pretrain_gitdl_step(
        manifest=p["manifest"], shards=p["shards"], out_model=out, out_history=out + ".tsv",
        cfg={**ALIGN, "gitdl": {**ALIGN["gitdl"], **s}}, seed=0, device="cpu", threads=1, log=log),
    "train_alignability": lambda p, out, log, **s: train_alignability_step(
        model=p["fa"], labeled=p["labeled"], triplets=p["triplets"], shards=p["shards"], out_model=out,
        out_history=out + ".tsv", cfg={**ALIGN, "avml": {**ALIGN["avml"], **s}}, loss="av", seed=0, device="cpu",
        threads=1, log=log),
    "retrain_fa": lambda p, out, log, **s: retrain_fa_step(
        fa=p["fa"], labeled=p["labeled"], pseudo=p["pseudo"], shards=p["shards"], out_model=out,
        out_history=out + ".tsv", align={**ALIGN, **s}, loss="av", epochs=3, seed=0, device="cpu", threads=1,
        log=log),
}
CHANGE = {"train_fe": {"lr": 0.02}, "pretrain_fe": {"lr": 0.002}, "retrain_fe": {"lr": 0.02},
          "pretrain_gitdl": {"lr": 2e-3}, "train_alignability": {"lr": 2e-3}, "retrain_fa": {"margin": 0.2}}


def _history(path: str) -> pd.DataFrame:
    h = pd.read_csv(path, sep="\t")
    return h[[c for c in h.columns if c not in TIMING]]


@pytest.mark.parametrize("step", list(STEPS))
def test_step_resumes_from_its_checkpoint_next_to_the_output(tmp_path, data, step, monkeypatch):
    run = STEPS[step]
    ref = str(tmp_path / "ref.pt")
    run(data, ref, lambda s: None)
    out = str(tmp_path / "out" / "model.pt")
    os.makedirs(os.path.dirname(out))
    ckpt_path = resume_path(out)
    assert ckpt_path == tmp_path / "out" / "model.pt.resume.pt"
    monkeypatch.setattr(Checkpointer, "stop_after", 1)
    with pytest.raises(TrainingStopped):
        run(data, out, lambda s: None)
    assert ckpt_path.exists() and not os.path.exists(out)
    saved = torch.load(ckpt_path, weights_only=True)
    fp = json.loads(saved["settings"])
    assert fp["step"] == step and saved["epoch"] == 1
    assert {v["path"] for v in fp["inputs"].values()} >= set(data["shards"])
    assert all("mtime_ns" in v and "size" in v for v in fp["inputs"].values())
    monkeypatch.setattr(Checkpointer, "stop_after", None)
    logs: list[str] = []
    run(data, out, logs.append)
    assert any(f"resuming from epoch 1/3 (checkpoint {ckpt_path})" in s for s in logs), logs
    assert same_state(_weights(ref), _weights(out))
    pd.testing.assert_frame_equal(_history(ref + ".tsv"), _history(out + ".tsv"))
    assert not ckpt_path.exists() and not list((tmp_path / "out").glob("*.tmp"))  # deleted with the outputs


@pytest.mark.parametrize("step", ["train_fe", "retrain_fa"])
def test_step_starts_over_when_a_setting_or_an_input_changed(tmp_path, data, step, monkeypatch):
    run = STEPS[step]
    out = str(tmp_path / "model.pt")
    ckpt_path = resume_path(out)

    def stopped():
        monkeypatch.setattr(Checkpointer, "stop_after", 1)
        with pytest.raises(TrainingStopped):
            run(data, out, lambda s: None)
        monkeypatch.setattr(Checkpointer, "stop_after", None)

    # a changed setting: the checkpoint of the old one is not used, and the result is a clean run's
    stopped()
    ref = str(tmp_path / "ref.pt")
    run(data, ref, lambda s: None, **CHANGE[step])
    logs: list[str] = []
    run(data, out, logs.append, **CHANGE[step])
    assert any(f"not resuming from {ckpt_path}" in s and "other settings" in s for s in logs), logs
    assert not any("resuming from epoch" in s for s in logs)
    assert same_state(_weights(ref), _weights(out))
    # a changed input file (rewritten by an upstream job: new mtime)
    stopped()
    st = os.stat(data["labeled"])
    os.utime(data["labeled"], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    logs.clear()
    run(data, out, logs.append)
    assert any("not resuming" in s and "other input files (labeled changed)" in s for s in logs), logs
    # a corrupt checkpoint: ignored with a log line, the step still succeeds
    ckpt_path.write_bytes(b"PK\x03\x04 not a checkpoint")
    logs.clear()
    run(data, out, logs.append)
    assert any(f"ignoring the unreadable checkpoint {ckpt_path}" in s for s in logs), logs
    assert not ckpt_path.exists()


def test_fa_checkpoint_metadata_still_loads(tmp_path, data):
    """The f_A written by a resumed step is an ordinary f_A file."""
    out = str(tmp_path / "fa.pt")
    STEPS["retrain_fa"](data, out, lambda s: None)
    model, score, meta = load_fa(out)
    assert score is not None and meta["stage"] == "round"


def test_a_code_edit_starts_the_training_over(tmp_path):
    """The fingerprint of a step's checkpoint holds the digest of its library code: the same code in another
    folder resumes, an edited module starts over and the log says the code changed."""
    from pathlib import Path

    from finepseudo import provenance

    def step_module(folder: str, body: str) -> Path:
        path = tmp_path / folder / "steps.py"
        path.parent.mkdir()
        path.write_text(f"import finepseudo.stats\n{body}\n")
        return path

    same, moved, edited = (step_module("a", "X = 1"), step_module("b", "X = 1"), step_module("c", "X = 2"))
    out = tmp_path / "model.pt"
    logs: list[str] = []

    def begin(code):
        c = resume.for_output(out, step="s", settings={"lr": 1}, inputs={}, log=logs.append, code=code)
        return c, c.begin({"loop": "l"})

    ckpt, saved = begin(same)
    assert saved is None
    ckpt.save(1, 2, {"model": {"w": torch.ones(1)}})
    assert begin(moved)[1] is not None  # the digest depends on the files' content, not on where they are
    assert begin(edited)[1] is None
    assert "other library code" in logs[-1] and provenance.code_digest(edited, Path(resume.__file__).parents[1]) in logs[-1]


def test_the_code_digest_is_not_an_undeclared_read(monkeypatch):
    """Run from the checkout (the README's command), the working directory holds the library's source: the
    resume fingerprint reads it, and the read audit must not count those reads as undeclared inputs."""
    from pathlib import Path

    from finepseudo import provenance
    from finepseudo.models import steps
    from finepseudo.runlog import ReadAudit

    monkeypatch.chdir(Path(resume.__file__).resolve().parents[2])  # the checkout, which holds src/
    provenance._digest.cache_clear()  # read the modules again, under the audit
    audit = ReadAudit([], roots=["."])
    try:
        resume.for_output("out.pt", step="s", settings={}, inputs={}, log=None, code=steps.__file__)
    finally:
        audit.stop()
    audit.check()
