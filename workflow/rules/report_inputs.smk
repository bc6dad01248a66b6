# Input functions of the report (report.smk). The report reads exactly the files of its plan
# (finepseudo.report.inputs.ReportInputs), built here from the config: each is an input of the rule, and the
# plan itself, which says what each file is (which method, label fraction, seed, round, rule), reaches the
# script as params.plan. Kept apart from the rule: snakemake --lint wants rules and functions in separate files.
from functools import cache

from finepseudo.report.inputs import (  # noqa: E402
    Alignability,
    Baseline,
    BenchmarkFile,
    Model,
    Prediction,
    PseudoFiles,
    ReportInputs,
    Round,
    Run,
)

BENCHMARKS = "results/benchmarks"


def report_run(method, frac, seed):
    """A method's run at a label fraction and seed: test metrics, predictions and confusion matrix, every f_E it
    may be scored with (each round's for pseudo-labeling methods, since the round is chosen at run time) and,
    for pseudo-labeling methods, the files of select_hparams, pseudo_quality and every round.
    """
    ev = path(layout.EVAL_DIR, method=method, frac=frac, seed=seed)
    pseudo = None
    if method in PSEUDO_METHODS:
        run = path(layout.RUN_DIR, method=method, frac=frac, seed=seed)
        models = tuple(
            Model(f"{run}/round{r}/fe.pt", f"{run}/round{r}/fe.history.tsv")
            for r in ROUNDS
        )
        rounds = tuple(
            Round(
                r, f"{ev}/round{r}/metrics.json", f"{run}/round{r}/pseudo_labels.json"
            )
            for r in ROUNDS
        )
        pseudo = PseudoFiles(
            calibration=f"{run}/calibration.tsv",
            reliability=f"{run}/reliability.tsv",
            quality=f"{run}/pseudo_quality.tsv",
            hparams=f"{run}/hparams.json",
            candidates=f"{run}/hparams_candidates.tsv",
            round_selection=f"{run}/round_selection.tsv",
            rounds=rounds,
        )
    else:
        model = get_model_path(SimpleNamespace(method=method, frac=frac, seed=seed))
        models = (Model(model, model.replace("fe.pt", "fe.history.tsv")),)
    return Run(
        method=method,
        frac=frac,
        seed=int(seed),
        metrics=f"{ev}/metrics.json",
        predictions=f"{ev}/predictions.tsv",
        confusion=f"{ev}/confusion.tsv",
        models=models,
        pseudo=pseudo,
    )


def report_baselines():
    """Every trivial baseline (TRIVIAL) at every label fraction and seed."""
    out = []
    for b in TRIVIAL:
        for p in PERCENTS:
            for s in SEEDS:
                run = path(layout.BASELINE_DIR, baseline=b, frac=p, seed=s)
                out.append(
                    Baseline(
                        name=b,
                        frac=p,
                        seed=int(s),
                        metrics=f"{run}/metrics.json",
                        predictions=f"{run}/predictions.tsv",
                    )
                )
    return tuple(out)


def report_alignability():
    """The alignability branch's tables of every label fraction and seed, in the order of their folders' names."""
    out = []
    for p in PERCENTS:
        for s in SEEDS:
            run = path(layout.ALIGN_DIR, frac=p, seed=s)
            out.append(
                Alignability(
                    frac=p,
                    seed=int(s),
                    pair_verification=f"{run}/pair_verification.tsv",
                    phase_agreement=f"{run}/phase_agreement.tsv",
                    pa_test=f"{run}/pA_test.tsv",
                    alignment_example=f"{run}/alignment_example.npz",
                    test_split=f"{path(layout.SPLIT_DIR, frac=p, seed=s)}/test.tsv",
                )
            )
    return tuple(sorted(out, key=lambda a: str(Path(a.pair_verification).parent)))


def benchmark_jobs():
    """The wildcards of every job with a ``benchmark:`` file that the report depends on, by rule name."""
    d = DATASET
    splits = [(p, s) for p in PERCENTS for s in SEEDS]
    sup = set(splits)
    if "supervised_full" in methods():
        sup |= {(FULL, s) for s in SEEDS}
    pseudo = [(m, p, s) for m, p, s in runs() if m in PSEUDO_METHODS]
    variants = avml_variants()
    inits = sorted({i for _, i in variants})
    split_jobs = [{"dataset": d, "frac": p, "seed": s} for p, s in splits]
    run_jobs = [{"dataset": d, "method": m, "frac": p, "seed": s} for m, p, s in runs()]
    pseudo_jobs = [
        {"dataset": d, "method": m, "frac": p, "seed": s} for m, p, s in pseudo
    ]
    round_jobs = [{**j, "round": r} for j in pseudo_jobs for r in ROUNDS]
    return {
        "build_manifest": [{"dataset": d}],
        "make_splits": [{"dataset": d, "frac": p, "seed": s} for p, s in sorted(sup)],
        "pretrain_fe": [{"dataset": d}] if config["fe"]["init"] == "ssl" else [],
        "train_fe": [
            {"dataset": d, "sup": "supervised", "frac": p, "seed": s}
            for p, s in sorted(sup)
        ]
        + [
            {"dataset": d, "sup": m, "frac": p, "seed": s}
            for m, p, s in runs()
            if m == "supervised_scratch"
        ],
        "evaluate_fe": [j for j in run_jobs if j["method"] not in PSEUDO_METHODS],
        "pretrain_gitdl": [{"dataset": d, "init": i} for i in inits],
        "mine_pairs": [{**j, "init": i} for j in split_jobs for i in inits],
        "train_alignability": [
            {**j, "loss": loss, "init": i} for j in split_jobs for loss, i in variants
        ],
        "predict_alignability": split_jobs,
        "pair_verification": split_jobs,
        "trivial_baselines": split_jobs,
        "select_hparams": pseudo_jobs,
        "select_round": pseudo_jobs,
        "pseudo_quality": pseudo_jobs,
        "evaluate_round": round_jobs,
        "pseudo_label": round_jobs,
        "retrain_fe": round_jobs,
        "retrain_fa": [
            j
            for j in round_jobs
            if PSEUDO_METHODS[j["method"]].source != "fe" and j["round"] < ROUNDS[-1]
        ],
        "export_model": run_jobs,
        "predict_videos": (
            [{"dataset": d, "name": predict_name()}]
            if predict_name() is not None
            else []
        ),
    }


def report_benchmarks():
    """The ``benchmark:`` file of every job the report depends on: each rule's own ``benchmark:`` pattern with the
    wildcards of its jobs (benchmark_jobs, which must name each of the rules that have a ``benchmark:``). The
    report reads these files, not a folder, so files left by an earlier config are not mixed in;
    tests/test_workflow.py checks that they are the files the jobs wrote."""
    jobs = benchmark_jobs()
    benchmarked = {r.name for r in workflow.rules if r.benchmark}
    if benchmarked != set(jobs):
        raise WorkflowError(
            "workflow/rules/report.smk: benchmark_jobs() must list the jobs of exactly the rules with a "
            f"benchmark: file; missing {sorted(benchmarked - set(jobs))}, "
            f"not benchmarked {sorted(set(jobs) - benchmarked)}"
        )
    files = {
        str(getattr(rules, name).benchmark.apply_wildcards(wc)): name
        for name, wcs in jobs.items()
        for wc in wcs
    }
    # BenchmarkFile(rule, job, path): the job's name is the file's path under BENCHMARKS, without .tsv
    return tuple(
        BenchmarkFile(
            files[path], str(Path(path).relative_to(BENCHMARKS).with_suffix("")), path
        )
        for path in sorted(files)
    )


def report_prediction():
    """The configured prediction run's table and page, or None when predict.videos_dir is not set."""
    name = predict_name()
    if name is None:
        return None
    folder = path(layout.PREDICT_DIR, name=name)
    return Prediction(
        name=name, table=f"{folder}/predictions.tsv", page=f"{folder}/page.html"
    )


@cache  # the config is fixed: the rule's input and params functions share one plan
def report_inputs():
    """The report's plan: every file it reads, by what it is (finepseudo.report.inputs.ReportInputs)."""
    return ReportInputs(
        manifest=MANIFEST,
        classes=CLASSES,
        shard_indexes=tuple(get_shard_indexes(None)),
        shards=tuple(get_shards(None)),
        synthdive_summary=(
            f"{layout.SYNTHDIVE_RAW}/summary.json" if DATASET == "synthdive" else None
        ),
        runs=tuple(report_run(m, p, s) for m, p, s in runs()),
        baselines=report_baselines(),
        alignability=report_alignability(),
        benchmarks=report_benchmarks(),
        exports=tuple(get_exports()),
        predict=report_prediction(),
    )


def get_report_inputs(wildcards):
    """Every file of the plan, grouped by what it is."""
    return report_inputs().files()


def get_report_plan(wildcards):
    return report_inputs().to_dict()
