"""Rule pretrain_gitdl: self-supervised GITDL pre-training of f_A on all training videos."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.align.steps import pretrain_gitdl_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
pretrain_gitdl_step(
    manifest=snakemake.input.manifest,
    shards=list(snakemake.input.shards),
    out_model=snakemake.output.model,
    out_history=snakemake.output.history,
    **settings,  # cfg, seed, device
    threads=snakemake.threads,
    log=log,
)
reads.check()
