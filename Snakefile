# FinePseudo: semi-supervised fine-grained action recognition through temporal alignability
# (Dave, Rizve, Shah, ECCV 2024), as a Snakemake workflow. The Snakefile only wires things up:
# config validation and helpers live in workflow/rules/common.smk, one .smk per stage.
from snakemake.utils import min_version

min_version("9.20")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/frames.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/alignability.smk"
include: "workflow/rules/pseudo.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "results/report.html",
    localrule: True
