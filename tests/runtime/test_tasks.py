"""Tasks in processes: calls with paths, a long-lived worker, process groups and timeouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlc.runtime import task as task_module
from mlc.runtime.attempt import AttemptPlan, Collected, carry_out
from mlc.runtime.process import run_process
from mlc.runtime.task import Task, execute_task, open_log
from mlc.store.local import LocalStore
from mlc.store.uri import store_address


def call_task(tmp_path: Path, function: str, **arguments: object) -> Task:
    return Task(
        kind="call",
        env=dict(os.environ),
        cwd=str(tmp_path),
        log_path=str(tmp_path / "log"),
        function=function,
        base_dir=str(tmp_path),
        arguments=arguments,
        metrics_path=str(tmp_path / "metrics.json"),
    )


def test_a_call_gets_args_paths_and_the_foreach_variable(tmp_path: Path) -> None:
    (tmp_path / "mod_a.py").write_text(
        "def f(scale, data, parts, out, lr):\n"
        "    print('called')\n"
        "    out.write_text(str(scale * lr) + data.name + ','.join(p.name for p in parts))\n"
    )
    task = call_task(
        tmp_path,
        "mod_a:f",
        args={"scale": 10},
        foreach={"lr": 0.5},
        paths={"data": "/d/x", "parts": ["/p/0", "/p/1"], "out": str(tmp_path / "o")},
    )
    result = execute_task(task)
    assert (result.exit_code, result.error, result.timed_out) == (0, None, False)
    assert (tmp_path / "o").read_text() == "5.0x0,1"
    assert (tmp_path / "log").read_text() == "called\n"


def test_a_returned_dict_becomes_the_metrics_output(tmp_path: Path) -> None:
    (tmp_path / "mod_b.py").write_text("def f():\n    return {'accuracy': 0.5}\n")
    assert execute_task(call_task(tmp_path, "mod_b:f")).ok
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"accuracy": 0.5}


@pytest.fixture
def step_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A step's environment: the worker's without `WORKER_ONLY`, with `OVERRIDDEN` changed and
    `STEP_ONLY` added."""
    monkeypatch.setenv("WORKER_ONLY", "w")
    monkeypatch.setenv("SHARED", "same")
    monkeypatch.setenv("OVERRIDDEN", "worker")
    env = {k: v for k, v in os.environ.items() if k != "WORKER_ONLY"}
    return env | {"OVERRIDDEN": "step", "STEP_ONLY": "s"}


def call_in(tmp_path: Path, module: str, source: str, env: dict[str, str]) -> dict[str, object]:
    """Calls `f` of a new module (a name of its own: modules stay imported) with this source,
    in this environment; returns what it returned, and checks that the worker's own
    environment is back afterwards."""
    before = dict(os.environ)
    (tmp_path / f"{module}.py").write_text(source)
    task = call_task(tmp_path, f"{module}:f")
    result = execute_task(Task(**{**task.to_json(), "env": env, "argv": ()}))
    assert result.ok, result.error
    assert dict(os.environ) == before
    returned: dict[str, object] = json.loads((tmp_path / "metrics.json").read_text())
    return returned


@pytest.mark.parametrize("raw_table", [True, False], ids=["raw table", "os.environ only"])
def test_a_call_sees_exactly_its_environment_and_the_worker_gets_its_own_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step_env: dict[str, str], raw_table: bool
) -> None:
    if not raw_table:  # an interpreter without CPython's encoded table behind os.environ
        monkeypatch.setattr(task_module, "_raw_environment", lambda: None)
    (tmp_path / "expected.json").write_text(json.dumps(step_env))
    source = (
        "import json, os\n"
        "def f():\n"
        "    seen = dict(os.environ)\n"
        "    os.environ['SHARED'] = 'changed by the step'\n"
        "    os.environ['NEW_FROM_STEP'] = '1'\n"
        "    os.environ.pop('OVERRIDDEN')\n"
        "    return {'ok': seen == json.load(open('expected.json'))}\n"
    )
    assert call_in(tmp_path, f"mod_env_{raw_table}", source, step_env) == {"ok": True}


def test_a_call_that_leaves_the_environment_alone_gets_it_put_back_too(
    tmp_path: Path, step_env: dict[str, str]
) -> None:
    source = (
        "import os\n"
        "def f():\n"
        "    return {'worker_only': 'WORKER_ONLY' in os.environ,\n"
        "            'overridden': os.environ['OVERRIDDEN'], 'step_only': os.environ['STEP_ONLY']}\n"
    )
    seen = call_in(tmp_path, "mod_reads", source, step_env)
    assert seen == {"worker_only": False, "overridden": "step", "step_only": "s"}


def test_a_signature_mismatch_says_what_was_passed(tmp_path: Path) -> None:
    (tmp_path / "mod_c.py").write_text("def f(data):\n    pass\n")
    result = execute_task(call_task(tmp_path, "mod_c:f", paths={"model": "/m"}))
    assert result.exit_code == 1
    assert result.error is not None
    assert result.error.startswith("`mod_c:f(data)` cannot be called with what the step passes")


def test_a_callable_object_that_cannot_be_hashed_is_still_checked_against_its_signature(
    tmp_path: Path,
) -> None:
    (tmp_path / "mod_d.py").write_text(
        "from dataclasses import dataclass\n"
        "@dataclass\n"  # eq=True: instances cannot be hashed
        "class Step:\n"
        "    scale: int = 2\n"
        "    def __call__(self, data):\n"
        "        pass\n"
        "f = Step()\n"
    )
    result = execute_task(call_task(tmp_path, "mod_d:f", paths={"model": "/m"}))
    assert result.exit_code == 1
    assert result.error is not None
    assert result.error.startswith("`mod_d:f(data)` cannot be called with what the step passes")


def test_a_worker_carries_out_attempts_one_after_another(tmp_path: Path) -> None:
    (tmp_path / "mod_d.py").write_text(
        "import os\ndef f(out):\n    out.write_text(str(os.getpid()))\n"
    )
    store = LocalStore(tmp_path / "store")
    tasks_read, tasks_write = os.pipe()
    results_read, results_write = os.pipe()
    worker = subprocess.Popen(
        [sys.executable, "-m", "mlc.runtime.worker", str(tasks_read), str(results_write)],
        pass_fds=(tasks_read, results_write),
        start_new_session=True,
    )
    os.close(tasks_read)
    os.close(results_write)
    pid_file = tmp_path / "pid"
    with os.fdopen(tasks_write, "w") as tasks, os.fdopen(results_read) as results:
        for attempt in ("one", "two"):
            root = tmp_path / attempt
            task = call_task(tmp_path, "mod_d:f", paths={"out": str(pid_file)})
            plan = AttemptPlan(
                root=str(root),
                inputs={},
                outputs=(),
                log_path=str(tmp_path / f"{attempt}.log"),
                header=f"--- {attempt} ---\n",
            )
            message = {
                "store": store_address(store),
                "task": task.to_json(),
                "attempt": plan.to_json(),
            }
            tasks.write(json.dumps(message) + "\n")
            tasks.flush()
            ended = json.loads(results.readline())["ended"]
            assert (ended["exit_code"], ended["error"], ended["timed_out"]) == (0, None, False)
            assert ended["peak_memory_bytes"] > 0
            assert json.loads(results.readline()) == {"collected": {"outputs": {}, "error": None}}
            assert pid_file.read_text() == str(worker.pid)
            assert (tmp_path / f"{attempt}.log").read_text().startswith(f"--- {attempt} ---")
    assert worker.wait(timeout=10) == 0
    # Each attempt directory is left holding an empty tmp/, ready for reuse.
    for attempt in ("one", "two"):
        assert [p.name for p in (tmp_path / attempt).iterdir()] == ["tmp"]
        assert not any((tmp_path / attempt / "tmp").iterdir())


def test_a_timeout_kills_the_group_even_if_it_ignores_sigterm(tmp_path: Path) -> None:
    script = f"sh -c 'trap \"\" TERM; echo $$ > {tmp_path}/child; sleep 30' & wait"
    started = time.monotonic()
    log = open_log(str(tmp_path / "log"))
    outcome = run_process(
        ["sh", "-c", script],
        env=dict(os.environ),
        cwd=str(tmp_path),
        log_fd=log,
        timeout_seconds=0.5,
        grace_seconds=0.3,
    )
    os.close(log)
    assert outcome.timed_out
    assert time.monotonic() - started < 10
    child = int((tmp_path / "child").read_text())
    assert not Path(f"/proc/{child}").exists() or (
        Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"
    )


def test_an_attempt_whose_log_cannot_be_written_fails_with_that_reason(tmp_path: Path) -> None:
    log = tmp_path / "no-such-dir" / "worker.log"
    plan = AttemptPlan(
        root=str(tmp_path / "attempt"), inputs={}, outputs=(), log_path=str(log), header="--\n"
    )
    task = Task(
        kind="exec", env=dict(os.environ), cwd=str(tmp_path), log_path=str(log), argv=("true",)
    )
    reports: list[object] = []
    carry_out(
        plan,
        task,
        LocalStore(tmp_path / "store"),
        ended=reports.append,
        collected=reports.append,
    )
    assert reports == [
        None,
        Collected(error=f"cannot write the step's log {log}: No such file or directory"),
    ]
