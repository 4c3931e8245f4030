"""The digests mlc prints (`sha256:` and 12 hex digits) are accepted wherever a digest is: a
unique prefix stands for its object, an ambiguous or unknown one is a clear error."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from mlc.cli.main import main
from mlc.store import digest_bytes, open_store

from .conftest import write_tree


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLC_STORE", raising=False)
    return tmp_path


def mlc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def added(project: Path) -> str:
    write_tree(project / "data", {"a.csv": "1\n", "b/c.csv": "2\n"})
    digest: str = open_store(".mlc", create=True).snapshot("data").digest
    return digest


@pytest.mark.parametrize("length", [4, 12, 30])
def test_a_unique_prefix_names_its_object(
    capsys: pytest.CaptureFixture[str], project: Path, length: int
) -> None:
    digest = added(project)
    short = digest[: len("sha256:") + length]
    for n, typed in enumerate((short, short.removeprefix("sha256:"))):
        code, out, err = mlc(capsys, "data", "ls", typed)
        assert code == 0, err
        assert out.splitlines()[0].endswith("a.csv")
        code, out, err = mlc(capsys, "data", "get", typed, f"copy{n}")
        assert code == 0, err
        assert out.startswith(f"copy{n}: {digest} (2 files, ")
        assert (project / f"copy{n}" / "b" / "c.csv").read_text() == "2\n"
        assert mlc(capsys, "data", "verify", typed)[0] == 0


def test_a_prefix_no_object_has_is_an_error(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    digest = added(project)
    missing = "sha256:" + ("0000" if not digest[7:].startswith("0000") else "ffff")
    code, _, err = mlc(capsys, "data", "ls", missing)
    assert code == 1
    assert f"has a digest starting `{missing}`" in err


def test_an_ambiguous_prefix_lists_what_it_could_be(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    # The first two of 0, 1, 2, … whose digests share 4 hex digits (always the same two).
    seen: dict[str, bytes] = {}
    for i in itertools.count():
        data = str(i).encode()
        prefix = digest_bytes(data)[:11]
        if prefix in seen:
            break
        seen[prefix] = data
    store = open_store(".mlc", create=True)
    store.put_bytes(seen[prefix])
    store.put_bytes(data)
    shared = prefix
    code, _, err = mlc(capsys, "data", "verify", shared)
    assert code == 1
    assert f"`{shared}` is ambiguous: " in err and "give more digits" in err


def test_a_prefix_too_short_says_how_long_it_must_be(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    added(project)
    code, _, err = mlc(capsys, "data", "ls", "sha256:62")
    assert code == 1
    assert "is too short to name one object: give at least 4 hex digits" in err


def test_data_get_explains_an_existing_destination(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    digest = added(project)
    (project / "there").mkdir()
    code, _, err = mlc(capsys, "data", "get", digest, "there")
    assert code == 1
    assert err == (
        "error: `there` already exists (a folder); `mlc data get` writes the data to a new path "
        "and never overwrites anything: give a path that does not exist yet\n"
    )


def test_lineage_of_a_digest_no_run_made_is_an_error(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    digest = added(project)
    code, out, err = mlc(capsys, "lineage", digest)
    assert code == 1 and out == ""
    assert f"error: no run made or read {digest}: it has no lineage" in err
