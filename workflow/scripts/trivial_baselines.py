"""Rule trivial_baselines: pixel-DTW 1-NN, pooled-pixel 1-NN, phi_A alone and the self-supervised f_E probe
on the test split, from the split's labeled videos, written like an evaluation's outputs."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.baselines.steps import OUTPUT_FILES, trivial_baselines_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
names = settings.pop("baselines")  # the baselines this config runs, in the order of each output list
out = {name: {key: snakemake.output[key][i] for key in OUTPUT_FILES} for i, name in enumerate(names)}
trivial_baselines_step(
    labeled=snakemake.input.labeled,
    test=snakemake.input.test,
    classes=snakemake.input.classes,
    shards=list(snakemake.input.shards),
    pa_test=snakemake.input.pa_test,
    ssl_model=snakemake.input.get("ssl"),
    out=out,
    **settings,  # pixel_size, num_frames, dtw_backend, clip_frames, clips_per_video, batch_size, device
    threads=snakemake.threads,
    log=log,
)
reads.check()
