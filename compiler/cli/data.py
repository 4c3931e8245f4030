"""`mlc data`: snapshot files and directories into the store, verify it, and get data back.

```
mlc data add PATH [--store URI] [--format json]   put a file or directory, print its version
mlc data verify [DIGEST ...]                      re-hash objects (all by default)
mlc data get DIGEST DEST [--writable]             recreate a version at DEST (`-`: stdout)
mlc data ls DIGEST                                list the files of a directory version
```

Also home of the `--store` option shared by `mlc gc`, `mlc runs`, `mlc lineage` and `mlc logs`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from mlc.cli.digests import resolve_digest
from mlc.store import Digest, Store, StoreError, open_store
from mlc.store.display import format_bytes, plural

ENV_STORE = "MLC_STORE"


STORE_HELP = (
    "the store: a folder or a URI such as s3://bucket/prefix (default: the target's store, "
    "$MLC_STORE, the project's `store` setting, else the nearest .mlc folder up to the "
    "project's root)"
)


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """Adds `--store URI` (the default is found when the store is opened: `default_store_uri`)."""
    parser.add_argument("--store", metavar="URI", help=STORE_HELP)


def default_store_uri() -> str:
    """The store when `--store` and the target name none: `$MLC_STORE`, else the project's
    (see `mlc.cli.config.default_store`)."""
    from pathlib import Path

    from mlc.cli.config import default_store

    return os.environ.get(ENV_STORE) or default_store(Path.cwd())


def add_format_option(parser: argparse.ArgumentParser) -> None:
    """Adds `--format {human,json}`."""
    parser.add_argument(
        "--format",
        choices=("human", "json"),
        default="human",
        help="human: text to read (default); json: one document for programs",
    )


def open_store_for(args: argparse.Namespace, *, create: bool = False) -> Store:
    """Opens the store named by `--store`; for S3 the endpoint may come from
    `AWS_ENDPOINT_URL` (credentials always come from the environment)."""
    if not args.store:
        args.store = default_store_uri()
    options: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and str(args.store).startswith(("s3://", "s3a://")):
        options["client_kwargs"] = {"endpoint_url": endpoint}
    return open_store(args.store, storage_options=options, create=create)


def fail(message: str) -> int:
    """Prints `error: message` to stderr and returns exit code 1."""
    print(f"error: {message}", file=sys.stderr)
    return 1


def print_json(document: Any) -> None:
    """Prints a JSON document with sorted keys."""
    print(json.dumps(document, indent=2, sort_keys=True))


def configure(parser: argparse.ArgumentParser) -> None:
    """Sets up `mlc data` and its subcommands."""
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="snapshot a file or directory into the store")
    add.add_argument("path", metavar="PATH", help="the file or directory to snapshot")
    verify = sub.add_parser("verify", help="re-hash objects and report corrupt ones")
    verify.add_argument(
        "digests",
        nargs="*",
        metavar="DIGEST",
        help="the objects to re-hash, short digests allowed (default: every object)",
    )
    get = sub.add_parser("get", help="recreate a stored version at a new path")
    get.add_argument("digest", metavar="DIGEST", help="the version to recreate (short is fine)")
    get.add_argument("dest", metavar="DEST", help="where to put it; `-`: a file to stdout")
    get.add_argument("--writable", action="store_true", help="copy, with writable files")
    ls = sub.add_parser("ls", help="list the files of a directory version")
    ls.add_argument("digest", metavar="DIGEST", help="a directory version (short is fine)")
    for command in (add, verify, get, ls):
        add_store_option(command)
        add_format_option(command)


def run(args: argparse.Namespace) -> int:
    """Runs the chosen `mlc data` action."""
    try:
        store = open_store_for(args, create=args.data_command == "add")
        try:
            action = {"add": _add, "verify": _verify, "get": _get, "ls": _ls}[args.data_command]
            return action(store, args)
        finally:
            store.close()
    except StoreError as exc:
        return fail(str(exc))


def _add(store: Store, args: argparse.Namespace) -> int:
    if not os.path.lexists(args.path):
        return fail(f"{args.path} does not exist")
    version = store.snapshot(args.path)
    if args.format == "json":
        print_json({"path": args.path, "store": store.uri, **version.to_json()})
        return 0
    what = "directory" if version.kind == "dir" else "file"
    files = f"{plural(version.file_count, 'file')}, " if version.kind == "dir" else ""
    print(
        f"{args.path}: {version.digest}\n"
        f"  {what}, {files}{format_bytes(version.size)}; "
        f"{version.hashed_files} hashed, {version.file_count - version.hashed_files} unchanged"
    )
    return 0


def _verify(store: Store, args: argparse.Namespace) -> int:
    if args.digests:
        digests = [resolve_digest(store, d) for d in args.digests]
        bad = {d: "corrupt or missing" for d in digests if not store.verify(d)}
        checked = len(digests)
    else:
        report = store.verify_all()
        bad, checked = dict(report.bad), report.checked
    if args.format == "json":
        print_json({"checked": checked, "bad": bad, "ok": not bad})
    else:
        for digest, reason in sorted(bad.items()):
            print(f"bad  {digest}: {reason}")
        verdict = "all good" if not bad else f"{len(bad)} bad"
        print(f"checked {plural(checked, 'object')}: {verdict}")
    return 1 if bad else 0


def _get(store: Store, args: argparse.Namespace) -> int:
    digest = resolve_digest(store, args.digest)
    if args.dest == "-":
        return _get_to_stdout(store, digest)
    if os.path.lexists(args.dest):
        what = "a folder" if os.path.isdir(args.dest) else "a file"
        return fail(
            f"`{args.dest}` already exists ({what}); `mlc data get` writes the data to a new "
            "path and never overwrites anything: give a path that does not exist yet"
        )
    version = store.materialize(digest, args.dest, readonly=not args.writable)
    if args.format == "json":
        print_json({"dest": args.dest, **version.to_json()})
    else:
        print(
            f"{args.dest}: {version.digest} ({plural(version.file_count, 'file')}, "
            f"{format_bytes(version.size)})"
        )
    return 0


def _get_to_stdout(store: Store, digest: Digest) -> int:
    """Writes a file version's bytes to standard output, and nothing else."""
    if store.kind(digest) == "dir":
        return fail(
            f"{digest} is a directory; give a folder to recreate it in "
            f"(`mlc data get {digest} DEST`), or list it with `mlc data ls`"
        )
    out = sys.stdout.buffer
    sys.stdout.flush()
    with store.open_bytes(digest) as handle:
        while chunk := handle.read(1 << 20):
            out.write(chunk)
    out.flush()
    return 0


def _ls(store: Store, args: argparse.Namespace) -> int:
    manifest = store.read_manifest(resolve_digest(store, args.digest))
    if args.format == "json":
        print_json(
            [
                {"path": e.path, "digest": e.digest, "size": e.size, "mode": oct(e.mode)}
                for e in manifest
            ]
        )
        return 0
    for entry in manifest:
        print(f"{oct(entry.mode)[2:]}  {entry.size:>12}  {entry.digest}  {entry.path}")
    return 0
