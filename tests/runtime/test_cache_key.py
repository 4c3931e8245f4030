"""Cache keys: what is part of them, what is not, and how a change is put into words."""

from __future__ import annotations

from mlc.ir.model import CachePolicy, Command, GpuRequest
from mlc.runtime.cache_key import cache_key_parts, explain_change
from mlc.runtime.context import RunInfo
from mlc.runtime.invocation import Invocation, invocations_of

from tests.runtime.builders import out, sh, step

DATA = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def key_of(**options: object) -> str:
    code = options.pop("code", {"module steps": DATA})
    inputs = options.pop("inputs", {"data": DATA})
    run_id = str(options.pop("run_id", "run-1"))
    built = step(
        "train",
        options.pop("command", Command(kind="call", function="steps:train", args={"n": 1})),
        outputs=[out("model", "model")],
        **options,
    )  # type: ignore[arg-type]
    return cache_key_parts(
        Invocation(built),
        code=code,
        input_digests=inputs,  # type: ignore[arg-type]
        run=RunInfo(run_id),
    ).key


def test_the_same_definition_always_gives_the_same_key() -> None:
    assert key_of() == key_of()
    assert key_of().startswith("sha256:") and len(key_of()) == 71


def test_resources_retries_timeouts_and_cache_policy_are_not_part_of_the_key() -> None:
    assert key_of() == key_of(
        cpu_millis=8000,
        memory_bytes=1 << 34,
        gpu=GpuRequest(count=2, accelerator="t4"),
        retries=5,
        backoff_seconds=3.0,
        timeout_seconds=60.0,
        cache=CachePolicy(expire_seconds=10),
    )


def test_everything_that_determines_the_output_is() -> None:
    base = key_of()
    variants = [
        key_of(command=Command(kind="call", function="steps:train", args={"n": 2})),
        key_of(command=Command(kind="call", function="steps:fit", args={"n": 1})),
        key_of(code={"module steps": OTHER}),
        key_of(inputs={"data": OTHER}),
        key_of(params_used={"n": 1}),
        key_of(env={"SEED": "1"}),
        key_of(secrets={"TOKEN": "hub/token"}),
        key_of(image="ghcr.io/acme/train:2"),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_the_run_id_matters_only_when_a_template_reads_it() -> None:
    assert key_of(run_id="a") == key_of(run_id="b")
    reads_run = sh("echo {{ run.id }}")
    assert key_of(command=reads_run, run_id="a") != key_of(command=reads_run, run_id="b")
    # An `env` template that reads the run is part of what the command sees, too.
    env_reads_run = {"env": {"RUN": "{{ run.id }}"}}
    assert key_of(run_id="a", **env_reads_run) != key_of(run_id="b", **env_reads_run)


def test_each_foreach_item_has_its_own_key() -> None:
    sweep = step("train", sh("train --lr {{ lr }}"), foreach=("lr", [0.1, 0.01, 0.1]))
    keys = [
        cache_key_parts(i, code={}, input_digests={}, run=RunInfo("r")).key
        for i in invocations_of(sweep)
    ]
    assert keys[0] != keys[1] and keys[0] == keys[2]


def parts(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "version": 1,
        "command": {"kind": "call", "function": "steps:train", "argv": [], "args": {"n": 1}},
        "code": {"module steps": DATA},
        "env": {},
        "secrets": {},
        "image": None,
        "image_digest": None,
        "inputs": {"data": DATA, "parts": [DATA, DATA]},
        "params": {"n": 1},
        "item": {},
        "outputs": {"model": "model"},
        "run": None,
    }
    document.update(changes)
    return document


def test_explanations_name_what_changed_with_old_and_new() -> None:
    assert explain_change(parts(), parts()) == []
    assert explain_change(parts(), parts(inputs={"data": OTHER, "parts": [DATA, DATA]})) == [
        "input `data` changed (sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb)"
    ]
    assert explain_change(parts(), parts(inputs={"data": DATA, "parts": [DATA, OTHER]})) == [
        "input `parts` changed (item 1: sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb)"
    ]
    assert explain_change(parts(), parts(code={"module steps": OTHER})) == [
        "code `module steps` changed (sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb)"
    ]
    assert explain_change(parts(), parts(env={"SEED": "2"})) == ['env `SEED` is new ("2")']
    assert explain_change(parts(version=0), parts()) == [
        "the cache key format changed (mlc was upgraded)"
    ]


def test_an_argument_bound_from_a_changed_param_is_named_once() -> None:
    new = parts(
        params={"n": 5},
        command={"kind": "call", "function": "steps:train", "argv": [], "args": {"n": 5}},
    )
    assert explain_change(parts(), new) == ["param `n` changed (1 → 5)"]
