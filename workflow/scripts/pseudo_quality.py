"""Rule pseudo_quality: pseudo-label coverage and precision per round against the evaluation-only truth."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402 - imports neither torch nor numpy

settings = pin_job(snakemake)  # config cpu_kernels, set before anything imports torch or numpy
from finepseudo.pseudo.pseudolabel import pseudo_quality_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)  # every file the step reads must be an input of the rule
pseudo_quality_step(
    tables=list(snakemake.input.tables),
    truth=snakemake.input.truth,
    novel=snakemake.input.novel,
    out=snakemake.output.table,
    log=log,
)
reads.check()
