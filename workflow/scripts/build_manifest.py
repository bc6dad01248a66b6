"""Rule build_manifest: a dataset's official annotation files (SynthDive's are Diving48-V2 format) -> one
row per video, through the adapter of the dataset's format (finepseudo.data.datasets.read_dataset)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.data.datasets import build_manifest_for  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

import pandas as pd  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
par = settings
files = {k: v for k, v in snakemake.input.items() if k != "videos"}
manifest, names = build_manifest_for(par["format"], files, par["videos_dir"], num_shards=par["num_shards"],
                                     video_ext=par["video_ext"], source=par["source"],
                                     generated=par["generated"])
manifest.to_csv(snakemake.output.manifest, sep="\t", index=False)
pd.DataFrame({"label": range(len(names)), "name": names}).to_csv(snakemake.output.classes, sep="\t", index=False)
counts = manifest.groupby("split").size().to_dict()
log(f"manifest ({par['format']} format): {len(manifest)} videos {counts}, {len(names)} classes, "
    f"{par['num_shards']} shards")
reads.check()
