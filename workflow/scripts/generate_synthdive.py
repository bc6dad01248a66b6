"""Rule generate_synthdive: render the SynthDive videos and their Diving48-format annotations."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from finepseudo.kernels import pin_job  # noqa: E402

settings = pin_job(snakemake)
from finepseudo.runlog import ReadAudit, log_to  # noqa: E402
from finepseudo.data.synthdive import generate  # noqa: E402

log = log_to(snakemake.log[0])
reads = ReadAudit.of(snakemake)
cfg = dict(settings)
seed = int(cfg.pop("seed", 0))
out_dir = Path(snakemake.output.videos).parent
summary = generate(out_dir, cfg, seed=seed, log=log, workers=snakemake.threads)
Path(snakemake.output.summary).write_text(json.dumps(summary, indent=2, default=str))
log(f"done: {json.dumps(summary, default=str)[:500]}")
reads.check()
