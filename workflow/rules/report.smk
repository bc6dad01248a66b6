# results/report.html: one self-contained HTML file with every table and figure of the run. Its plan, the files it
# reads by what each one is, comes from report_inputs.smk.


include: "report_inputs.smk"


rule report:
    input:
        unpack(get_report_inputs),
    output:
        report(
            "results/report.html",
            caption="../report/report.rst",
            category="Report",
        ),
    log:
        "results/logs/report.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings={"config": config},
        plan=get_report_plan,
        code=code("report"),
    script:
        "../scripts/report.py"
