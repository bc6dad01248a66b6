"""The round training recipe of f_E (pseudo.fe) through retrain_fe_step, on tiny synthetic shards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from finepseudo.data.frames import write_shard
from finepseudo.pseudo.steps import retrain_fe_step, training_set
from finepseudo.models.steps import init_fe_model
from finepseudo.models.train import save_checkpoint

FE = {"arch": "r2plus1d_tiny", "clip_frames": 4, "batch_size": 4, "lr": 0.01, "weight_decay": 0.0, "augment": {},
      "weights": None}
KW = {"widths": (8, 16), "s_strides": (2, 2), "t_strides": (1, 2), "stem_width": 8}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def data(tmp_path):
    """12 videos in one shard: 4 labeled, 8 unlabeled with pseudo-labels (6 accepted, varying confidence)."""
    rng = np.random.default_rng(0)
    clips = torch.from_numpy(rng.integers(0, 255, size=(12, 8, 16, 16, 3)).astype(np.uint8))
    videos = [f"v{i:02d}" for i in range(12)]
    shard = tmp_path / "shard0.npy"
    write_shard(shard, videos, clips)
    pd.DataFrame({"video": videos[:4], "label": [0, 1, 0, 1]}).to_csv(tmp_path / "labeled.tsv", sep="\t", index=False)
    conf = np.array([0.9, 0.8, 0.7, 0.95, 0.6, 0.99, 0.2, 0.1])
    pd.DataFrame({"video": videos[4:], "label": [0, 1, 1, 0, 1, 0, 1, 0], "confidence": conf,
                  "accepted": conf > 0.5}).to_csv(tmp_path / "pseudo.tsv", sep="\t", index=False)
    return tmp_path, [str(shard)]


def _prev(path, seed):
    """A 'previous round' f_E checkpoint: the same architecture, weights drawn from ``seed``."""
    torch.manual_seed(seed)
    from finepseudo.models.video import build_video_model

    net = build_video_model("r2plus1d_tiny", 2, **KW)
    save_checkpoint(path, net, arch="r2plus1d_tiny", num_classes=2, model_kwargs=KW,
                    metadata={"fe": FE, "classes": ["a", "b"]})
    return str(path)


def _run(d, shards, prev, recipe, name):
    out = d / f"{name}.pt"
    retrain_fe_step(fe=prev, labeled=str(d / "labeled.tsv"), pseudo=str(d / "pseudo.tsv"), shards=shards,
                    out_model=str(out), out_history=str(d / f"{name}.tsv"), recipe=recipe, seed=3, device="cpu",
                    threads=1, log=lambda s: None, init=None, init_seed=11)
    return torch.load(out, weights_only=True)["state_dict"], pd.read_csv(d / f"{name}.tsv", sep="\t")


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


RECIPE = {"init": "fixed", "steps": 5, "lr": 0.01, "labeled_share": 0.5, "weight": "confidence"}


def test_training_set_has_labeled_and_accepted_only(data):
    d, _ = data
    t = training_set(str(d / "labeled.tsv"), str(d / "pseudo.tsv"))
    assert t["source"].tolist() == ["labeled"] * 4 + ["pseudo"] * 6
    assert t["confidence"].iloc[4:].tolist() == [0.9, 0.8, 0.7, 0.95, 0.6, 0.99]


def test_fixed_init_ignores_the_previous_round_and_previous_does_not(data):
    """init fixed: round r starts from the warm-up's initialisation (seeded), so the previous round's weights
    do not matter; init previous: they do. The step budget is honoured (5 steps: 10 videos / 4 -> 3 per epoch)."""
    d, shards = data
    p1, p2 = _prev(d / "p1.pt", 1), _prev(d / "p2.pt", 2)
    a, hist = _run(d, shards, p1, RECIPE, "a")
    b, _ = _run(d, shards, p2, RECIPE, "b")
    assert _same(a, b) and len(hist) == 2
    c, _ = _run(d, shards, p1, {**RECIPE, "init": "previous"}, "c")
    e, _ = _run(d, shards, p2, {**RECIPE, "init": "previous"}, "e")
    assert not _same(c, e) and not _same(a, c)
    start = init_fe_model(FE, 2, 11, None, **KW).state_dict()  # what fixed training started from
    assert not _same(a, start)


def test_confidence_weights_and_labeled_share_change_training(data):
    d, shards = data
    prev = _prev(d / "p.pt", 1)
    base, _ = _run(d, shards, prev, RECIPE, "base")
    again, _ = _run(d, shards, prev, RECIPE, "again")
    assert _same(base, again)  # deterministic
    no_w, _ = _run(d, shards, prev, {**RECIPE, "weight": "none"}, "no_w")
    no_share, _ = _run(d, shards, prev, {**RECIPE, "labeled_share": 0.0}, "no_share")
    assert not _same(base, no_w) and not _same(base, no_share)
    with pytest.raises(ValueError, match="pseudo.fe.weight"):
        _run(d, shards, prev, {**RECIPE, "weight": "entropy"}, "bad")
    with pytest.raises(ValueError, match="pseudo.fe.init"):
        _run(d, shards, prev, {**RECIPE, "init": "warm"}, "bad2")
