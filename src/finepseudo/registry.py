"""The names the workflow, the config schema and the benchmarks share: methods and video architectures.

This module imports nothing heavy (no torch), so Snakemake reads it while it plans the DAG. The config
schema's lists of allowed ``methods`` and ``fe.arch`` values are filled in from here
(:func:`finepseudo.config.validate_config`), the workflow's rules read :data:`PSEUDO_METHODS`, and
``tests/test_models.py`` checks :data:`VIDEO_ARCHS` against the model constructors registered in
:mod:`finepseudo.models.video`. Add a method here (and its branch in the workflow) and everything else follows.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PseudoMethod", "SUPERVISED_METHODS", "PSEUDO_METHODS", "METHODS", "TRIVIAL_BASELINES", "VIDEO_ARCHS"]


class PseudoMethod(NamedTuple):
    """A pseudo-labeling method: where its pseudo-labels come from and how f_A starts.

    source: ``fe`` (f_E's predictions only, classic pseudo-labeling), ``fa`` (f_A's alignability
        predictions only) or ``both`` (FinePseudo's collaborative combination).
    avml: ``(loss, init)`` of the AVML model f_A starts round 1 from (``loss`` av | at | score, ``init``
        gitdl | scratch), or None when f_A is not used.
    calibrate: whether p_E is temperature-scaled on validation before use (when ``pseudo.calibrate``).
    filtered: whether the open-world novelty filter applies (when ``open_world.novel_classes`` > 0).
    description: what the method is, in one line (for readers of this table).
    combine: how ``both`` combines p_E and p_A: a fixed rule (``average``: the paper's), or None for the
        config's ``pseudo.combine``.
    """

    source: str
    avml: tuple[str, str] | None
    calibrate: bool
    filtered: bool
    description: str
    combine: str | None = None


SUPERVISED_METHODS: dict[str, str] = {
    "supervised": "f_E trained on the labeled split only (the warm-up every method starts from)",
    "supervised_scratch": "the supervised baseline from a random initialisation (what fe.init is worth)",
    "supervised_full": "the supervised baseline on 100 % of the training labels (an upper reference)",
}

PSEUDO_METHODS: dict[str, PseudoMethod] = {
    "pl": PseudoMethod("fe", None, True, False, "pseudo-labeling from f_E alone"),
    "fa_only": PseudoMethod("fa", ("av", "gitdl"), True, True, "pseudo-labels from f_A's alignability alone"),
    "finepseudo": PseudoMethod("both", ("av", "gitdl"), True, True,
                               "FinePseudo: f_E and f_A combined (pseudo.combine)"),
    # the paper's combination, as its own row beside the default one: (p_E + p_A) / 2, p_E calibrated
    "finepseudo_mean": PseudoMethod("both", ("av", "gitdl"), True, True,
                                    "FinePseudo with the paper's average (p_E + p_A) / 2", "average"),
    "finepseudo_no_gitdl": PseudoMethod("both", ("av", "scratch"), True, True,
                                        "ablation: f_A without GITDL pre-training"),
    "finepseudo_lat_only": PseudoMethod("both", ("at", "gitdl"), True, True,
                                        "ablation: AVML with the soft-DTW triplet loss L_AT only"),
    "finepseudo_lscore_only": PseudoMethod("both", ("score", "gitdl"), True, True,
                                           "ablation: AVML with the alignability score loss L_Score only"),
    # the paper's uncalibrated average (p_E + p_A) / 2: the ablation of calibrating p_E
    "finepseudo_uncal": PseudoMethod("both", ("av", "gitdl"), False, True,
                                     "ablation: the paper's uncalibrated average of p_E and p_A", "average"),
    # open world only, added by the workflow next to finepseudo: FinePseudo without the novelty filter
    "finepseudo_no_filter": PseudoMethod("both", ("av", "gitdl"), True, False,
                                         "open world: FinePseudo without the novelty filter"),
}

#: Methods a config may list under ``methods`` (``finepseudo_no_filter`` is added by the workflow itself).
METHODS: tuple[str, ...] = tuple(SUPERVISED_METHODS) + tuple(m for m in PSEUDO_METHODS if m != "finepseudo_no_filter")

#: Trivial baselines: every report shows them as rows of its accuracy table, each computed per label fraction
#: and split seed from the split's labeled videos (labeled.tsv) on the same test videos as the methods
#: (rule trivial_baselines, :mod:`finepseudo.baselines.trivial`). Not ``methods:`` entries: they always run.
TRIVIAL_BASELINES: dict[str, str] = {
    "pixel_dtw": "1-NN by hard DTW over downsampled, centred pixel frames (cosine cost)",
    "pixel_pooled": "1-NN by cosine distance of the same pixel frames averaged over time (no alignment)",
    "phi_a": "phi_A alone on the test videos: argmax p_A (predict_alignability's pA_test.tsv)",
    "ssl_probe": "nearest class mean (cosine) on the self-supervised f_E's pooled features (fe.init: ssl only)",
}

#: Video architectures of f_E (constructors in :mod:`finepseudo.models.video`).
VIDEO_ARCHS: tuple[str, ...] = ("r2plus1d_tiny", "r2plus1d_18", "r3d_18")
