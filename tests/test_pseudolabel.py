import numpy as np
import pandas as pd
import pytest

from finepseudo.pseudo.pseudolabel import combine, pseudo_label_table, quality


def test_combine_sources():
    pe = np.array([[0.8, 0.2], [0.4, 0.6]])
    pa = np.array([[0.2, 0.8], [0.0, 1.0]])
    assert np.array_equal(combine(pe, pa, "fe"), pe)
    assert np.array_equal(combine(pe, pa, "fa"), pa)
    assert np.allclose(combine(pe, pa, "both"), [[0.5, 0.5], [0.2, 0.8]])
    with pytest.raises(ValueError, match="unknown pseudo-label source"):
        combine(pe, pa, "sum")


def test_threshold_open_world_and_quality():
    vids = ["a", "b", "c", "d"]
    pe = np.array([[0.9, 0.1], [0.6, 0.4], [0.1, 0.9], [0.95, 0.05]])
    pa = np.array([[0.9, 0.1], [0.2, 0.8], [0.2, 0.8], [0.9, 0.1]])
    sbar = np.array([[0.9, 0.1], [0.7, 0.6], [0.2, 0.8], [0.3, 0.2]])
    t = pseudo_label_table(vids, pe, pa, sbar, source="both", theta=0.7, delta=0.5)
    assert t["accepted"].tolist() == [True, False, True, False]  # b below theta, d rejected as novel
    assert t["rejected_novel"].tolist() == [False, False, False, True]
    truth = pd.DataFrame({"video": vids, "label": [0, 1, 0, 2]})  # label 2 = a novel class
    q = quality(t, truth, novel_labels=[2])
    assert q["coverage"] == 0.5 and q["precision"] == 0.5
    assert q["fe_fa_agreement"] == 0.75
    assert q["novel_rejection_precision"] == 1.0 and q["novel_rejection_recall"] == 1.0
    assert q["per_class_precision"] == {0: 1.0, 1: 0.0}


def test_select_tau_theta_delta_round():
    from finepseudo.pseudo import hparams as hp

    sbar = np.array([[0.9, 0.1], [0.8, 0.3], [0.2, 0.7], [0.6, 0.5]])
    y = np.array([0, 0, 1, 1])
    tau, tab = hp.select_tau(sbar, y, [0.01, 0.1, 1.0])
    assert list(tab["tau"]) == [0.01, 0.1, 1.0] and tau == tab.loc[tab["val_nll"].idxmin(), "tau"]
    assert tau == 0.1  # 0.01 is overconfident on the mistake (row 4), 1.0 is too flat
    p = np.array([[0.95, 0.05], [0.75, 0.25], [0.1, 0.9], [0.65, 0.35]])  # the 0.65 one is wrong
    theta, tab = hp.select_theta(p, y, [0.5, 0.7, 0.9], target_precision=0.8)
    assert theta == 0.7 and tab["val_accepted"].tolist() == [4, 3, 2]
    assert tab["val_precision"].tolist() == [0.75, 1.0, 1.0]
    assert hp.select_theta(p, y, [0.5, 0.6], target_precision=0.99)[0] == 0.6  # unreachable: the largest
    assert hp.select_delta(sbar, 0.75) == 0.7  # keeps 3 of 4 (max Sbar 0.9, 0.8, 0.7, 0.6)
    assert hp.select_round({1: 50.0, 2: 75.0, 3: 75.0}) == 2
    with pytest.raises(ValueError):
        hp.select_round({})


def test_select_round_reads_validation_not_test(tmp_path):
    """The chosen round follows validation accuracy; the rounds' test files are only copied."""
    import json

    from finepseudo.pseudo.hparams import select_round_step

    hp_file = tmp_path / "hparams.json"
    hp_file.write_text(json.dumps({"chosen_on": {"rounds": "validation"}}))
    val, rounds = [], []
    for r, (v, t) in enumerate([(60.0, 90.0), (80.0, 10.0), (70.0, 95.0)], start=1):
        d = tmp_path / f"round{r}"
        d.mkdir()
        (d / "val.json").write_text(json.dumps({"top1": v}))
        (d / "metrics.json").write_text(json.dumps({"top1": t, "model": f"round{r}/fe.pt"}))
        for k in ("per_class", "confusion", "predictions"):
            (d / f"{k}.tsv").write_text(f"{k} of round {r}\n")
        val.append(str(d / "val.json"))
        rounds.append({"metrics": str(d / "metrics.json"), **{k: str(d / f"{k}.tsv")
                                                                for k in ("per_class", "confusion", "predictions")}})
    out = {k: str(tmp_path / f"out_{k}") for k in ("metrics", "per_class", "confusion", "predictions")}
    select_round_step(hparams=str(hp_file), val_metrics=val, rounds=rounds, out=out,
                      out_table=str(tmp_path / "sel.tsv"), log=lambda m: None)
    m = json.loads(open(out["metrics"]).read())
    assert m["selected_round"] == 2 and m["top1"] == 10.0  # best on validation, however bad on test
    assert open(out["predictions"]).read() == "predictions of round 2\n"
    hp_file.write_text(json.dumps({"chosen_on": {"rounds": "config"}}))
    select_round_step(hparams=str(hp_file), val_metrics=val, rounds=rounds, out=out,
                      out_table=str(tmp_path / "sel.tsv"), log=lambda m: None)
    assert json.loads(open(out["metrics"]).read())["selected_round"] == 3  # not selected: the last round


def test_accept_rules_and_min_accept():
    from finepseudo.pseudo.pseudolabel import accept_mask

    conf = np.array([0.95, 0.9, 0.85, 0.8, 0.6, 0.55, 0.5, 0.3])
    label = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    acc, info = accept_mask(conf, label, 3, rule="threshold", theta=0.7)
    assert acc.tolist() == [True] * 4 + [False] * 4 and not info["min_accept_used"]
    # flexmatch: sigma = (4, 0, 0) passing 0.7; beta = sigma / max(4, 4 not passing) = (1, 0, 0);
    # theta_c = 0.7 * beta / (2 - beta) = (0.7, 0, 0): the rarely confident classes 1 and 2 take everything
    acc, info = accept_mask(conf, label, 3, rule="flexmatch", theta=0.7)
    assert info["class_thresholds"] == [0.7, 0.0, 0.0] and acc.all()
    # topk: ceil(0.5 * 8 / 3) = 2 per predicted class, confidence >= theta / 2 = 0.35
    acc, info = accept_mask(conf, label, 3, rule="topk", theta=0.7, topk_share=0.5)
    assert info["per_class_k"] == 2 and acc.tolist() == [True, True, False, False, True, True, True, False]
    # theta 0.99 accepts nothing; min_accept 0.25 takes the 2 most confident of 8 instead
    acc, info = accept_mask(conf, label, 3, theta=0.99, min_accept=0.25)
    assert acc.tolist() == [True, True] + [False] * 6 and info["min_accept_used"]
    # rejected (novel) videos are never accepted, not even by the floor
    acc, _ = accept_mask(conf, label, 3, theta=0.99, min_accept=0.25, eligible=np.arange(8) > 0)
    assert acc.tolist() == [False, True, True] + [False] * 5
    with pytest.raises(ValueError, match="pseudo.accept"):
        accept_mask(conf, label, 3, rule="median")


def test_temperature_scaling_hand_case():
    """Two validation videos with logits (2, 0): one labeled 0, one labeled 1. The mean NLL is
    0.5 * (log(1 + e^{-2/T}) + log(1 + e^{2/T})), which falls as T grows (the model is right half the time with a
    big margin), so the fit goes to the top of the grid; a model that is always right with that margin prefers
    the smallest T."""
    from finepseudo.pseudo import hparams as hp

    logits = np.array([[2.0, 0.0], [2.0, 0.0]])
    t, tab = hp.select_temperature(logits, np.array([0, 1]), grid=[0.5, 1.0, 2.0, 4.0])
    # NLL at T: 0.5 * (log(1 + e^{-2/T}) + log(1 + e^{2/T})); at T=4: 0.5 * (0.474077 + 0.974077) = 0.724077
    assert t == 4.0 and abs(tab.loc[tab["temperature"] == 4.0, "val_nll"].item() - 0.724077) < 1e-6
    t, _ = hp.select_temperature(logits, np.array([0, 0]), grid=[0.5, 1.0, 2.0, 4.0])
    assert t == 0.5
    # the logits (1, 0) labeled (0, 0, 1) with frequencies 2/3 vs 1/3: softmax(1/T) = 2/3 at T = 1/log 2 = 1.4427
    logits = np.array([[1.0, 0.0]] * 3)
    t, _ = hp.select_temperature(logits, np.array([0, 0, 1]))
    assert abs(t - 1.0 / np.log(2.0)) < 0.07  # the grid has 8 values per octave


# --- the log-linear pool (pseudo.combine: loglinear) -------------------------------------------------------------

def _probs(rng, n, c, sharp):
    z = rng.normal(size=(n, c)) * sharp
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_log_linear_pool_contains_both_branches():
    from finepseudo.pseudo.pseudolabel import combine, log_linear_pool

    rng = np.random.default_rng(0)
    p_e, p_a = _probs(rng, 20, 5, 2.0), _probs(rng, 20, 5, 3.0)
    np.testing.assert_allclose(log_linear_pool(p_e, p_a, 1.0, 0.0), p_e, atol=1e-12)  # PL
    np.testing.assert_allclose(log_linear_pool(p_e, p_a, 0.0, 1.0), p_a, atol=1e-12)  # fa_only
    np.testing.assert_allclose(combine(p_e, p_a, "both", "loglinear", (0.0, 1.0)), p_a, atol=1e-12)
    np.testing.assert_allclose(combine(p_e, p_a, "both", "product"), log_linear_pool(p_e, p_a, 1.0, 1.0))
    np.testing.assert_allclose(combine(p_e, p_a, "both", "average"), (p_e + p_a) / 2)
    with pytest.raises(ValueError, match="pseudo.combine"):
        combine(p_e, p_a, "both", "median")


def test_a_flat_branch_never_shrinks_its_partner():
    from finepseudo.pseudo.pseudolabel import combine, log_linear_pool

    rng = np.random.default_rng(1)
    p_a = _probs(rng, 30, 6, 3.0)
    flat = np.full_like(p_a, 1 / 6)
    for alpha in (0.0, 0.5, 1.0, 4.0):
        np.testing.assert_allclose(log_linear_pool(flat, p_a, alpha, 1.0), p_a, atol=1e-12)
    avg = combine(flat, p_a, "both", "average")
    np.testing.assert_allclose(avg.max(1), (p_a.max(1) + 1 / 6) / 2)  # the average halves p_A's confidence scale
    assert (avg.max(1) < p_a.max(1)).all()


def test_pool_weights_are_fitted_on_validation_log_loss():
    from finepseudo.pseudo.hparams import fit_pool_weights

    rng = np.random.default_rng(2)
    n, c = 60, 5
    y = rng.integers(c, size=n)
    good = np.full((n, c), 0.05)
    good[np.arange(n), y] = 0.8  # 100 % right, calibrated-ish
    noise = _probs(rng, n, c, 2.0)  # unrelated to the labels
    (a, b), table = fit_pool_weights(noise, good, y)
    assert b > 0 and a < b, (a, b)  # the informative branch carries the weight
    assert len(table) == len(set(zip(table["alpha"], table["beta"])))
    (a2, b2), _ = fit_pool_weights(good, noise, y)
    assert a2 > 0 and b2 < a2, (a2, b2)
    flat = np.full((n, c), 1 / c)
    (_, b3), _ = fit_pool_weights(flat, good, y)
    assert b3 > 0  # a flat p_E: the fit keeps p_A
    assert fit_pool_weights(good[:0], noise[:0], y[:0])[0] == (1.0, 1.0)
