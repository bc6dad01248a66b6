"""Rule pseudo_quality: pseudo-label coverage and precision per round against the evaluation-only truth."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.pseudo.pseudolabel import pseudo_quality_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
pseudo_quality_step(
    tables=list(snakemake.input.tables),
    truth=snakemake.input.truth,
    novel=snakemake.input.novel,
    out=snakemake.output.table,
    log=log,
)
reads.check()
