"""The report's figures: each function draws one matplotlib figure and returns it as an embedded PNG
(``<img src="data:image/png;base64,...">``), with the paragraph that explains it where it has one."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd

__all__ = ["accuracy_bars", "alignment_figure", "clip_lengths", "confusion_figure", "fig_to_img", "pyplot",
           "reliability_figure", "rounds_figure", "sample_frames", "training_curves"]


def fig_to_img(fig, alt: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def clip_lengths(man: pd.DataFrame) -> str:
    """Annotated action length of every video of the manifest, per class."""
    plt = pyplot()
    lengths = man["end_frame"] - man["start_frame"]
    fig, ax = plt.subplots(figsize=(7, 2.6))
    for name, grp in man.assign(length=lengths).groupby("label_name"):
        ax.scatter(grp["length"], [name] * len(grp), s=8, alpha=.6)
    ax.set_xlabel("annotated action length (frames)")
    ax.set_title("Clip lengths per class: phase durations vary from video to video")
    fig.set_figheight(max(2.6, .22 * man["label_name"].nunique()))
    return fig_to_img(fig, "clip lengths per class")


def accuracy_bars(df: pd.DataFrame, num_classes: int) -> str:
    """Top-1 of every run (rows of method, percent, top1) against SynthDive's target and chance."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 2.8))
    labels = [f"{m}\n{p:g}%" for m, p in zip(df["method"], df["percent"])]
    ax.bar(range(len(df)), df["top1"], color=["#4c72b0" if m != "supervised_full" else "#55a868"
                                               for m in df["method"]])
    ax.axhline(90, ls="--", c="k", lw=1)
    ax.text(len(df) - .5, 91, "target for 100 % labels", ha="right", fontsize=8)
    ax.set_xticks(range(len(df)), labels, fontsize=8)
    ax.set_ylabel("top-1 (%)")
    ax.set_ylim(0, 100)
    chance = 100.0 / max(1, num_classes)
    ax.axhline(chance, ls=":", c="gray", lw=1)
    ax.set_title("SynthDive calibration: learnable with all labels, room for semi-supervision")
    return fig_to_img(fig, "calibration")


def reliability_figure(rel: pd.DataFrame, method: str) -> str:
    """Reliability diagram of ``method`` from its pooled bins (tables.pooled_reliability)."""
    if rel.empty:
        return ""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    for dist, g in rel.groupby("distribution", sort=False):
        g = g[g["count"] > 0]
        ax.plot(g["confidence"], g["accuracy"], "o-", ms=4, label=f"{dist} ({int(g['count'].sum())} videos)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean confidence in bin (top probability)")
    ax.set_ylabel("accuracy in bin")
    runs = int(rel["runs"].max())
    ax.set_title(f"Reliability on validation: {method}, {runs} run(s) pooled", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return ("<p class='note'>Reliability diagram of " + html.escape(method) + f", bins pooled over its {runs} "
            "run(s) (label fractions and seeds). The validation split is small (a few videos per class), so "
            "each bin holds few videos and the points are noisy; read the trend, not single bins. Points "
            "below the diagonal are over-confident.</p>" + fig_to_img(fig, "reliability diagram"))


def confusion_figure(conf: pd.DataFrame, method: str, title: str) -> str:
    """Heat map of a confusion matrix (true x predicted counts), annotated up to 16 classes."""
    import seaborn as sns

    plt = pyplot()
    n = len(conf)
    fig, ax = plt.subplots(figsize=(max(4, .45 * n + 2), max(3.5, .4 * n + 1.5)))
    sns.heatmap(conf, annot=n <= 16, fmt="d", cbar=False, cmap="Blues", ax=ax, annot_kws={"fontsize": 7})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    ax.tick_params(labelsize=7)
    return fig_to_img(fig, f"confusion {method}")


def training_curves(histories: list[tuple[str, pd.DataFrame]]) -> str:
    """Training loss and accuracy per epoch of every (name, fe.history.tsv table)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
    for name, h in histories:
        if "loss" in h:
            axes[0].plot(h["epoch"], h["loss"], label=name)
        if "acc" in h:
            axes[1].plot(h["epoch"], 100 * h["acc"] if h["acc"].max() <= 1 else h["acc"], label=name)
    axes[0].set_title("training loss")
    axes[1].set_title("training accuracy (%)")
    for a in axes:
        a.set_xlabel("epoch")
    axes[1].legend(fontsize=7)
    return fig_to_img(fig, "training curves")


def sample_frames(rows: list[tuple[str, np.ndarray]], n_frames: int) -> str:
    """``n_frames`` frames, uniform over the clip, of one video per (class name, frames) row."""
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), n_frames, figsize=(n_frames * .9, len(rows) * .95))
    axes = np.atleast_2d(axes)
    for i, (name, frames) in enumerate(rows):
        idx = np.linspace(0, len(frames) - 1, n_frames).round().astype(int)
        for j, t in enumerate(idx):
            axes[i, j].imshow(frames[t])
            axes[i, j].axis("off")
        axes[i, 0].text(-0.1, 0.5, name, transform=axes[i, 0].transAxes, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(wspace=.03, hspace=.05)
    return fig_to_img(fig, "sample frames")


def rounds_figure(acc: pd.DataFrame, q: pd.DataFrame) -> str:
    """f_E's test top-1 after each round (``acc``: method, percent, round, top1) and the pseudo-labels' coverage
    and precision per round (``q``: the pseudo_quality.tsv rows with method and percent), per method and label %."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    for (m, p), g in acc.groupby(["method", "percent"]):
        g = g.groupby("round")["top1"].mean()
        axes[0].plot(g.index, g.values, "o-", label=f"{m} {p:g}%")
    for (m, p), g in q.groupby(["method", "percent"]):
        g = g.groupby("round")[["coverage", "precision"]].mean()
        axes[1].plot(g.index, 100 * g["coverage"], "o-", label=f"{m} {p:g}%")
        axes[2].plot(g.index, 100 * g["precision"], "o-", label=f"{m} {p:g}%")
    for ax, title in zip(axes, ["f_E test top-1 (%) after each round (0 = warm-up)",
                                "pseudo-label coverage (% of pool accepted)", "pseudo-label precision (%)"]):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("round")
    axes[0].legend(fontsize=7)
    return fig_to_img(fig, "rounds")


def alignment_figure(path: str) -> str:
    """The DTW path between two same-class test videos over their cost matrix, the frames on the axes."""
    plt = pyplot()
    ex = np.load(path)
    if "cost" not in ex.files:
        return ""
    cost, pth = ex["cost"], ex["path"]
    fu, fv = ex["frames_u"], ex["frames_v"]
    t1, t2 = cost.shape
    fig = plt.figure(figsize=(6.5, 6.5))
    ax = fig.add_axes([0.18, 0.02, 0.8, 0.8])
    ax.imshow(cost, cmap="viridis", origin="upper", extent=(-.5, t2 - .5, t1 - .5, -.5))
    ax.plot(pth[:, 1], pth[:, 0], "w.-", lw=1.5)
    ax.set_xticks([])
    ax.set_yticks([])
    for j in range(t2):
        a = fig.add_axes([0.18 + 0.8 * j / t2, 0.83, 0.8 / t2, 0.8 / t2])
        a.imshow(fv[j])
        a.axis("off")
    for i in range(t1):
        a = fig.add_axes([0.18 - 0.8 / t1 - .005, 0.82 - 0.8 * (i + 1) / t1, 0.8 / t1, 0.8 / t1])
        a.imshow(fu[i])
        a.axis("off")
    u, v = (str(x) for x in ex["videos"])
    fig.text(0.58, 0.99, f"DTW path between two same-class test videos: {u} (rows) and {v} (columns)",
             ha="center", fontsize=8)
    return ("<h3>One alignment</h3><p>Cost matrix 1 - cos of the final f_A embeddings (dark = similar) with "
            "the hard-DTW path in white; the frames f_A saw are on the axes.</p>" + fig_to_img(fig, "alignment"))
