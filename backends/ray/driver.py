"""The driver of a run submitted as a Ray Job: the coordinator, on the cluster.

    python -m mlc.backends.ray.driver --store-address JSON (--ir DIGEST | --ir-file PATH)
                                      [--run-id ID] [--rerun STEP ...] [--keep-going]

The job's entry point (see `mlc.backends.ray.jobs`, and `mlc.backends.ray.artifacts` for a job
submitted by hand). It reads the IR document from the store (or from a file shipped with the
working directory),
runs it from the job's working directory (the project, shipped as the job's `working_dir`) on
the cluster the job runs in (`address = "auto"`), and writes its progress and its report as
event lines (`mlc.backends.ray.events`) that the client replays. Exit codes as `mlc apply`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from mlc.backends.ray.backend import RayBackend
from mlc.backends.ray.events import EventWriter
from mlc.coordinator.backend import KILL_GRACE_ENV
from mlc.ir.model import IRDocument
from mlc.ir.serialize import load
from mlc.runtime.errors import RuntimeFailure
from mlc.store.digest import parse_digest
from mlc.store.errors import StoreError
from mlc.store.uri import open_store_at

EXIT_OK, EXIT_FAILED, EXIT_CANCELLED = 0, 1, 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _on_the_cluster(document: IRDocument) -> IRDocument:
    """The document as the job's driver runs it: from the job's working directory, on the
    cluster the job runs in, whose runtime environment the job already has."""
    target = document.target
    if target is not None:
        settings = {k: v for k, v in target.settings.items() if k != "runtime_env"}
        target = target.model_copy(update={"address": "auto", "settings": settings})
    return document.model_copy(update={"base_dir": os.getcwd(), "target": target})


def main(argv: list[str]) -> int:
    """Runs the document and returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m mlc.backends.ray.driver")
    parser.add_argument("--store-address", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ir", help="the IR document's digest in the store")
    source.add_argument("--ir-file", help="the IR document's path in the working directory")
    parser.add_argument("--run-id", help="the run's id (default: a new one)")
    parser.add_argument("--rerun", action="append", default=[])
    parser.add_argument("--keep-going", action="store_true")
    parser.add_argument("--kill-grace", type=float, help="the client's kill grace (seconds)")
    args = parser.parse_args(argv)
    events = EventWriter(sys.stdout)
    # Stopping the job (Ctrl-C on the client) sends SIGTERM: the run is cancelled as by Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        store = open_store_at(json.loads(args.store_address))
        try:
            if args.ir_file:
                document = load(Path(args.ir_file).read_text(encoding="utf-8"))
            else:
                with store.open_bytes(parse_digest(args.ir)) as data:
                    document = load(data.read().decode("utf-8"))
            document = _on_the_cluster(document)
            environ = dict(os.environ)
            if args.kill_grace is not None:
                environ[KILL_GRACE_ENV] = str(args.kill_grace)
            report = RayBackend(store, environ=environ).apply(
                document,
                rerun=args.rerun,
                keep_going=args.keep_going,
                observer=events,
                run_id=args.run_id,
            )
        finally:
            store.close()
    except (RuntimeFailure, StoreError, OSError, ValueError) as exc:
        events.error(str(exc))
        return EXIT_FAILED
    events.report(report)
    if report.status == "succeeded":
        return EXIT_OK
    return EXIT_CANCELLED if report.status == "cancelled" else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
