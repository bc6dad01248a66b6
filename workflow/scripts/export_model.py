"""Rule export_model: the f_E the report scores (and phi_A where the method uses it) as a self-describing folder."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.export.steps import export_model_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
inp = snakemake.input
export_model_step(
    **settings,  # dataset, method, description, frames, eval, align, config, code
    frac=snakemake.wildcards.frac,
    seed=int(snakemake.wildcards.seed),
    metrics=inp.metrics,
    predictions=inp.predictions,
    models=list(inp.models),
    fa_models=list(inp.get("fa_models", [])),
    classes=inp.classes,
    labeled=inp.labeled,
    val=inp.val,
    shards=list(inp.shards),
    hparams=inp.get("hparams"),
    out=snakemake.output[0],
    threads=snakemake.threads,
    log=log,
)
reads.check()
