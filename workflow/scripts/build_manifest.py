"""Rule build_manifest: Diving48-V2-format annotations (SynthDive or real) -> one row per video."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))
from finepseudo.datasets import build_manifest, read_vocab  # noqa: E402
from finepseudo.runlog import log_to  # noqa: E402

import pandas as pd  # noqa: E402

log = log_to(snakemake.log[0])
inp, par = snakemake.input, snakemake.params
manifest = build_manifest(
    inp.train, inp.test, inp.vocab, par.videos_dir, num_shards=par.shards, video_ext=par.video_ext
)
manifest.to_csv(snakemake.output.manifest, sep="\t", index=False)
names = read_vocab(inp.vocab)
pd.DataFrame({"label": range(len(names)), "name": names}).to_csv(snakemake.output.classes, sep="\t", index=False)
counts = manifest.groupby("split").size().to_dict()
log(f"manifest: {len(manifest)} videos {counts}, {len(names)} classes, {par.shards} shards")
