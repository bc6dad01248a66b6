"""select_hparams_step and pseudo_label_step (finepseudo.pseudo.steps) called directly on a tiny frame store.

p_E comes from the f_E checkpoint through train.predict_proba_and_logits (tested in test_train.py); p_A is
computed here by hand: f_A's embeddings, soft-DTW of the cosine cost as a plain double loop, f_S's formula
and the class means over the labeled gallery. The choices of theta and tau and the accepted pseudo-labels are
then derived from those by hand and compared with what the steps wrote. Every file the steps open is
recorded: the test split and the unlabeled pool's truth are never among them."""

from __future__ import annotations

import builtins
import io
import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from finepseudo.align.steps import save_fa
from finepseudo.align.alignability import ScoreHead
from finepseudo.data.frames import write_shard
from finepseudo.models.video import build_video_model
from finepseudo.pseudo.steps import pseudo_label_step, select_hparams_step
from finepseudo.models.train import load_checkpoint, predict_proba_and_logits, save_checkpoint
from fa_fixtures import seeded_encoder, warped_class_clips

pytestmark = pytest.mark.usefixtures("one_thread")

T = 8
C = 3
GAMMA = 0.1
ARCH = {"dim": 8, "width": 4, "layers": 0, "pool": 2}
FE = {"arch": "r2plus1d_tiny", "clip_frames": 4, "batch_size": 4, "lr": 0.01, "weight_decay": 0.0, "augment": {},
      "weights": None}
KW = {"widths": (8, 16), "s_strides": (2, 2), "t_strides": (1, 2), "stem_width": 8}
ALIGN = {"gamma": GAMMA, "dtw_backend": "cpu"}
CLIPS_PER_VIDEO = 2
#: videos per split and class
SPLITS = {"labeled": 2, "val": 5, "unlabeled": 4, "test": 2}


def _make_clips(labels: list[int], rng: np.random.Generator) -> np.ndarray:
    """Videos warped in time plus strong pixel noise (so phi_A is right on most videos, not all)."""
    return warped_class_clips(labels, T, rng, noise=70)


def _soft_dtw(u: np.ndarray, v: np.ndarray, gamma: float) -> float:
    """Soft-DTW of the cosine cost between two unit-vector sequences, divided by len(u) + len(v)."""
    c = 1.0 - u @ v.T
    r = np.full((len(u) + 1, len(v) + 1), np.inf)
    r[0, 0] = 0.0
    for i in range(1, len(u) + 1):
        for j in range(1, len(v) + 1):
            prev = np.array([r[i - 1, j - 1], r[i - 1, j], r[i, j - 1]])
            m = prev.min()
            soft = m - gamma * np.log(np.exp(-(prev - m) / gamma).sum())
            r[i, j] = c[i - 1, j - 1] + soft
    return r[-1, -1] / (len(u) + len(v))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """One shard of every split's videos; labeled, val, unlabeled (no label column), unlabeled_truth and
    test tables; classes; a random f_E checkpoint and an f_A + f_S checkpoint."""
    d = tmp_path_factory.mktemp("pseudo")
    rng = np.random.default_rng(0)
    tables, videos, labels = {}, [], []
    for split, k in SPLITS.items():
        lab = [c for c in range(C) for _ in range(k)]
        vids = [f"{split}{i:02d}" for i in range(len(lab))]
        tables[split] = pd.DataFrame({"video": vids, "label": lab})
        videos += vids
        labels += lab
    clips = _make_clips(labels, rng)
    write_shard(d / "shard0.npy", videos, clips)
    for split in ("labeled", "val", "test"):
        tables[split].to_csv(d / f"{split}.tsv", sep="\t", index=False)
    tables["unlabeled"][["video"]].to_csv(d / "unlabeled.tsv", sep="\t", index=False)
    tables["unlabeled"].to_csv(d / "unlabeled_truth.tsv", sep="\t", index=False)
    pd.DataFrame({"label": range(C), "name": ["a", "b", "c"]}).to_csv(d / "classes.tsv", sep="\t", index=False)
    torch.manual_seed(1)
    save_checkpoint(d / "fe.pt", build_video_model("r2plus1d_tiny", C, **KW), arch="r2plus1d_tiny", num_classes=C,
                    model_kwargs=KW, metadata={"fe": FE})
    fa = seeded_encoder(clips, ARCH)
    save_fa(str(d / "fa.pt"), fa, ScoreHead(shift=0.15, scale=40.0),
            {"arch": ARCH, "stage": "avml", "num_frames": T})
    frames = {split: clips[[videos.index(v) for v in t["video"]]] for split, t in tables.items()}
    return {"dir": d, "tables": tables, "frames": frames, "fa": fa, "shards": [str(d / "shard0.npy")]}


def _by_hand(data, split: str) -> dict:
    """p_E, logits and Sbar of a split's videos: Sbar_c = mean over class c's labeled videos of f_S's
    sigmoid(-scale (D - shift)), D the soft-DTW distance of f_A's embeddings."""
    net, info = load_checkpoint(data["dir"] / "fe.pt")
    p_e, logits = predict_proba_and_logits(net, torch.from_numpy(data["frames"][split]), clip_frames=FE["clip_frames"],
                                           clips_per_video=CLIPS_PER_VIDEO)
    with torch.no_grad():
        q = data["fa"](torch.from_numpy(data["frames"][split])).numpy().astype(np.float64)
        g = data["fa"](torch.from_numpy(data["frames"]["labeled"])).numpy().astype(np.float64)
    dist = np.array([[_soft_dtw(a, b, GAMMA) for b in g] for a in q])
    s = 1.0 / (1.0 + np.exp(40.0 * (dist - 0.15)))
    gl = data["tables"]["labeled"]["label"].to_numpy()
    sbar = np.stack([s[:, gl == c].mean(1) for c in range(C)], axis=1)
    return {"p_e": p_e.astype(np.float64), "logits": logits.astype(np.float64), "sbar": sbar}


@pytest.fixture(scope="module")
def val_by_hand(data):
    return _by_hand(data, "val")


@pytest.fixture(scope="module")
def pool_by_hand(data):
    return _by_hand(data, "unlabeled")


@pytest.fixture()
def opened(monkeypatch):
    """Every path opened through open() / io.open() (pandas, numpy, torch and pathlib all go through them)."""
    seen: list[str] = []
    real = builtins.open

    def recording(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)):
            seen.append(os.path.realpath(os.fsdecode(file)))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording)
    monkeypatch.setattr(io, "open", recording)
    return seen


def _nll(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())


# --------------------------------------------------------------------------------------- select_hparams

TAU_GRID = [0.01, 0.03, 0.1, 0.3, 1.0]


def _select(data, name: str, theta_grid, target: float, *, source: str = "both", val: str | None = None,
            **kw) -> tuple[dict, pd.DataFrame]:
    d = data["dir"]
    out, cand = d / f"{name}.json", d / f"{name}_candidates.tsv"
    select_hparams_step(fe=str(d / "fe.pt"), fa=str(d / "fa.pt") if source != "fe" else None,
                        labeled=str(d / "labeled.tsv"), val=val or str(d / "val.tsv"), classes=str(d / "classes.tsv"),
                        shards=data["shards"], out=str(out), out_candidates=str(cand), method=name, source=source,
                        open_world=False, defaults={"theta": 0.55, "tau": 0.1, "delta": 0.0},
                        select=["theta", "tau"], theta_grid=list(theta_grid), tau_grid=TAU_GRID,
                        target_precision=target, known_keep=0.9, align=ALIGN, clips_per_video=CLIPS_PER_VIDEO,
                        device="cpu", threads=1, log=lambda s: None, **kw)
    return json.loads(out.read_text()), pd.read_csv(cand, sep="\t")


def _theta_case(val_by_hand, y):
    """The validation combination by hand, and a grid and target precision whose answer is an interior grid
    value: thresholds just below each video's confidence, target the precision reached at one of them."""
    tau = TAU_GRID[int(np.argmin([_nll(_softmax(val_by_hand["sbar"] / t), y) for t in TAU_GRID]))]
    p = (val_by_hand["p_e"] + _softmax(val_by_hand["sbar"] / tau)) / 2
    conf, right = p.max(1), p.argmax(1) == y
    grid = sorted({float(np.floor(c * 1e4) / 1e4) for c in conf})
    prec = [right[conf >= g].mean() for g in grid]
    # target: the precision at a grid value in the upper half that beats every smaller one, so the smallest
    # value reaching the target is that one (and neither end of the grid)
    k = next(i for i in range(len(grid) // 2, len(grid) - 1) if prec[i] > max(prec[:i]))
    return tau, p, grid, float(prec[k]), grid[k]


def test_select_hparams_chooses_tau_and_theta_as_computed_by_hand(data, val_by_hand, opened):
    y = data["tables"]["val"]["label"].to_numpy()
    tau, p, grid, target, theta = _theta_case(val_by_hand, y)
    assert tau not in (TAU_GRID[0], TAU_GRID[-1])  # the fixture makes tau a real choice
    rec, cand = _select(data, "finepseudo", grid, target, calibrate=False)
    assert rec["values"]["tau"] == tau and rec["chosen_on"]["tau"] == "validation"
    assert rec["values"]["theta"] == pytest.approx(theta) and rec["chosen_on"]["theta"] == "validation"
    assert theta not in (grid[0], grid[-1])  # a real choice, not an end of the grid
    assert rec["n_val"] == len(y) and rec["values"]["T_E"] is None
    # the candidates table holds every grid value with its validation precision, the chosen one marked
    th = cand[cand["hparam"] == "theta"].set_index("value")
    for g in grid:
        acc = p.max(1) >= g
        assert th.loc[g, "val_accepted"] == acc.sum()
        assert th.loc[g, "val_precision"] == pytest.approx((p.argmax(1) == y)[acc].mean(), abs=1e-6)
    assert th.index[th["chosen"]].tolist() == [pytest.approx(theta)]
    ta = cand[cand["hparam"] == "tau"].set_index("value")
    for t in TAU_GRID:
        assert ta.loc[t, "val_nll"] == pytest.approx(_nll(_softmax(val_by_hand["sbar"] / t), y), abs=1e-5)
    # read: its inputs; never the test split or the unlabeled pool (or its truth)
    d = data["dir"]
    assert os.path.realpath(d / "val.tsv") in opened and os.path.realpath(d / "fa.pt") in opened
    for never in ("test.tsv", "unlabeled.tsv", "unlabeled_truth.tsv"):
        assert os.path.realpath(d / never) not in opened


def test_select_hparams_theta_follows_the_target_precision(data, val_by_hand):
    """An unreachable target gives the grid's largest value; a target every threshold meets, the smallest."""
    y = data["tables"]["val"]["label"].to_numpy()
    _, _, grid, _, _ = _theta_case(val_by_hand, y)
    assert _select(data, "unreachable", grid, 1.01)[0]["values"]["theta"] == pytest.approx(max(grid))
    rec = _select(data, "trivial", grid, 0.0)[0]
    assert rec["values"]["theta"] == pytest.approx(min(grid))
    assert rec["at_grid_edge"]["theta"] is True


def test_select_hparams_never_reads_the_test_split_or_the_truth(data, tmp_path, opened):
    """Poisoned copies of the test split and the truth beside val.tsv (videos of val with wrong labels) and
    the recorded opens: the choice is the same and only the step's inputs are read."""
    d = data["dir"]
    y = data["tables"]["val"]["label"].to_numpy()
    base, _ = _select(data, "clean", [0.4, 0.5, 0.6, 0.7], 0.6)
    allowed = {os.path.realpath(p) for p in (d / "fe.pt", d / "fa.pt", d / "labeled.tsv", d / "val.tsv",
                                             d / "classes.tsv", d / "shard0.npy", d / "shard0.status.tsv",
                                             d / "clean.json", d / "clean_candidates.tsv")}
    assert set(opened) <= allowed, set(opened) - allowed
    poison = data["tables"]["val"].assign(label=(y + 1) % C)
    poison.to_csv(d / "test.tsv", sep="\t", index=False)
    poison.to_csv(d / "unlabeled_truth.tsv", sep="\t", index=False)
    try:
        again, _ = _select(data, "clean", [0.4, 0.5, 0.6, 0.7], 0.6)
    finally:
        data["tables"]["test"].to_csv(d / "test.tsv", sep="\t", index=False)
        data["tables"]["unlabeled"].to_csv(d / "unlabeled_truth.tsv", sep="\t", index=False)
    assert again == base


def test_select_hparams_calibrates_pe_on_validation(data, val_by_hand):
    """calibrate: T_E is the grid temperature with the lowest validation NLL of softmax(logits / T_E)."""
    from finepseudo.pseudo.hparams import TEMPERATURE_GRID

    y = data["tables"]["val"]["label"].to_numpy()
    nll = np.array([_nll(_softmax(val_by_hand["logits"] / t), y) for t in TEMPERATURE_GRID])
    t_hand = TEMPERATURE_GRID[int(np.argmin(nll))]
    rec, _ = _select(data, "pl", [0.4, 0.6], 0.5, source="fe", calibrate=True,
                     out_calibration=str(data["dir"] / "pl_calibration.tsv"))
    assert rec["values"]["T_E"] == pytest.approx(t_hand) and rec["chosen_on"]["T_E"] == "validation"
    assert rec["values"]["tau"] is None  # p_A is not used by PL
    cal = pd.read_csv(data["dir"] / "pl_calibration.tsv", sep="\t").set_index("distribution")
    assert cal.loc["p_E_calibrated", "nll"] == pytest.approx(nll.min(), abs=1e-5)
    assert cal.loc["p_E", "top1"] == pytest.approx(100 * (val_by_hand["p_e"].argmax(1) == y).mean(), abs=1e-3)


# ----------------------------------------------------------------------------------------- pseudo_label


def _pseudo(data, name: str, theta: float, tau: float, *, source: str = "both", accept: dict | None = None,
            unlabeled: str | None = None, theta_on: str = "config", **kw):
    d = data["dir"]
    hp = d / f"{name}_hparams.json"
    hp.write_text(json.dumps({"values": {"theta": theta, "tau": tau, "delta": None, "T_E": None},
                              "chosen_on": {"theta": theta_on}}))
    out, info = d / f"{name}.tsv", d / f"{name}.json"
    pseudo_label_step(fe=str(d / "fe.pt"), fa=str(d / "fa.pt"), labeled=str(d / "labeled.tsv"),
                      unlabeled=unlabeled or str(d / "unlabeled.tsv"), classes=str(d / "classes.tsv"),
                      shards=data["shards"], out=str(out), source=source, hparams=str(hp), align=ALIGN,
                      clips_per_video=CLIPS_PER_VIDEO, device="cpu", threads=1, log=lambda s: None, accept=accept,
                      out_info=str(info), **kw)
    return pd.read_csv(out, sep="\t", dtype={"video": str}), json.loads(info.read_text())


def test_each_round_chooses_theta_again_on_validation_for_its_encoders(data, val_by_hand, opened):
    from finepseudo.pseudo.hparams import select_theta

    y = data["tables"]["val"]["label"].to_numpy()
    tau, p, grid, target, theta = _theta_case(val_by_hand, y)
    # the round starts from a theta of round 0 far from this round's choice, which must replace it
    table, info = _pseudo(data, "per_round", 0.999, tau, theta_on="validation", val=str(data["dir"] / "val.tsv"),
                          theta_grid=grid, target_precision=target)
    assert info["theta"] == pytest.approx(select_theta(p, y, grid, target)[0]) == pytest.approx(theta)
    assert info["theta_chosen_on"] == "validation, this round"
    np.testing.assert_array_equal(table["accepted"], table["confidence"] >= info["theta"])
    assert info["val_top1"]["p_E"] == pytest.approx(100 * (val_by_hand["p_e"].argmax(1) == y).mean(), abs=1e-3)
    assert info["val_agreement"] == pytest.approx(
        (val_by_hand["p_e"].argmax(1) == val_by_hand["sbar"].argmax(1)).mean(), abs=1e-6)
    assert os.path.realpath(data["dir"] / "val.tsv") in opened
    # theta from config is kept as it is
    _, kept = _pseudo(data, "per_round_cfg", 0.55, tau, val=str(data["dir"] / "val.tsv"), theta_grid=grid,
                      target_precision=target)
    assert kept["theta"] == 0.55


def test_the_log_linear_pool_is_fitted_on_validation_each_round(data, val_by_hand, pool_by_hand):
    from finepseudo.pseudo.hparams import fit_pool_weights
    from finepseudo.pseudo.pseudolabel import log_linear_pool

    tau = 0.1
    y = data["tables"]["val"]["label"].to_numpy()
    weights, _ = fit_pool_weights(val_by_hand["p_e"], _softmax(val_by_hand["sbar"] / tau), y)
    table, info = _pseudo(data, "pool", 0.5, tau, val=str(data["dir"] / "val.tsv"), rule="loglinear",
                          calibrate=True)
    assert tuple(info["weights"]) == pytest.approx(weights)
    assert info["T_E"] is None  # the pool's weight on p_E is its temperature
    p = log_linear_pool(pool_by_hand["p_e"], _softmax(pool_by_hand["sbar"] / tau), *weights)
    np.testing.assert_array_equal(table["label"], p.argmax(1))
    np.testing.assert_allclose(table["confidence"], p.max(1), atol=2e-6)


def test_agreement_gated_acceptance(data, pool_by_hand):
    table, _ = _pseudo(data, "agree", 0.0, 0.1, rule="agree")
    agree = table["fe_label"] == table["fa_label"]
    assert 0 < agree.sum() < len(table)
    np.testing.assert_array_equal(table["accepted"], agree)


def test_pseudo_labels_are_the_combination_by_hand_thresholded_at_theta(data, pool_by_hand, opened):
    tau = 0.1
    p = (pool_by_hand["p_e"] + _softmax(pool_by_hand["sbar"] / tau)) / 2
    conf = p.max(1)
    theta = float(np.median(conf))  # about half the pool passes
    table, info = _pseudo(data, "round1", theta, tau)
    assert table["video"].tolist() == data["tables"]["unlabeled"]["video"].tolist()
    np.testing.assert_array_equal(table["label"], p.argmax(1))
    np.testing.assert_allclose(table["confidence"], conf, atol=2e-6)
    np.testing.assert_array_equal(table["fe_label"], pool_by_hand["p_e"].argmax(1))
    np.testing.assert_array_equal(table["accepted"], table["confidence"] >= theta)
    assert 0 < table["accepted"].sum() < len(table)
    assert info["accepted"] == table["accepted"].sum() and info["pool"] == len(table)
    assert info["min_accept_used"] is False and info["theta"] == theta
    d = data["dir"]
    assert os.path.realpath(d / "unlabeled.tsv") in opened
    for never in ("unlabeled_truth.tsv", "test.tsv", "val.tsv"):
        assert os.path.realpath(d / never) not in opened


def test_min_accept_takes_the_most_confident_when_theta_accepts_too_few(data, pool_by_hand):
    tau = 0.1
    p = (pool_by_hand["p_e"] + _softmax(pool_by_hand["sbar"] / tau)) / 2
    conf = p.max(1)
    n = len(conf)
    table, info = _pseudo(data, "floor", 1.0, tau, accept={"rule": "threshold", "min_accept": 0.25})
    assert (conf < 1.0).all()  # theta accepts none by itself
    k = int(np.ceil(0.25 * n))
    assert table["accepted"].sum() == k and info["min_accept_used"] is True
    assert set(np.flatnonzero(table["accepted"])) == set(np.argsort(-conf, kind="stable")[:k])
    # a theta that already accepts more than the floor: the floor does not change anything
    low = float(np.sort(conf)[n // 4])  # accepts 3/4 of the pool
    table, info = _pseudo(data, "nofloor", low, tau, accept={"rule": "threshold", "min_accept": 0.25})
    np.testing.assert_array_equal(table["accepted"], table["confidence"] >= low)
    assert table["accepted"].sum() > k and info["min_accept_used"] is False


def test_pseudo_labels_do_not_change_when_the_truth_is_scrambled(data):
    d = data["dir"]
    before, _ = _pseudo(data, "truth_a", 0.5, 0.1)
    first = (d / "truth_a.tsv").read_bytes()
    truth = data["tables"]["unlabeled"]
    # the truth scrambled, and an unlabeled list that carries a (wrong) label column by mistake
    truth.assign(label=np.random.default_rng(1).permutation(truth["label"].to_numpy())[::-1]).to_csv(
        d / "unlabeled_truth.tsv", sep="\t", index=False)
    truth.assign(label=(truth["label"] + 1) % C).to_csv(d / "unlabeled_with_labels.tsv", sep="\t", index=False)
    try:
        _pseudo(data, "truth_b", 0.5, 0.1, unlabeled=str(d / "unlabeled_with_labels.tsv"))
    finally:
        truth.to_csv(d / "unlabeled_truth.tsv", sep="\t", index=False)
    assert (d / "truth_b.tsv").read_bytes() == first
    assert before["accepted"].any()
