"""Rule extract_frames: decode one shard of videos with ffmpeg into a uint8 .npy array and its index."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.data.datasets import read_manifest  # noqa: E402
from finepseudo.data.frames import extract_shard, write_index  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
par = settings
manifest = read_manifest(snakemake.input.manifest)
rows = manifest[manifest["shard"] == par["shard"]]
cols = ["video", "path", "start_frame", "end_frame", "start_sec", "end_sec"]  # every manifest has them
videos = list(rows[cols].itertuples(index=False, name=None))
log(f"shard {par['shard']}: {len(videos)} videos, {par['num_frames']} frames at {par['size']}px "
    f"({par['resize']}), on_error={par['on_error']}")
status = extract_shard(videos, snakemake.output.frames, num_frames=par["num_frames"], size=par["size"],
                       on_error=par["on_error"], resize=par["resize"], log=log)
write_index(snakemake.output.shard_index, status)
log(f"wrote {sum(r['status'] == 'ok' for r in status)} videos, {sum(r['status'] != 'ok' for r in status)} failed")
reads.check()
