"""Rule select_hparams: theta, tau and (open world) delta of a method, chosen on the validation split."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.pseudo.steps import select_hparams_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
select_hparams_step(
    fe=snakemake.input.fe,
    fa=snakemake.input.get("fa"),
    labeled=snakemake.input.labeled,
    val=snakemake.input.val,
    classes=snakemake.input.classes,
    shards=list(snakemake.input.shards),
    out=snakemake.output.hparams,
    out_candidates=snakemake.output.candidates,
    # method, source, open_world, defaults, select, theta_grid, tau_grid, target_precision, known_keep, align,
    # clips_per_video, calibrate, accept, device
    **settings,
    threads=snakemake.threads,
    out_calibration=snakemake.output.calibration,
    out_reliability=snakemake.output.reliability,
    log=log,
)
reads.check()
