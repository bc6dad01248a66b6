"""Rule retrain_fa: continue AVML of f_A + f_S on labeled + accepted pseudo-labeled videos."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.pseudo.steps import retrain_fa_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
retrain_fa_step(
    fa=snakemake.input.fa,
    labeled=snakemake.input.labeled,
    pseudo=snakemake.input.pseudo,
    shards=list(snakemake.input.shards),
    out_model=snakemake.output.model,
    out_history=snakemake.output.history,
    **settings,  # align, loss, epochs, seed, device
    threads=snakemake.threads,
    log=log,
)
reads.check()
