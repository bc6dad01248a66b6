"""Print the ``mem_mb`` and ``gpu`` resources Snakemake gives each rule's jobs for a config, from the DAG of
``results/report.html`` in a new working directory (nothing runs).

Usage: python job_resources.py SNAKEFILE WORKDIR CONFIG  -> one JSON object {rule: {"mem_mb": .., "gpu": ..}}.
Run by tests/test_config.py in a subprocess (Snakemake changes the working directory).
"""

import json
import sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.enums import Quietness
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

if __name__ == "__main__":
    snakefile, workdir, configfile = (Path(a).resolve() for a in sys.argv[1:4])
    workdir.mkdir(parents=True, exist_ok=True)
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        wf_api = api.workflow(resource_settings=ResourceSettings(cores=1),
                              config_settings=ConfigSettings(configfiles=[configfile]),
                              snakefile=snakefile, workdir=workdir)
        wf_api.dag(DAGSettings(targets={"results/report.html"}))
        wf = wf_api._workflow
        wf._prepare_dag(forceall=False, ignore_incomplete=False, lock_warn_only=True)
        wf._build_dag()
        out = {job.rule.name: {k: job.resources.get(k) for k in ("mem_mb", "gpu")} for job in wf.dag.jobs}
    print(json.dumps(out, sort_keys=True))
