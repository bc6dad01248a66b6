"""Rule evaluate_fe: top-1, per-class accuracy and confusion matrix of f_E on the test split."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402
from finepseudo.models.steps import evaluate_fe_step  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
evaluate_fe_step(
    model=snakemake.input.model,
    test=snakemake.input.test,
    classes=snakemake.input.classes,
    shards=list(snakemake.input.shards),
    out=dict(snakemake.output.items()),
    method=snakemake.wildcards.method,
    **settings,  # clips_per_video, batch_size, device
    threads=snakemake.threads,
    workers=snakemake.config["frames"]["workers"],
    log=log,
    val=snakemake.input.get("val"),
)
reads.check()
