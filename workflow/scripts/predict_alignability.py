"""Rule predict_alignability: phi_A (class-mean alignability vs the labeled gallery) -> p_A tables."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.align.steps import predict_alignability_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
predict_alignability_step(
    model=snakemake.input.model,
    labeled=snakemake.input.labeled,
    queries={"unlabeled": snakemake.input.unlabeled, "test": snakemake.input.test},
    classes=snakemake.input.classes,
    shards=list(snakemake.input.shards),
    out=dict(snakemake.output.items()),
    **settings,  # cfg, device
    threads=snakemake.threads,
    log=log,
)
reads.check()
