"""Caching: hits, misses and how `plan` and `apply` explain them; `--rerun`; cache policy."""

from __future__ import annotations

import time
from pathlib import Path

from mlc.ir.model import CachePolicy, Command
from mlc.runtime.cache_entries import RECORD_KIND
from mlc.store.layout import record_key
from mlc.store.local import LocalStore

from tests.local.conftest import Runner, by_name
from tests.runtime.builders import dataset, document, inp, out, sh, step

HELPERS = """
def scale(factor, data, scaled):
    scaled.write_text(str(float(data.read_text()) * factor))
"""


def pipeline(work: Path, factor: float = 2.0, **step_options: object) -> object:
    """`data` (a dataset) -> `scale` (a call step using param `factor`) -> `show`."""
    if not (work / "helpers.py").exists():
        (work / "helpers.py").write_text(HELPERS)
    if not (work / "number.txt").exists():
        (work / "number.txt").write_text("21")
    return document(
        work,
        [
            step(
                "scale",
                Command(kind="call", function="helpers:scale", args={"factor": factor}),
                inputs=[inp("data", "dataset:number")],
                outputs=[out("scaled")],
                params_used={"factor": factor},
                **step_options,
            ),  # type: ignore[arg-type]
            step(
                "show",
                sh("cat {{ inputs.x }} > {{ outputs.text }}"),
                inputs=[inp("x", "scale.scaled")],
                outputs=[out("text")],
            ),
        ],
        params={"factor": factor},
        datasets=[dataset("number", "number.txt")],
    )


def lock(runner: Runner, work: Path) -> None:
    """Writes mlc.lock for the `number` dataset (it is pinned to `latest`)."""
    from mlc.runtime.lockfile import LockedDataset, render_lock, write_lock

    version = runner.store.snapshot(work / "number.txt")
    entry = LockedDataset("number", "number.txt", "latest", version.digest)
    write_lock(work / "mlc.lock", render_lock([entry], "test.mlspec"))


def statuses(report: object) -> dict[str, str]:
    return {name: s.status for name, s in by_name(report).items()}  # type: ignore[attr-defined]


def reasons(plan: object) -> dict[str, tuple[str, list[str]]]:
    return {e.name: (e.action, e.reasons) for e in plan.entries}  # type: ignore[attr-defined]


def test_a_second_apply_is_all_cached_with_identical_outputs(runner: Runner, work: Path) -> None:
    doc = pipeline(work)
    lock(runner, work)
    first = runner.apply(doc)
    second = runner.apply(doc)
    assert statuses(first) == {"scale": "ran", "show": "ran"}
    assert statuses(second) == {"scale": "cached", "show": "cached"}
    assert [s.outputs for s in first.steps] == [s.outputs for s in second.steps]
    assert runner.store.read_bytes(by_name(second)["show"].outputs["text"]) == b"42.0"


def test_plan_says_what_is_cached_before_and_after_a_run(runner: Runner, work: Path) -> None:
    doc = pipeline(work)
    lock(runner, work)
    before = reasons(runner.plan(doc))
    assert before["scale"] == ("run", ["it has not run before"])
    assert before["show"] == ("run", ["input `x` comes from `scale`, which will run"])
    runner.apply(doc)
    after = runner.plan(doc)
    assert [e.action for e in after.entries] == ["cached", "cached"]


def test_a_changed_param_is_named_with_its_old_and_new_value(runner: Runner, work: Path) -> None:
    first = pipeline(work, factor=2.0)
    lock(runner, work)
    runner.apply(first)
    changed = pipeline(work, factor=3.0)
    assert reasons(runner.plan(changed))["scale"] == ("run", ["param `factor` changed (2.0 → 3.0)"])
    report = runner.apply(changed)
    assert statuses(report) == {"scale": "ran", "show": "ran"}
    assert by_name(report)["show"].reasons[0].startswith("input `x` changed (sha256:")


def test_changed_input_data_is_named_with_both_digests(runner: Runner, work: Path) -> None:
    doc = pipeline(work)
    lock(runner, work)
    runner.apply(doc)
    old = runner.store.snapshot(work / "number.txt").digest
    (work / "number.txt").write_text("50")
    lock(runner, work)
    new = runner.store.snapshot(work / "number.txt").digest
    assert reasons(runner.plan(doc))["scale"] == (
        "run",
        [f"input `data` changed ({old[:19]} → {new[:19]})"],
    )


def test_changed_code_of_a_call_step_is_a_miss(runner: Runner, work: Path) -> None:
    doc = pipeline(work)
    lock(runner, work)
    runner.apply(doc)
    (work / "helpers.py").write_text(HELPERS + "\n# a comment changes the source\n")
    action, why = reasons(runner.plan(doc))["scale"]
    assert action == "run"
    assert len(why) == 1 and why[0].startswith("code `module helpers` changed (sha256:")


def test_a_project_module_the_function_imports_is_part_of_its_code(
    runner: Runner, work: Path
) -> None:
    (work / "helpers.py").write_text("from units import convert\n" + HELPERS)
    (work / "units.py").write_text("def convert(x):\n    return x\n")
    (work / "notes.py").write_text("# imported by nothing\n")
    doc = pipeline(work)
    lock(runner, work)
    runner.apply(doc)
    (work / "notes.py").write_text("# still imported by nothing\n")
    assert reasons(runner.plan(doc))["scale"][0] == "cached"
    (work / "units.py").write_text("def convert(x):\n    return 2 * x\n")
    action, why = reasons(runner.plan(doc))["scale"]
    assert action == "run"
    assert len(why) == 1 and why[0].startswith("code `module units` changed (sha256:")


def test_a_script_a_run_step_names_is_part_of_its_code(runner: Runner, work: Path) -> None:
    (work / "make.py").write_text("import sys\nopen(sys.argv[1], 'w').write('one')\n")
    doc = document(work, [step("make", sh("python3 make.py {{ outputs.t }}"), outputs=[out("t")])])
    runner.apply(doc)
    assert reasons(runner.plan(doc))["make"][0] == "cached"
    (work / "make.py").write_text("import sys\nopen(sys.argv[1], 'w').write('two')\n")
    action, why = reasons(runner.plan(doc))["make"]
    assert action == "run" and why == [why[0]] and why[0].startswith("code `make.py` changed")


def test_declared_code_paths_are_part_of_the_key(runner: Runner, work: Path) -> None:
    (work / "tool").mkdir()
    (work / "tool" / "run.sh").write_text("echo one\n")
    doc = document(
        work,
        [
            step("use", sh("sh tool/run.sh > {{ outputs.t }}"), outputs=[out("t")], code=["tool"]),
        ],
    )
    runner.apply(doc)
    (work / "tool" / "run.sh").write_text("echo two\n")
    action, why = reasons(runner.plan(doc))["use"]
    assert action == "run" and why[0].startswith("code `tool` changed")


def test_resources_retries_and_timeouts_are_not_part_of_the_key(runner: Runner, work: Path) -> None:
    doc = pipeline(work)
    lock(runner, work)
    runner.apply(doc)
    tuned = pipeline(work, cpu_millis=2000, retries=3, timeout_seconds=99.0)
    assert [e.action for e in runner.plan(tuned).entries] == ["cached", "cached"]


def test_rerun_runs_a_step_and_what_depends_on_it(runner: Runner, work: Path) -> None:
    doc = pipeline(work)
    lock(runner, work)
    runner.apply(doc)
    plan = reasons(runner.plan(doc, rerun=["scale"]))
    assert plan["scale"] == ("run", ["--rerun asked for it"])
    report = runner.apply(doc, rerun=["scale"])
    # The step ran again; its output is the same, so what depends on it is still cached.
    assert statuses(report) == {"scale": "ran", "show": "cached"}
    assert statuses(runner.apply(doc, rerun=["all"])) == {"scale": "ran", "show": "ran"}


def test_a_step_with_caching_disabled_always_runs(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step(
                "stamp",
                sh("date +%s%N > {{ outputs.t }}"),
                outputs=[out("t")],
                cache=CachePolicy(enabled=False),
            ),
        ],
    )
    runner.apply(doc)
    report = runner.apply(doc)
    assert statuses(report) == {"stamp": "ran"}
    assert by_name(report)["stamp"].reasons == ["caching is disabled for this step"]


def test_an_expired_entry_is_a_miss_that_says_so(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step(
                "fetch",
                sh("echo data > {{ outputs.t }}"),
                outputs=[out("t")],
                cache=CachePolicy(expire_seconds=1),
            ),
        ],
    )
    runner.apply(doc)
    assert statuses(runner.apply(doc)) == {"fetch": "cached"}
    time.sleep(1.2)
    report = runner.apply(doc)
    assert statuses(report) == {"fetch": "ran"}
    assert by_name(report)["fetch"].reasons[0].startswith("the cache expired (cached ")
    # The fresh entry is a hit again.
    assert statuses(runner.apply(doc)) == {"fetch": "cached"}


def test_outputs_missing_from_the_store_are_a_miss(runner: Runner, work: Path) -> None:
    doc = document(work, [step("make", sh("echo x > {{ outputs.t }}"), outputs=[out("t")])])
    digest = by_name(runner.apply(doc))["make"].outputs["t"]
    # As a garbage collection would: gone, whether the object was loose or in a pack.
    later = time.time() + 60
    assert runner.store.delete_object(digest, unless_modified_since=later)
    runner.store.compact(unless_modified_since=later)
    assert not runner.store.has(digest)
    action, why = reasons(runner.plan(doc))["make"]
    assert action == "run"
    assert why == ["the cached outputs (`t`) are no longer in the store"]
    report = runner.apply(doc)
    assert statuses(report) == {"make": "ran"}
    assert runner.store.has(digest)
    assert statuses(runner.apply(doc)) == {"make": "cached"}


def test_an_entry_a_power_loss_left_empty_is_a_miss_that_says_so(
    runner: Runner, work: Path
) -> None:
    doc = document(work, [step("make", sh("echo x > {{ outputs.t }}"), outputs=[out("t")])])
    key = by_name(runner.apply(doc))["make"].cache_key.removeprefix("sha256:")
    # Records are not flushed one by one: a power loss can leave one empty.
    assert isinstance(runner.store, LocalStore)
    record = Path(runner.store.path_of(record_key(RECORD_KIND, key)))
    record.chmod(0o644)
    record.write_bytes(b"")
    action, why = reasons(runner.plan(doc))["make"]
    assert action == "run"
    assert why == [f"a cache entry could not be read (record {RECORD_KIND}/{key} is empty)"]
    assert statuses(runner.apply(doc)) == {"make": "ran"}
    assert statuses(runner.apply(doc)) == {"make": "cached"}
    assert runner.store.list_records(RECORD_KIND) == [key, f"{key}.1"]


def test_a_step_whose_command_reads_the_run_id_never_hits(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step("note", sh("echo {{ run.id }} > {{ outputs.t }}"), outputs=[out("t")]),
        ],
    )
    runner.apply(doc)
    report = runner.apply(doc)
    assert statuses(report) == {"note": "ran"}
    assert by_name(report)["note"].reasons == ["the command reads `run`, which is new in every run"]


def test_cache_entries_live_in_the_store_as_records(runner: Runner, work: Path) -> None:
    doc = document(work, [step("make", sh("echo x > {{ outputs.t }}"), outputs=[out("t")])])
    key = by_name(runner.apply(doc))["make"].cache_key
    assert runner.store.list_records(RECORD_KIND) == [key.removeprefix("sha256:")]
    record = runner.store.get_record(RECORD_KIND, key.removeprefix("sha256:"))
    assert record["parts"]["command"]["argv"] == ["sh", "-c", "echo x > {{ outputs.t }}"]
