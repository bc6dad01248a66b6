"""The benchmark report: one self-contained HTML file (figures embedded as base64 PNG).

``build_report(inputs, config, env)`` reads the files of ``inputs`` (finepseudo.report.inputs.ReportInputs, the
plan the report rule builds) and returns the HTML text: the sections of finepseudo.report.sections in order,
under a navigation bar. A new section is a function there and a line here.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import pandas as pd
import yaml

from finepseudo.report import sections as sec
from finepseudo.report.inputs import ReportInputs
from finepseudo.report.tables import trivial_comparisons

__all__ = ["build_report"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}.note{color:#555;font-size:.9em}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}img{max-width:100%}
nav a{margin-right:1em}
"""


def _read_metrics(inputs: ReportInputs) -> tuple[list[dict], list[dict], list[tuple[str, str]], list[dict]]:
    """The test metrics of every run (one row each), the runs with their confusion matrix, the training history
    of the f_E each run is scored with (the one its metrics.json names), and the trivial baselines' rows."""
    metrics, runs, histories = [], [], []
    for run in inputs.runs:
        m = json.loads(Path(run.metrics).read_text())
        row = {"method": run.method, "percent": run.percent, "seed": run.seed, "top1": m["top1"],
               "mean_class_accuracy": m["mean_class_accuracy"], "round": m.get("selected_round"), "n": m.get("n")}
        metrics.append(row)
        runs.append({**row, "confusion": run.confusion})
        scored = Path(m.get("model", ""))
        histories += [(f"{run.method} {run.frac}%", x.history) for x in run.models if Path(x.checkpoint) == scored]
    baselines = []
    for b in inputs.baselines:
        m = json.loads(Path(b.metrics).read_text())
        baselines.append({"method": b.name, "percent": b.percent, "seed": b.seed, "top1": m["top1"],
                          "mean_class_accuracy": m["mean_class_accuracy"], "n": m.get("n")})
    return metrics, runs, histories, baselines


def build_report(inputs: ReportInputs, config: dict, env: dict[str, str]) -> str:
    """Render the report from the files of ``inputs``, the run's ``config`` and the software versions and machine
    facts of ``env`` (finepseudo.runlog.environment). Returns HTML text."""
    config = dict(config)
    config["_num_classes"] = len(pd.read_csv(inputs.classes, sep="\t"))
    metrics, runs, histories, baselines = _read_metrics(inputs)
    predictions = inputs.run_files("predictions")
    quality = inputs.pseudo_files("quality")
    vs_trivial = (trivial_comparisons(predictions, inputs.baseline_files("predictions"))
                  if inputs.baselines else None)
    cfg_public = {k: v for k, v in config.items() if not k.startswith("_")}
    sections = [
        ("dataset", "Dataset",
         sec.section_dataset(inputs.manifest, inputs.synthdive_summary) + sec.section_failed(inputs.shard_indexes)),
        ("accuracy", "Accuracy", sec.section_accuracy(metrics, config, baselines)),
        ("methods", "Methods and the paper's ablation", sec.section_methods(metrics, quality, vs_trivial)),
        ("paired", "Paired comparisons", sec.section_paired(predictions, vs_trivial=vs_trivial)),
        ("calibration", "Calibration on validation",
         sec.section_calibration(inputs.pseudo_files("calibration"), inputs.pseudo_files("reliability"))),
        ("pseudo", "Pseudo-labeling rounds", sec.section_pseudo(quality, inputs.round_files("metrics"), metrics)),
        ("rounds", "Collaboration per round", sec.section_rounds(inputs.round_files("info"), quality)),
        ("hparams", "Hyper-parameters chosen on validation",
         sec.section_hparams(inputs.pseudo_files("hparams"), inputs.pseudo_files("candidates"),
                             inputs.pseudo_files("round_selection"))),
        ("alignability", "Alignability branch", sec.section_alignability(list(inputs.alignability))),
        ("confusion", "Confusion matrices", sec.section_confusions(runs)),
        ("training", "Training curves", sec.section_curves(histories)),
        ("samples", "Sample frames per class", sec.section_samples(inputs.manifest, inputs.shards)),
        ("exports", "Exported models", sec.section_exports(list(inputs.exports), inputs.predict)),
        ("runtime", "Run time and memory per rule", sec.section_benchmarks(list(inputs.benchmarks))),
        ("config", "Config used", "<pre>" + html.escape(yaml.safe_dump(cfg_public, sort_keys=False)) + "</pre>"),
        ("software", "Software", sec.section_software(env, config)),
    ]
    nav = "".join(f'<a href="#{sid}">{title}</a>' for sid, title, _ in sections)
    body = "".join(f'<h2 id="{sid}">{title}</h2>{content}' for sid, title, content in sections)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>FinePseudo report</title>"
            f"<style>{CSS}</style></head><body><h1>FinePseudo benchmark report</h1>"
            f"<p class='note'>Dataset <b>{html.escape(config['dataset']['name'])}</b>, generated "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}.</p><nav>{nav}</nav>{body}</body></html>")
