"""Rule train_alignability: AVML of f_A and f_S (L_AV = L_AT + omega * L_Score) on the labeled videos."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.align.steps import train_alignability_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
train_alignability_step(
    model=snakemake.input.model,
    labeled=snakemake.input.labeled,
    triplets=snakemake.input.triplets,
    shards=list(snakemake.input.shards),
    out_model=snakemake.output.model,
    out_history=snakemake.output.history,
    **settings,  # cfg, loss, seed, device
    threads=snakemake.threads,
    log=log,
)
reads.check()
