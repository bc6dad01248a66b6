"""Rule extract_frames: decode one shard of videos with ffmpeg into a uint8 tensor file."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))
from finepseudo.datasets import read_manifest  # noqa: E402
from finepseudo.frames import extract_shard  # noqa: E402
from finepseudo.runlog import log_to  # noqa: E402

import pandas as pd  # noqa: E402
import torch  # noqa: E402

log = log_to(snakemake.log[0])
par = snakemake.params
manifest = read_manifest(snakemake.input.manifest)
rows = manifest[manifest["shard"] == par.shard]
videos = list(zip(rows["video"], rows["path"], rows["start_frame"], rows["end_frame"]))
log(f"shard {par.shard}: {len(videos)} videos, {par.num_frames} frames at {par.size}px, on_error={par.on_error}")
shard, status = extract_shard(videos, num_frames=par.num_frames, size=par.size, on_error=par.on_error, log=log)
torch.save(shard, snakemake.output.frames)
pd.DataFrame(status, columns=["video", "status", "n_decoded", "reason"]).to_csv(
    snakemake.output.status, sep="\t", index=False
)
log(f"wrote {len(shard['videos'])} videos, {sum(r['status'] != 'ok' for r in status)} failed")
