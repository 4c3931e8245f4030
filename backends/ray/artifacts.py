"""What `mlc compile SPEC --target NAME --output DIR` writes for a Ray target: the files a Ray
user reviews, or submits by hand with `ray job submit`, without mlc on their machine.

```
DIR/pipeline.ir.json     the IR document (what the driver runs)
DIR/runtime_env.json     the job's runtime environment: the spec's directory as working_dir
DIR/submit.sh            a `ray job submit` command line: the job's entry point is mlc's driver
```

The job ships the spec's directory as its working directory, so DIR must be inside it (e.g.
`build/ray`): the driver reads the IR from there. The run's store is the target's (the driver
runs on the cluster, so a remote store such as S3).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from mlc.backends.ray.jobs import EXCLUDES, is_jobs_address
from mlc.ir.model import IRDocument
from mlc.ir.serialize import to_json

SUBMIT = """#!/bin/sh
# Submits pipeline `{pipeline}` to the Ray cluster at {address} as one Ray Job whose driver is
# mlc's (written by `mlc compile`; review, then run from any directory).
set -eu
cd "$(dirname "$0")/{to_spec}"
RUN_ID="${{MLC_RUN_ID:-$(date -u +%Y%m%dT%H%M%S.000Z)-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \\n')}}"
exec ray job submit \\
  --address {address_q} \\
  --submission-id "$RUN_ID" \\
  --working-dir . \\
  --runtime-env-json "$(cat {runtime_env_q})" \\
  -- {entrypoint} --run-id "$RUN_ID"
"""


class ArtifactError(ValueError):
    """The target or the output directory cannot make a job; `str()` says why."""


def write_artifacts(document: IRDocument, output: Path) -> list[Path]:
    """Writes the IR, the runtime environment and the submit script into `output`."""
    target = document.target
    if target is None or not is_jobs_address(target.address):
        raise ArtifactError(
            "a Ray job is submitted through the Jobs API: give the target "
            '`address = "http://HEAD:8265"`'
        )
    if not target.store or "://" not in target.store:
        raise ArtifactError(
            f"target `{target.name}` needs a `store` the cluster reaches "
            '(`store = "s3://…"`): the driver runs on the cluster'
        )
    spec_dir = Path(document.base_dir).resolve()
    output = output.resolve()
    try:
        inside = output.relative_to(spec_dir)
    except ValueError:
        raise ArtifactError(
            f"the output directory must be inside the spec's directory `{spec_dir}` (it is "
            "shipped as the job's working directory): e.g. `--output build/ray`"
        ) from None
    output.mkdir(parents=True, exist_ok=True)
    ir_path = output / "pipeline.ir.json"
    ir_path.write_text(to_json(document), encoding="utf-8")
    settings = target.settings
    runtime_env = dict(settings.get("runtime_env") or {})
    runtime_env["excludes"] = [*EXCLUDES, *runtime_env.get("excludes", [])]
    env_path = output / "runtime_env.json"
    env_path.write_text(json.dumps(runtime_env, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    entrypoint = shlex.join(
        [
            str(settings.get("python") or "python"),
            "-m",
            "mlc.backends.ray.driver",
            "--store-address",
            json.dumps({"uri": target.store}),
            "--ir-file",
            (inside / ir_path.name).as_posix(),
        ]
    )
    submit = output / "submit.sh"
    submit.write_text(
        SUBMIT.format(
            pipeline=document.pipeline.name,
            address=target.address,
            address_q=shlex.quote(str(target.address)),
            to_spec=Path(*[".."] * len(inside.parts)).as_posix() if inside.parts else ".",
            runtime_env_q=shlex.quote((inside / env_path.name).as_posix()),
            entrypoint=entrypoint,
        ),
        encoding="utf-8",
    )
    submit.chmod(0o755)
    return [ir_path, env_path, submit]
