"""Rule select_hparams: theta, tau and (open world) delta of a method, chosen on the validation split."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))
from finepseudo.pseudo_steps import select_hparams_step  # noqa: E402
from finepseudo.runlog import log_to  # noqa: E402

log = log_to(snakemake.log[0])
hp = snakemake.params.hparams
select_hparams_step(
    fe=snakemake.input.fe,
    fa=snakemake.input.get("fa"),
    labeled=snakemake.input.labeled,
    val=snakemake.input.val,
    classes=snakemake.input.classes,
    shards=list(snakemake.input.shards),
    out=snakemake.output.hparams,
    out_candidates=snakemake.output.candidates,
    method=snakemake.wildcards.method,
    source=snakemake.params.source,
    open_world=snakemake.params.open_world,
    defaults=dict(snakemake.params.defaults),
    select=list(hp["select"]),
    theta_grid=list(hp["theta_grid"]),
    tau_grid=list(hp["tau_grid"]),
    target_precision=hp["target_precision"],
    known_keep=hp["known_keep"],
    align=dict(snakemake.params.align),
    clips_per_video=snakemake.params.clips_per_video,
    device=snakemake.params.device,
    threads=snakemake.threads,
    calibrate=snakemake.params.calibrate,
    out_calibration=snakemake.output.calibration,
    out_reliability=snakemake.output.reliability,
    accept=dict(snakemake.params.accept),
    log=log,
)
