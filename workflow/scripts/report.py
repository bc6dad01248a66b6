"""Rule report: render results/report.html from the run's tables, metrics and benchmark files."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.data.frames import ffmpeg_version  # noqa: E402
from finepseudo.report.html import build_report  # noqa: E402
from finepseudo.report.inputs import ReportInputs  # noqa: E402
from finepseudo.runlog import ReadAudit, environment, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
# The plan (workflow/rules/report.smk) says what each file is; the rule declares every file of it as an input.
plan = ReportInputs.from_dict(snakemake.params.plan)
undeclared = sorted({f for group in plan.files().values() for f in group} - set(snakemake.input))
if undeclared:
    raise ValueError(f"files of the report's plan that are not inputs of the rule: {undeclared}")
env = environment() | {"ffmpeg": ffmpeg_version()}
html = build_report(plan, dict(settings["config"]), env)
Path(snakemake.output[0]).write_text(html)
log(f"benchmark files: {len(plan.benchmarks)}")
log(f"wrote {snakemake.output[0]} ({len(html) / 1e6:.1f} MB)")
reads.check()
