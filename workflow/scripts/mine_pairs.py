"""Rule mine_pairs: all-pairs DTW over the labeled videos' f_A embeddings -> triplet table."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.align.steps import mine_pairs_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
mine_pairs_step(
    model=snakemake.input.model,
    labeled=snakemake.input.labeled,
    shards=list(snakemake.input.shards),
    out_triplets=snakemake.output.triplets,
    out_distances=snakemake.output.distances,
    **settings,  # backend, device
    threads=snakemake.threads,
    log=log,
)
reads.check()
