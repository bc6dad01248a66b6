"""Rule report: render results/report.html from the run's tables, metrics and benchmark files."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.data.frames import ffmpeg_version  # noqa: E402
from finepseudo.report.html import build_report  # noqa: E402
from finepseudo.runlog import ReadAudit, environment, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
inp = {k: v for k, v in snakemake.input.items()}
# list-valued inputs; the later ones (test predictions, validation calibration) only when the rule has them.
# The rule's other inputs (confusion, histories, alignability_extra, test_splits) are declared so that Snakemake
# tracks them; build_report finds them next to the metrics and alignability files it is given.
for key in ("metrics", "frame_status", "shards", "alignability", "pseudo_quality", "round_metrics", "hparams",
            "predictions", "calibration", "reliability", "benchmark_files", "baselines", "baseline_predictions",
            "round_info", "exports", "predict"):
    if key in snakemake.input.keys():
        inp[key] = list(snakemake.input[key])
inp["benchmarks"] = settings["benchmarks"]
env = environment() | {"ffmpeg": ffmpeg_version()}
html = build_report(inp, dict(settings["config"]), env)
Path(snakemake.output[0]).write_text(html)
log(f"benchmark files: {len(inp['benchmark_files'])}")
log(f"wrote {snakemake.output[0]} ({len(html) / 1e6:.1f} MB)")
reads.check()
