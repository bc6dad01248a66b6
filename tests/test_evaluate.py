import numpy as np

from finepseudo.models.evaluate import classification_metrics


def test_metrics_and_confusion():
    probs = np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0, 0.2, 0.8]])
    labels = np.array([0, 1, 1, 2])
    summary, per_class, conf = classification_metrics(probs, labels, ["a", "b", "c"])
    assert summary["top1"] == 75.0
    assert per_class["accuracy"].tolist() == [100.0, 50.0, 100.0]
    assert conf.loc["b", "a"] == 1 and conf.to_numpy().sum() == 4
    assert abs(summary["mean_class_accuracy"] - 250 / 3) < 1e-9
