"""Rule train_fe: supervised warm-up of f_E on the labeled split (cross-entropy), from the self-supervised
initialisation when the rule has an ``init`` input."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402
from finepseudo.models.steps import train_fe_step  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
train_fe_step(
    labeled=snakemake.input.labeled,
    classes=snakemake.input.classes,
    shards=list(snakemake.input.shards),
    out_model=snakemake.output.model,
    out_history=snakemake.output.history,
    init=snakemake.input.get("init"),
    **settings,  # fe, seed, device
    threads=snakemake.threads,
    workers=snakemake.config["frames"]["workers"],
    log=log,
)
reads.check()
