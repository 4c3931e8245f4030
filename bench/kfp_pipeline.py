"""The benchmark pipelines written with the Kubeflow Pipelines SDK, for comparison with mlc.

    bench/.envs/kfp/bin/python bench/kfp_pipeline.py OUT.yaml            # the 20-step churn
    bench/.envs/kfp/bin/python bench/kfp_pipeline.py OUT.yaml --steps N  # N tasks, hub/fan

The 20-step pipeline is `realistic20.mlspec` from `gen_specs.py`, step for step: the same
`run` steps as container components, the same `call` steps as Python components, the same
params, datasets (importers), resources, retries, environment and gate (`dsl.If` on an
output parameter, since KFP cannot branch on a metrics artifact), and the `finally` step as
an exit handler. Secrets need the separate `kfp-kubernetes` package and are left out, which
favours KFP slightly. `--steps N` builds the same chain of fans as `explicit_steps(N)`.

This file runs only in the benchmark's own environment (`bench/.envs/kfp`), never in mlc's.
"""

# No `from __future__ import annotations`: KFP reads the annotations as objects.
import argparse
import functools
import sys
import time
from typing import NamedTuple

from kfp import compiler, components, dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

IMAGE = "ghcr.io/acme/tabular:1.4"
FAN_WIDTH = 8
PROGRESS_EVERY = 1000
STARTED = time.perf_counter()  # after `import kfp`


def _progress(what: str) -> None:
    """One line on stderr, so a run stopped by a time limit shows how far it got."""
    print(f"[{time.perf_counter() - STARTED:7.2f} s] {what}", file=sys.stderr, flush=True)


# -- `run` steps: container components ----------------------------------------------------------


@dsl.container_component
def ingest(raw: Input[Dataset], snapshot: str, rows: Output[Dataset]):
    return dsl.ContainerSpec(
        image=IMAGE,
        command=["python", "-m", "churn.ingest"],
        args=["--in", raw.path, "--at", snapshot, "--out", rows.path],
    )


@dsl.container_component
def clean(joined: Input[Dataset], cleaned: Output[Dataset]):
    return dsl.ContainerSpec(
        image=IMAGE,
        command=["python", "-m", "churn.clean"],
        args=["--in", joined.path, "--out", cleaned.path],
    )


@dsl.container_component
def train_gbm(
    train: Input[Dataset],
    max_depth: int,
    n_estimators: int,
    learning_rate: float,
    seed: int,
    model: Output[Model],
):
    return dsl.ContainerSpec(
        image=IMAGE,
        command=["python", "-m", "churn.train_gbm"],
        args=[
            "--data",
            train.path,
            "--depth",
            max_depth,
            "--trees",
            n_estimators,
            "--lr",
            learning_rate,
            "--seed",
            seed,
            "--out",
            model.path,
        ],
    )


@dsl.container_component
def explain(model: Input[Model], test: Input[Dataset], report: Output[Dataset]):
    return dsl.ContainerSpec(
        image=IMAGE,
        command=["python", "-m", "churn.explain"],
        args=["--model", model.path, "--data", test.path, "--out", report.path],
    )


@dsl.container_component
def notify(run_id: str):
    return dsl.ContainerSpec(
        image=IMAGE, command=["python", "-m", "churn.notify"], args=["--run", run_id]
    )


# -- `call` steps: Python components ----------------------------------------------------------


@dsl.component(base_image=IMAGE)
def validate(rows: Input[Dataset], valid: Output[Dataset], report: Output[Metrics]):
    from churn.validate import check

    check(rows.path, valid.path, report)


@dsl.component(base_image=IMAGE)
def join(events: Input[Dataset], accounts: Input[Dataset], joined: Output[Dataset]):
    from churn.join import join_on_account

    join_on_account(events.path, accounts.path, joined.path)


@dsl.component(base_image=IMAGE)
def split(
    rows: Input[Dataset],
    test_fraction: float,
    seed: int,
    train: Output[Dataset],
    test: Output[Dataset],
):
    from churn.split import train_test

    train_test(rows.path, test_fraction, seed, train.path, test.path)


@dsl.component(base_image=IMAGE)
def features(
    train_rows: Input[Dataset],
    test_rows: Input[Dataset],
    kind: str,
    train: Output[Dataset],
    test: Output[Dataset],
):
    from churn import features as f

    getattr(f, kind)(train_rows.path, test_rows.path, train.path, test.path)


@dsl.component(base_image=IMAGE)
def assemble(
    numeric_train: Input[Dataset],
    numeric_test: Input[Dataset],
    categorical_train: Input[Dataset],
    categorical_test: Input[Dataset],
    train: Output[Dataset],
    test: Output[Dataset],
):
    from churn.features import assemble as run

    run(
        numeric_train.path,
        numeric_test.path,
        categorical_train.path,
        categorical_test.path,
        train.path,
        test.path,
    )


@dsl.component(base_image=IMAGE)
def train_forest(
    train: Input[Dataset], max_depth: int, n_estimators: int, seed: int, model: Output[Model]
):
    from churn.train import random_forest

    random_forest(train.path, max_depth, n_estimators, seed, model.path)


@dsl.component(base_image=IMAGE)
def train_logistic(train: Input[Dataset], l2: float, model: Output[Model]):
    from churn.train import logistic

    logistic(train.path, l2, model.path)


@dsl.component(base_image=IMAGE)
def evaluate(model: Input[Model], test: Input[Dataset], scores: Output[Metrics]):
    from churn.evaluate import score

    score(model.path, test.path, scores)


@dsl.component(base_image=IMAGE)
def compare(
    gbm: Input[Model],
    forest: Input[Model],
    logistic: Input[Model],
    gbm_scores: Input[Metrics],
    forest_scores: Input[Metrics],
    logistic_scores: Input[Metrics],
    best: Output[Model],
    scores: Output[Metrics],
) -> NamedTuple("Best", [("auc", float)]):
    from churn.select import best_by_auc

    return best_by_auc(
        gbm, forest, logistic, gbm_scores, forest_scores, logistic_scores, best, scores
    )


@dsl.component(base_image=IMAGE)
def publish(
    model: Input[Model], scores: Input[Metrics], explanation: Input[Dataset], entry: Output[Dataset]
):
    from churn.registry import publish as run

    run(model.path, scores.path, explanation.path, entry.path)


def _sized(task: dsl.PipelineTask, cpu: str, memory: str) -> dsl.PipelineTask:
    return task.set_cpu_limit(cpu).set_memory_limit(memory)


def _templated(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """What the mlc template `tabular` adds to a step."""
    return task.set_env_variable("PYTHONUNBUFFERED", "1").set_retry(2, backoff_duration="30s")


@dsl.pipeline(name="churn")
def churn(
    snapshot: str = "2026-11-01",
    test_fraction: float = 0.2,
    seed: int = 7,
    max_depth: int = 8,
    n_estimators: int = 400,
    learning_rate: float = 0.05,
    l2: float = 0.1,
    min_auc: float = 0.8,
):
    exit_task = _sized(_templated(notify(run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)), "1", "2G")
    with dsl.ExitHandler(exit_task):
        events = dsl.importer(
            artifact_uri="s3://acme-ml/datasets/events", artifact_class=Dataset, reimport=False
        )
        accounts = dsl.importer(
            artifact_uri="s3://acme-ml/datasets/accounts", artifact_class=Dataset, reimport=False
        )
        ingest_events = _sized(_templated(ingest(raw=events.output, snapshot=snapshot)), "4", "16G")
        ingest_accounts = _sized(
            _templated(ingest(raw=accounts.output, snapshot=snapshot)), "1", "2G"
        )
        validate_events = _sized(validate(rows=ingest_events.outputs["rows"]), "1", "2G")
        validate_accounts = _sized(validate(rows=ingest_accounts.outputs["rows"]), "1", "2G")
        joined = _sized(
            join(
                events=validate_events.outputs["valid"], accounts=validate_accounts.outputs["valid"]
            ),
            "4",
            "32G",
        )
        cleaned = _sized(_templated(clean(joined=joined.outputs["joined"])), "4", "16G")
        splits = _sized(
            split(rows=cleaned.outputs["cleaned"], test_fraction=test_fraction, seed=seed),
            "1",
            "2G",
        )
        numeric = _sized(
            features(
                train_rows=splits.outputs["train"], test_rows=splits.outputs["test"], kind="numeric"
            ),
            "4",
            "16G",
        )
        categorical = _sized(
            features(
                train_rows=splits.outputs["train"],
                test_rows=splits.outputs["test"],
                kind="categorical",
            ),
            "4",
            "16G",
        )
        assembled = _sized(
            assemble(
                numeric_train=numeric.outputs["train"],
                numeric_test=numeric.outputs["test"],
                categorical_train=categorical.outputs["train"],
                categorical_test=categorical.outputs["test"],
            ),
            "4",
            "16G",
        )
        gbm = _sized(
            _templated(
                train_gbm(
                    train=assembled.outputs["train"],
                    max_depth=max_depth,
                    n_estimators=n_estimators,
                    learning_rate=learning_rate,
                    seed=seed,
                )
            ),
            "8",
            "32G",
        )
        forest = _sized(
            train_forest(
                train=assembled.outputs["train"],
                max_depth=max_depth,
                n_estimators=n_estimators,
                seed=seed,
            ),
            "8",
            "16G",
        )
        forest.set_retry(1)
        logistic = _sized(train_logistic(train=assembled.outputs["train"], l2=l2), "1", "2G")
        evaluated = [
            _sized(evaluate(model=m.outputs["model"], test=assembled.outputs["test"]), "1", "2G")
            for m in (gbm, forest, logistic)
        ]
        best = _sized(
            compare(
                gbm=gbm.outputs["model"],
                forest=forest.outputs["model"],
                logistic=logistic.outputs["model"],
                gbm_scores=evaluated[0].outputs["scores"],
                forest_scores=evaluated[1].outputs["scores"],
                logistic_scores=evaluated[2].outputs["scores"],
            ),
            "1",
            "2G",
        )
        explained = _sized(
            _templated(explain(model=best.outputs["best"], test=assembled.outputs["test"])),
            "4",
            "16G",
        )
        with dsl.If(best.outputs["auc"] >= min_auc):
            _sized(
                publish(
                    model=best.outputs["best"],
                    scores=best.outputs["scores"],
                    explanation=explained.outputs["report"],
                ),
                "1",
                "2G",
            )


# -- N tasks: the chain of fans of `gen_specs.explicit_steps` ------------------------------------


@dsl.component(base_image=IMAGE)
def step_source(seed: int, data: Output[Dataset]):
    from bench.steps import source

    source(seed, data.path)


@dsl.component(base_image=IMAGE)
def step_transform(upstream: Input[Dataset], seed: int, tag: str, data: Output[Dataset]):
    from bench.steps import transform

    transform(upstream.path, seed, tag, data.path)


@functools.cache
def step_join(parts: int):
    """A join of `parts` datasets: KFP wires a fixed set of artifacts only through named
    inputs (a list input is for `ParallelFor` fan-in), so one component per width."""
    inputs = "\n".join(f"- {{name: part_{i}, type: Dataset}}" for i in range(parts))
    paths = ", ".join(f"{{inputPath: part_{i}}}" for i in range(parts))
    return components.load_component_from_text(f"""\
name: join_{parts}
inputs:
{inputs}
outputs:
- {{name: data, type: Dataset}}
implementation:
  container:
    image: {IMAGE}
    command: [python, -m, bench.steps.join]
    args: [--out, {{outputPath: data}}, {paths}]
""")


def explicit_steps(count: int, width: int = FAN_WIDTH):
    """A pipeline function with `count` tasks wired like `gen_specs.explicit_steps(count)`."""

    @dsl.pipeline(name=f"explicit-{count}")
    def pipeline(seed: int = 7, tag: str = "bench"):
        previous = _sized(step_source(seed=seed), "1", "1G").outputs["data"]
        made = 1
        while made < count:
            remaining = count - made
            if remaining < 3:
                task = step_transform(upstream=previous, seed=seed, tag=tag)
                previous = _sized(task, "1", "2G").outputs["data"]
                made += 1
                continue
            workers = min(width, remaining - 2)
            hub = _sized(step_transform(upstream=previous, seed=seed, tag=tag), "1", "2G")
            parts = {
                f"part_{i}": _sized(
                    step_transform(upstream=hub.outputs["data"], seed=seed, tag=tag), "1", "2G"
                ).outputs["data"]
                for i in range(workers)
            }
            joined = _sized(step_join(workers)(**parts), "1", "2G")
            previous = joined.outputs["data"]
            made += workers + 2
            if made // PROGRESS_EVERY != (made - workers - 2) // PROGRESS_EVERY:
                _progress(f"created {made} tasks")

    return pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="where to write the compiled pipeline YAML")
    parser.add_argument("--steps", type=int, help="compile N tasks in a chain of fans instead")
    args = parser.parse_args()
    if args.steps is None:
        compiler.Compiler().compile(pipeline_func=churn, package_path=args.output)
        return
    _progress(f"kfp imported; defining {args.steps} tasks")
    pipeline = explicit_steps(args.steps)  # KFP builds the task graph here, at decoration
    _progress("pipeline graph built; compiling")
    compiler.Compiler().compile(pipeline_func=pipeline, package_path=args.output)
    _progress(f"compiled to {args.output}")


if __name__ == "__main__":
    main()
