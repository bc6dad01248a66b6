"""Rule predict_videos: classify every video of predict.videos_dir with an exported model (table and page)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.export.steps import predict_videos_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
par = settings
predict_videos_step(
    export=snakemake.input.export,
    videos_dir=par["videos_dir"],
    ranges=snakemake.input.get("ranges"),
    out=snakemake.output.table,
    page=snakemake.output.page,
    name=snakemake.wildcards.name,
    batch_size=par["batch_size"],
    device=par["device"],
    threads=snakemake.threads,
    # decoding threads: not a param, since results do not depend on it (changing it reruns nothing)
    workers=snakemake.config["predict"]["workers"],
    log=log,
)
reads.check()
