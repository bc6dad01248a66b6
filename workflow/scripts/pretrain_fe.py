"""Rule pretrain_fe: self-supervised (TCLR temporal contrastive) initialisation of f_E on all training videos."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402
from finepseudo.models.ssl import pretrain_fe_step  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
pretrain_fe_step(
    manifest=snakemake.input.manifest,
    shards=list(snakemake.input.shards),
    out_model=snakemake.output.model,
    out_history=snakemake.output.history,
    **settings,  # fe, ssl, seed, device
    threads=snakemake.threads,
    log=log,
)
reads.check()
