"""Generates the specs the front-end benchmarks compile.

    python bench/gen_specs.py [--out bench/.work/specs]

writes:

- `realistic20.mlspec`: a 20-step churn-model pipeline of about 200 lines, the size of a real
  spec: params, datasets, a step template, resource profiles, `run` command templates and
  `call` steps, inputs chained across steps, a quality gate, a `finally` step and a Ray
  target (so lint also finds and loads a backend description);
- `steps_1000.mlspec`, `steps_10000.mlspec`, `steps_20000.mlspec`: N explicit steps in a
  chain of fans (a hub step fans out to 8 workers whose outputs one join step collects; the
  join feeds the next hub);
- `foreach_10000.mlspec`: one step fanned out over a 10,000-item literal list param.

Every spec lints clean: no error and no warning.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / ".work" / "specs"
EXPLICIT_SIZES = (1_000, 10_000, 20_000)
FOREACH_WIDTH = 10_000
FAN_WIDTH = 8  # workers between a hub and its join

REALISTIC_20 = """\
mlspec 1

# A churn model: ingest two sources, validate and join them, build features, train three
# candidate models, evaluate and compare them, and publish the best one only if it beats
# the quality bar. 20 steps: `run` command templates and `call` steps side by side.

type table: dataset

resources small { cpu = 1, memory = 2Gi }
resources medium { cpu = 4, memory = 16Gi }

template tabular {
  image = "ghcr.io/acme/tabular:1.4"
  env { PYTHONUNBUFFERED = "1" }
  retries = 2
  backoff = 30s
  timeout = 1h
}

pipeline churn {
  params {
    snapshot: str = "2026-11-01"
    test_fraction: float(0.05..0.5) = 0.2
    seed: int(0..100000) = 7
    max_depth: int(1..64) = 8
    n_estimators: int(1..10000) = 400
    learning_rate: float(0.0001..1.0) = 0.05
    l2: float(0.0..10.0) = 0.1
    min_auc: float(0.0..1.0) = 0.8
  }

  dataset events: table {
    uri = "s3://acme-ml/datasets/events"
    version = latest
  }

  dataset accounts: table {
    uri = "s3://acme-ml/datasets/accounts"
    version = tag("2026-11")
  }

  step ingest_events extends tabular {
    run = "python -m churn.ingest --in {{ inputs.raw }} --at {{ params.snapshot }} --out {{ outputs.rows }}"
    inputs { raw = events }
    outputs { rows: table }
    resources = medium
  }

  step ingest_accounts extends tabular {
    run = "python -m churn.ingest --in {{ inputs.raw }} --at {{ params.snapshot }} --out {{ outputs.rows }}"
    inputs { raw = accounts }
    outputs { rows: table }
    resources = small
  }

  step validate_events {
    call = "churn.validate:check_events"
    inputs { rows = ingest_events.rows }
    outputs { valid: table, report: metrics { null_rate: float, rows: int } }
    resources = small
  }

  step validate_accounts {
    call = "churn.validate:check_accounts"
    inputs { rows = ingest_accounts.rows }
    outputs { valid: table, report: metrics { null_rate: float, rows: int } }
    resources = small
  }

  step join {
    call = "churn.join:join_on_account"
    inputs { events = validate_events.valid, accounts = validate_accounts.valid }
    outputs { joined: table }
    resources { cpu = 4, memory = 32Gi }
  }

  step clean extends tabular {
    run = [
      "python", "-m", "churn.clean",
      "--in", "{{ inputs.joined }}",
      "--out", "{{ outputs.cleaned }}",
    ]
    inputs { joined = join.joined }
    outputs { cleaned: table }
    resources = medium
  }

  step split {
    call = "churn.split:train_test"
    args { test_fraction = params.test_fraction, seed = params.seed }
    inputs { rows = clean.cleaned }
    outputs { train: table, test: table }
    resources = small
  }

  step features_numeric {
    call = "churn.features:numeric"
    inputs { train_rows = split.train, test_rows = split.test }
    outputs { train: table, test: table }
    resources = medium
  }

  step features_categorical {
    call = "churn.features:categorical"
    inputs { train_rows = split.train, test_rows = split.test }
    outputs { train: table, test: table }
    resources = medium
  }

  step assemble {
    call = "churn.features:assemble"
    inputs {
      numeric_train = features_numeric.train
      numeric_test = features_numeric.test
      categorical_train = features_categorical.train
      categorical_test = features_categorical.test
    }
    outputs { train: table, test: table }
    resources = medium
  }

  step train_gbm extends tabular {
    run = "python -m churn.train_gbm --data {{ inputs.train }} --depth {{ params.max_depth }} --trees {{ params.n_estimators }} --lr {{ params.learning_rate }} --seed {{ params.seed }} --out {{ outputs.model }}"
    inputs { train = assemble.train }
    outputs { model: model }
    resources { cpu = 8, memory = 32Gi }
    timeout = 4h
  }

  step train_forest {
    call = "churn.train:random_forest"
    args { max_depth = params.max_depth, n_estimators = params.n_estimators, seed = params.seed }
    inputs { train = assemble.train }
    outputs { model: model }
    resources { cpu = 8, memory = 16Gi }
    retries = 1
  }

  step train_logistic {
    call = "churn.train:logistic"
    args { l2 = params.l2 }
    inputs { train = assemble.train }
    outputs { model: model }
    resources = small
  }

  step evaluate_gbm {
    call = "churn.evaluate:score"
    inputs { model = train_gbm.model, test = assemble.test }
    outputs { scores: metrics { auc: float, logloss: float } }
    resources = small
  }

  step evaluate_forest {
    call = "churn.evaluate:score"
    inputs { model = train_forest.model, test = assemble.test }
    outputs { scores: metrics { auc: float, logloss: float } }
    resources = small
  }

  step evaluate_logistic {
    call = "churn.evaluate:score"
    inputs { model = train_logistic.model, test = assemble.test }
    outputs { scores: metrics { auc: float, logloss: float } }
    resources = small
  }

  step compare {
    call = "churn.select:best_by_auc"
    inputs {
      gbm = train_gbm.model
      forest = train_forest.model
      logistic = train_logistic.model
      gbm_scores = evaluate_gbm.scores
      forest_scores = evaluate_forest.scores
      logistic_scores = evaluate_logistic.scores
    }
    outputs { best: model, scores: metrics { auc: float, logloss: float } }
    resources = small
  }

  step explain extends tabular {
    run = "python -m churn.explain --model {{ inputs.model }} --data {{ inputs.test }} --out {{ outputs.report }}"
    inputs { model = compare.best, test = assemble.test }
    outputs { report: file }
    resources = medium
  }

  # The quality gate: publish only a model that beats the bar.
  step publish {
    when = compare.scores.auc >= params.min_auc
    call = "churn.registry:publish"
    inputs { model = compare.best, scores = compare.scores, explanation = explain.report }
    outputs { entry: file }
    secrets { REGISTRY_TOKEN = "registry/token" }
    resources = small
  }

  finally step notify extends tabular {
    run = "python -m churn.notify --run {{ run.id }} --status {{ run.status }}"
    resources = small
  }

  outputs {
    model = compare.best
    scores = compare.scores
    events_report = validate_events.report
    accounts_report = validate_accounts.report
    registry_entry = publish.entry
  }
}

target dev {
  backend = ray
  address = "ray://ray-head.ml.svc:10001"
  store = "s3://acme-ml/mlc"
}
"""


def realistic_20() -> str:
    """The 20-step spec (a fixed text, so its figures compare across versions)."""
    return REALISTIC_20


def explicit_steps(count: int, width: int = FAN_WIDTH) -> str:
    """A pipeline of exactly `count` explicit steps: a chain of hub → `width` workers → join.

    Each hub reads the previous join's output; each worker reads its hub; each join reads
    its workers; the last join's output is the pipeline's output, so nothing is unused.
    """
    lines = [
        "mlspec 1",
        "",
        f"# {count} explicit steps: hubs fan out to {width} workers, joins fan back in.",
        "",
        f"pipeline explicit_{count} {{",
        "  params {",
        "    seed: int(0..100000) = 7",
        '    tag: str = "bench"',
        "  }",
        "",
        "  step source {",
        '    call = "bench.steps:source"',
        "    args { seed = params.seed }",
        "    outputs { data: dataset }",
        "    resources { cpu = 1, memory = 1Gi }",
        "  }",
    ]
    made = 1
    previous = "source.data"
    group = 0
    while made < count:
        remaining = count - made
        if remaining < 3:  # too few for a fan: finish with a plain chain
            name = f"tail_{made}"
            lines += _step(name, "bench.steps:transform", {"upstream": previous}, "data")
            previous = f"{name}.data"
            made += 1
            continue
        workers = min(width, remaining - 2)
        hub = f"hub_{group}"
        lines += _step(hub, "bench.steps:split", {"upstream": previous}, "data")
        worker_names = [f"work_{group}_{i}" for i in range(workers)]
        for worker in worker_names:
            lines += _step(
                worker,
                "bench.steps:transform",
                {"upstream": f"{hub}.data"},
                "part",
                args="{ seed = params.seed, tag = params.tag }",
            )
        join = f"join_{group}"
        lines += _step(
            join,
            "bench.steps:join",
            {f"part_{i}": f"{w}.part" for i, w in enumerate(worker_names)},
            "data",
        )
        previous = f"{join}.data"
        made += workers + 2
        group += 1
    lines += ["", f"  outputs {{ result = {previous} }}", "}", ""]
    return "\n".join(lines)


def _step(
    name: str, call: str, inputs: dict[str, str], output: str, args: str | None = None
) -> list[str]:
    wired = ", ".join(f"{port} = {source}" for port, source in inputs.items())
    lines = ["", f"  step {name} {{", f'    call = "{call}"']
    if args:
        lines.append(f"    args {args}")
    lines += [
        f"    inputs {{ {wired} }}",
        f"    outputs {{ {output}: dataset }}",
        "    resources { cpu = 1, memory = 2Gi }",
        "  }",
    ]
    return lines


def foreach_wide(width: int = FOREACH_WIDTH) -> str:
    """One step fanned out over a `width`-item literal list param, then a fan-in."""
    items = ", ".join(str(i) for i in range(width))
    return f"""\
mlspec 1

# One step fanned out over {width} shards, then collected by one fan-in step.

pipeline foreach_{width} {{
  params {{
    shards: list[int] = [{items}]
    parallelism: int(1..1024) = 64
  }}

  step prepare {{
    call = "bench.steps:source"
    outputs {{ table: dataset }}
    resources {{ cpu = 1, memory = 1Gi }}
  }}

  step score foreach shard in params.shards {{
    parallelism = params.parallelism
    image = "ghcr.io/acme/tabular:1.4"
    run = "python -m bench.score --shard {{{{ shard }}}} --in {{{{ inputs.table }}}} --out {{{{ outputs.part }}}}"
    inputs {{ table = prepare.table }}
    outputs {{ part: dataset }}
    resources {{ cpu = 1, memory = 2Gi }}
  }}

  step collect {{
    call = "bench.steps:collect"
    inputs {{ parts: list[dataset] = score.part }}
    outputs {{ merged: dataset }}
    resources {{ cpu = 2, memory = 8Gi }}
  }}

  outputs {{ merged = collect.merged }}
}}
"""


def generate(out: Path = DEFAULT_OUT) -> dict[str, Path]:
    """Writes every benchmark spec under `out`; returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {"realistic20": realistic_20()}
    for count in EXPLICIT_SIZES:
        texts[f"steps_{count}"] = explicit_steps(count)
    texts[f"foreach_{FOREACH_WIDTH}"] = foreach_wide()
    paths: dict[str, Path] = {}
    for name, text in texts.items():
        path = out / f"{name}.mlspec"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        paths[name] = path
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the specs")
    args = parser.parse_args()
    for name, path in generate(args.out).items():
        lines = path.read_text(encoding="utf-8").count("\n")
        print(f"{name:14} {lines:>7} lines  {path}")


if __name__ == "__main__":
    main()
