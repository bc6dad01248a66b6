"""What the report reads, by what each file is: the plan the report rule builds from the config.

The rule (workflow/rules/report.smk) builds a :class:`ReportInputs`, declares every file of it as an input
(:meth:`ReportInputs.files`) and passes it to the script as a plain dict (:meth:`ReportInputs.to_dict`,
:meth:`ReportInputs.from_dict`). The report reads exactly these files and learns what each one is from here:
it never looks for files nor reads a method, label fraction or seed out of a path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, is_dataclass
from typing import ClassVar

__all__ = ["Alignability", "Baseline", "BenchmarkFile", "Model", "Prediction", "PseudoFiles", "ReportInputs",
           "Round", "Run", "RunFile"]


@dataclass(frozen=True)
class RunFile:
    """One file of one run, with the run it belongs to: a method's (or a trivial baseline's) at a label percent
    and split seed, and for a per-round file its round. The tables of the report take lists of these."""

    method: str
    percent: float
    seed: int
    path: str
    round: int | None = None


class _Files:
    """A part of the plan: ``PATHS`` names its fields that hold files (a path, None or a tuple of paths),
    ``GROUP`` prefixes their names among the rule's inputs; fields holding parts are walked in turn."""

    PATHS: ClassVar[tuple[str, ...]] = ()
    GROUP: ClassVar[str] = ""

    def _files(self, out: dict[str, list[str]]) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self.PATHS:
                paths = value if isinstance(value, tuple) else () if value is None else (value,)
                out.setdefault(self.GROUP + f.name, []).extend(paths)
            elif isinstance(value, tuple):
                for part in value:
                    if is_dataclass(part):
                        part._files(out)
            elif is_dataclass(value):
                value._files(out)


@dataclass(frozen=True)
class Model(_Files):
    """An f_E a run may be scored with (``checkpoint``, as its metrics.json names it) and its training history."""

    PATHS = ("history",)
    GROUP = "model_"
    checkpoint: str
    history: str


@dataclass(frozen=True)
class Round(_Files):
    """One pseudo-labeling round of a run: f_E's test metrics after it and what the round used
    (pseudo_labels.json: T_E, the pool weights, theta, ...)."""

    PATHS = ("metrics", "info")
    GROUP = "round_"
    round: int
    metrics: str
    info: str


@dataclass(frozen=True)
class PseudoFiles(_Files):
    """The files of a pseudo-labeling run: validation calibration and reliability bins, pseudo-label quality per
    round, the hyper-parameters chosen on validation (with every candidate and the round chosen) and the rounds."""

    PATHS = ("calibration", "reliability", "quality", "hparams", "candidates", "round_selection")
    GROUP = "pseudo_"
    calibration: str
    reliability: str
    quality: str
    hparams: str
    candidates: str
    round_selection: str
    rounds: tuple[Round, ...]


@dataclass(frozen=True)
class Run(_Files):
    """A method at a label fraction (``frac``, as the results' folders write it) and split seed: its test metrics,
    predictions and confusion matrix, the f_E it may be scored with, and for pseudo-labeling methods more."""

    PATHS = ("metrics", "predictions", "confusion")
    GROUP = "run_"
    method: str
    frac: str
    seed: int
    metrics: str
    predictions: str
    confusion: str
    models: tuple[Model, ...]
    pseudo: PseudoFiles | None = None

    @property
    def percent(self) -> float:
        return float(self.frac)


@dataclass(frozen=True)
class Baseline(_Files):
    """A trivial baseline at a label fraction and split seed: its test metrics and predictions."""

    PATHS = ("metrics", "predictions")
    GROUP = "baseline_"
    name: str
    frac: str
    seed: int
    metrics: str
    predictions: str

    @property
    def percent(self) -> float:
        return float(self.frac)


@dataclass(frozen=True)
class Alignability(_Files):
    """The alignability branch at a label fraction and split seed: pair verification, phase agreement of the DTW
    paths, phi_A's test table with the split's test videos, and one alignment."""

    PATHS = ("pair_verification", "phase_agreement", "pa_test", "alignment_example", "test_split")
    GROUP = "alignability_"
    frac: str
    seed: int
    pair_verification: str
    phase_agreement: str
    pa_test: str
    alignment_example: str
    test_split: str


@dataclass(frozen=True)
class BenchmarkFile(_Files):
    """Snakemake's ``benchmark:`` file of one job, with its rule and the job's name (the file's path under the
    benchmarks folder, without .tsv)."""

    PATHS = ("path",)
    GROUP = "benchmark_"
    rule: str
    job: str
    path: str


@dataclass(frozen=True)
class Prediction(_Files):
    """A prediction run (config key ``predict``): its table and page."""

    PATHS = ("table", "page")
    GROUP = "predict_"
    name: str
    table: str
    page: str


@dataclass(frozen=True)
class ReportInputs(_Files):
    """Every file the report reads. ``exports`` are the export folders (their model.json is read);
    ``synthdive_summary`` and ``predict`` are None where the config has none."""

    PATHS = ("manifest", "classes", "shard_indexes", "shards", "synthdive_summary", "exports")
    manifest: str
    classes: str
    shard_indexes: tuple[str, ...]
    shards: tuple[str, ...]
    synthdive_summary: str | None = None
    runs: tuple[Run, ...] = ()
    baselines: tuple[Baseline, ...] = ()
    alignability: tuple[Alignability, ...] = ()
    benchmarks: tuple[BenchmarkFile, ...] = ()
    exports: tuple[str, ...] = ()
    predict: Prediction | None = None

    def files(self) -> dict[str, list[str]]:
        """Every file, grouped by what it is (the rule's named inputs)."""
        out: dict[str, list[str]] = {}
        self._files(out)
        return out

    def to_dict(self) -> dict:
        """The plan as plain dicts, lists and strings (a rule's ``params``)."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> ReportInputs:
        def run(r: dict) -> Run:
            p = r["pseudo"]
            pseudo = None if p is None else PseudoFiles(**{**p, "rounds": tuple(Round(**x) for x in p["rounds"])})
            return Run(**{**r, "models": tuple(Model(**m) for m in r["models"]), "pseudo": pseudo})

        return cls(**{
            **d, "shard_indexes": tuple(d["shard_indexes"]), "shards": tuple(d["shards"]),
            "runs": tuple(run(r) for r in d["runs"]),
            "baselines": tuple(Baseline(**b) for b in d["baselines"]),
            "alignability": tuple(Alignability(**a) for a in d["alignability"]),
            "benchmarks": tuple(BenchmarkFile(**b) for b in d["benchmarks"]),
            "exports": tuple(d["exports"]),
            "predict": None if d["predict"] is None else Prediction(**d["predict"])})

    # ---------------------------------------------------------------------- the runs' files, for the tables

    def run_files(self, name: str) -> list[RunFile]:
        """File ``name`` (metrics, predictions, confusion) of every run, in the runs' order."""
        return [RunFile(r.method, r.percent, r.seed, getattr(r, name)) for r in self.runs]

    def pseudo_files(self, name: str) -> list[RunFile]:
        """File ``name`` of :class:`PseudoFiles` of every pseudo-labeling run, in the runs' order."""
        return [RunFile(r.method, r.percent, r.seed, getattr(r.pseudo, name)) for r in self.runs if r.pseudo]

    def round_files(self, name: str) -> list[RunFile]:
        """File ``name`` of :class:`Round` (metrics, info) of every round of every pseudo-labeling run."""
        return [RunFile(r.method, r.percent, r.seed, getattr(x, name), x.round)
                for r in self.runs if r.pseudo for x in r.pseudo.rounds]

    def baseline_files(self, name: str) -> list[RunFile]:
        """File ``name`` (metrics, predictions) of every trivial baseline run, named by the baseline."""
        return [RunFile(b.name, b.percent, b.seed, getattr(b, name)) for b in self.baselines]


def _plain(value):
    """Tuples as lists, so that the plan is plain data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
