"""Rule pair_verification: same/different-class AP of four pair measures, phase agreement of DTW paths."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.align.steps import pair_verification_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
pair_verification_step(
    models={"after GITDL": snakemake.input.gitdl, "after AVML": snakemake.input.avml},
    test=snakemake.input.test,
    manifest=snakemake.input.manifest,
    shards=list(snakemake.input.shards),
    phases=snakemake.input.get("phases"),
    out_table=snakemake.output.table,
    out_phase=snakemake.output.phase,
    out_example=snakemake.output.example,
    **settings,  # cfg, device
    threads=snakemake.threads,
    log=log,
)
reads.check()
