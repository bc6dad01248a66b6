import numpy as np
import pandas as pd
import pytest

from finepseudo.pseudolabel import combine, pseudo_label_table, quality


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
