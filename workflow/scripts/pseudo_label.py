"""Rule pseudo_label: p_E and p_A of every unlabeled video from the round r-1 encoders, combined."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.pseudo.steps import pseudo_label_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
pseudo_label_step(
    fe=snakemake.input.fe,
    fa=snakemake.input.get("fa"),
    labeled=snakemake.input.labeled,
    unlabeled=snakemake.input.unlabeled,
    classes=snakemake.input.classes,
    shards=list(snakemake.input.shards),
    out=snakemake.output.table,
    hparams=snakemake.input.hparams,
    **settings,  # source, align, clips_per_video, calibrate, accept, device
    threads=snakemake.threads,
    val=snakemake.input.val,
    out_info=snakemake.output.info,
    log=log,
)
reads.check()
