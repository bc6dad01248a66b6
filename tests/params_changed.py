"""Print, for each config file given, the rules whose jobs' params differ from those recorded with their
outputs in a finished working directory: Snakemake's own comparison (``persistence.params_changed``), made
for every job of the DAG. A dry run cannot say this of a job downstream of another planned one (its reason is
then only "updated input"), and ``--list-changes params`` lists every file in Snakemake 9.27.

Usage: python params_changed.py SNAKEFILE WORKDIR TARGET CONFIG...  -> one JSON object {config: [rules]}.
Run by tests/test_provenance.py in a subprocess (it changes the working directory and Snakemake's state).
"""

import json
import sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.enums import Quietness
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings


def params_changed(snakefile: Path, workdir: Path, target: str, configfile: Path) -> list[str]:
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        wf_api = api.workflow(resource_settings=ResourceSettings(cores=1),
                              config_settings=ConfigSettings(configfiles=[configfile]),
                              snakefile=snakefile, workdir=workdir)
        wf_api.dag(DAGSettings(targets={target}))
        wf = wf_api._workflow
        wf._prepare_dag(forceall=False, ignore_incomplete=False, lock_warn_only=True)
        wf._build_dag()
        return sorted({job.rule.name for job in wf.dag.jobs if wf.persistence.params_changed(job)})


if __name__ == "__main__":
    snakefile, workdir, target, *configs = sys.argv[1:]
    out = {c: params_changed(Path(snakefile).resolve(), Path(workdir).resolve(), target, Path(c).resolve())
           for c in configs}
    print(json.dumps(out))
