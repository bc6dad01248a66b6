"""finepseudo.stats: t quantiles, confidence intervals, the paired bootstrap and calibration measures."""
import math

import numpy as np
import pytest

from finepseudo.stats import (expected_calibration_error, mean_ci, nll, paired_bootstrap, reliability_table,
                              t_quantile)


@pytest.mark.parametrize("df, expected", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)])
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)


def test_t_quantile_symmetry_and_limit():
    assert t_quantile(0.5, 3) == 0.0
    assert t_quantile(0.025, 4) == pytest.approx(-2.776, abs=1e-3)
    assert t_quantile(0.995, 1) == pytest.approx(63.657, abs=1e-3)
    assert t_quantile(0.975, 10_000) == pytest.approx(1.95996, abs=1e-3)  # the normal quantile


def test_mean_ci_hand_case():
    # values 1, 2, 3: mean 2, sd 1, se 1/sqrt(3); half-width t_{0.975,2} / sqrt(3) = 4.3027 / 1.7321 = 2.4841
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert lo == pytest.approx(2 - 2.4841, abs=1e-3) and hi == pytest.approx(2 + 2.4841, abs=1e-3)
    # 90 %: t_{0.95,2} = 2.920 -> half-width 1.6858
    _, lo90, hi90 = mean_ci([1.0, 2.0, 3.0], level=0.9)
    assert hi90 - 2 == pytest.approx(1.6858, abs=1e-3)


def test_mean_ci_small_n():
    m, lo, hi = mean_ci([42.0])
    assert m == 42.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(x) for x in mean_ci([]))
    assert mean_ci([5.0, 5.0, 5.0]) == (5.0, 5.0, 5.0)


# ------------------------------------------------------------------------------------ bootstrap


def test_bootstrap_identical_arrays_is_zero():
    rng = np.random.default_rng(0)
    a = [rng.random(50) < 0.5 for _ in range(3)]
    r = paired_bootstrap(a, [x.copy() for x in a], n_boot=500)
    assert r["diff"] == 0.0 and r["lo"] == 0.0 and r["hi"] == 0.0
    assert r["p_boot_le_0"] == 1.0 and r["n_seeds"] == 3 and r["n_videos"] == 150


def test_bootstrap_all_right_against_all_wrong():
    a = [np.ones(20, bool), np.ones(30, bool)]
    b = [np.zeros(20, bool), np.zeros(30, bool)]
    r = paired_bootstrap(a, b, n_boot=300)
    assert (r["diff"], r["lo"], r["hi"], r["p_boot_le_0"]) == (100.0, 100.0, 100.0, 0.0)
    r = paired_bootstrap(b, a, n_boot=300)
    assert (r["diff"], r["lo"], r["hi"], r["p_boot_le_0"]) == (-100.0, -100.0, -100.0, 1.0)


def test_bootstrap_a_wins_k_of_n_and_never_loses():
    n, k = 100, 30
    b = np.zeros(n, bool)
    b[50:] = True  # B right on half
    a = b.copy()
    a[:k] = True  # A also right on k videos B gets wrong, never wrong where B is right
    r = paired_bootstrap([a, a, a], [b, b, b], n_boot=2000, seed=3)
    assert r["diff"] == pytest.approx(100 * k / n)
    assert 0 < r["lo"] < r["diff"] < r["hi"] <= 100
    assert r["p_boot_le_0"] == 0.0
    # one win in 100: the interval reaches 0 (a replicate without the winning video has difference 0)
    a1 = b.copy()
    a1[0] = True
    r1 = paired_bootstrap([a1], [b], n_boot=2000)
    assert r1["diff"] == pytest.approx(1.0) and r1["lo"] == 0.0 and r1["p_boot_le_0"] > 0


def test_bootstrap_averages_seeds_unweighted_and_is_deterministic():
    a = [np.array([1, 1, 0, 0]), np.array([1, 1, 1, 1, 1, 0, 0, 0])]
    b = [np.array([0, 0, 0, 0]), np.array([1, 1, 1, 1, 1, 0, 0, 0])]
    r = paired_bootstrap(a, b, n_boot=400, seed=7)
    assert r["diff"] == pytest.approx((50.0 + 0.0) / 2)
    assert paired_bootstrap(a, b, n_boot=400, seed=7) == r
    assert paired_bootstrap(a, b, n_boot=400, seed=8) != r


def test_bootstrap_interval_width_is_plausible():
    """With one seed the interval is the within-seed one: about diff ± 1.96 * the paired standard error."""
    rng = np.random.default_rng(1)
    n = 600
    a = rng.random(n) < 0.7
    b = np.where(rng.random(n) < 0.8, a, ~a)  # disagree on ~20 % of the videos
    r = paired_bootstrap([a], [b], n_boot=4000)
    d = a.astype(float) - b.astype(float)
    se = 100 * d.std(ddof=1) / np.sqrt(n)
    assert (r["hi"] - r["lo"]) == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_bootstrap_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="seeds"):
        paired_bootstrap([np.ones(3)], [np.ones(3), np.ones(3)])
    with pytest.raises(ValueError, match="seed 1: a has 3 videos and b 4"):
        paired_bootstrap([np.ones(2), np.ones(3)], [np.ones(2), np.ones(4)])
    with pytest.raises(ValueError, match="0/1"):
        paired_bootstrap([np.array([0.5, 1.0])], [np.array([1.0, 1.0])])
    with pytest.raises(ValueError, match="no seeds"):
        paired_bootstrap([], [])


# ---------------------------------------------------------------------------------- calibration


def _hand_case():
    # 4 samples, 2 classes, 2 bins (0, .5] and (.5, 1]:
    #   max probs .9 (right), .8 (wrong), .6 (right), .5 (right; .5 sits in the first bin)
    #   bin 0: {.5}          conf .5,  acc 1     -> weight 1/4, gap .5
    #   bin 1: {.9, .8, .6}  conf .7667, acc 2/3 -> weight 3/4, gap .1
    #   ECE = .25 * .5 + .75 * (2.3/3 - 2/3) = .125 + .075 = .2
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.5, 0.5]])
    labels = np.array([0, 0, 1, 0])
    return probs, labels


def test_ece_hand_case():
    probs, labels = _hand_case()
    assert expected_calibration_error(probs, labels, n_bins=2) == pytest.approx(0.2)


def test_reliability_table_matches_ece():
    probs, labels = _hand_case()
    t = reliability_table(probs, labels, n_bins=2)
    assert list(t.columns) == ["bin", "lo", "hi", "count", "confidence", "accuracy"]
    assert t["count"].tolist() == [1, 3]
    assert t["confidence"].tolist() == pytest.approx([0.5, 2.3 / 3])
    assert t["accuracy"].tolist() == pytest.approx([1.0, 2 / 3])
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 5)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 5, 300)
    t = reliability_table(p, y, n_bins=10)
    full = t[t["count"] > 0]
    ece = (full["count"] / 300 * (full["accuracy"] - full["confidence"]).abs()).sum()
    assert expected_calibration_error(p, y, n_bins=10) == pytest.approx(ece)
    assert t["count"].sum() == 300 and t["accuracy"].isna().tolist() == (t["count"] == 0).tolist()


def test_ece_bounds():
    probs = np.eye(3)[[0, 1, 2, 0]]
    assert expected_calibration_error(probs, np.array([0, 1, 2, 0])) == 0.0  # confident and right
    assert expected_calibration_error(probs, np.array([1, 2, 0, 1])) == 1.0  # confident and wrong
    assert math.isnan(expected_calibration_error(np.zeros((0, 3)), np.array([], int)))


def test_nll():
    probs = np.array([[0.5, 0.5], [0.25, 0.75], [1.0, 0.0]])
    labels = np.array([0, 1, 1])
    # -(log .5 + log .75 + log 1e-12) / 3
    expected = -(math.log(0.5) + math.log(0.75) + math.log(1e-12)) / 3
    assert nll(probs, labels) == pytest.approx(expected)
