"""Rule make_splits: class-stratified labeled list, label-free unlabeled list, evaluation-only truth."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.data.datasets import read_manifest  # noqa: E402
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402
from finepseudo.data.splits import make_splits  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
p = settings
splits = make_splits(read_manifest(snakemake.input.manifest), p["percent"], p["seed"], p["novel_classes"],
                     p["val_per_class"])
for name, table in splits.items():
    table.to_csv(snakemake.output[name], sep="\t", index=False)
    log(f"{name}: {len(table)} videos -> {snakemake.output[name]}")
reads.check()
