"""Rule retrain_fe: train round r's f_E on labeled + accepted pseudo-labeled videos (config pseudo.fe)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.pseudo.steps import retrain_fe_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
retrain_fe_step(
    fe=snakemake.input.fe,
    labeled=snakemake.input.labeled,
    pseudo=snakemake.input.pseudo,
    shards=list(snakemake.input.shards),
    out_model=snakemake.output.model,
    out_history=snakemake.output.history,
    init=snakemake.input.get("init"),
    **settings,  # recipe, init_seed, seed, device
    threads=snakemake.threads,
    workers=snakemake.config["frames"]["workers"],
    log=log,
)
reads.check()
