# results/report.html: one self-contained HTML file with every table and figure of the run.


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
        settings={"config": config, "benchmarks": "results/benchmarks"},
        code=code("report"),
    script:
        "../scripts/report.py"
