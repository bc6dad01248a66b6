"""Rule select_round: a pseudo-labeling method's result is the round whose f_E is best on validation."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.pseudo.hparams import select_round_step  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
inp = snakemake.input
n = sum(1 for key in inp.keys() if key.startswith("val_round"))
select_round_step(
    hparams=inp.hparams,
    val_metrics=[inp[f"val_round{r}"] for r in range(1, n + 1)],
    rounds=[{k: inp[f"{k}_round{r}"] for k in ("metrics", "per_class", "confusion", "predictions")}
            for r in range(1, n + 1)],
    out={k: snakemake.output[k] for k in ("metrics", "per_class", "confusion", "predictions")},
    out_table=snakemake.output.table,
    log=log,
)
reads.check()
