"""Digests are `sha256:<64 hex>`; manifests are canonical and never name an unsafe path."""

from __future__ import annotations

import json

import pytest
from mlc.store import InvalidDigestError, ManifestError, UnsafePathError, digest_bytes
from mlc.store.digest import find_digests, is_digest, parse_digest
from mlc.store.manifest import Manifest, ManifestEntry, check_relative_path, decode_manifest

GOOD = "sha256:" + "ab" * 32


def test_a_well_formed_digest_parses_to_itself() -> None:
    assert parse_digest(GOOD) == GOOD
    assert is_digest(GOOD)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ab" * 32, "expected `sha256:`"),
        ("md5:" + "ab" * 16, "only `sha256` is supported"),
        ("sha256:abc", "this one has 3"),
        ("sha256:" + "AB" * 32, "lowercase hex"),
        ("sha256:" + "zz" * 32, "lowercase hex"),
    ],
)
def test_malformed_digests_are_rejected_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidDigestError, match=message):
        parse_digest(text)
    assert not is_digest(text)


def test_digest_bytes_is_sha256_of_the_content() -> None:
    assert digest_bytes(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_digests_are_found_anywhere_in_a_lock_file() -> None:
    text = f'raw = {{ version = "{GOOD}" }}\nother: sha256:{"cd" * 32}\nbad: sha256:{"ef" * 33}'
    assert find_digests(text) == [GOOD, "sha256:" + "cd" * 32]


def entry(path: str, mode: int = 0o644) -> ManifestEntry:
    return ManifestEntry(path, parse_digest(GOOD), 3, mode)


def test_manifest_bytes_are_canonical_and_sorted_by_path() -> None:
    manifest = Manifest.build([entry("b.txt"), entry("a/x.txt", 0o755)])
    assert (
        manifest.encode()
        == (
            '{"entries":['
            f'{{"digest":"{GOOD}","mode":493,"path":"a/x.txt","size":3}},'
            f'{{"digest":"{GOOD}","mode":420,"path":"b.txt","size":3}}'
            '],"format":"mlc.manifest","version":1}'
        ).encode()
    )
    assert decode_manifest(manifest.encode()) == manifest


@pytest.mark.parametrize(
    "path",
    [
        "plain/ascii.csv",
        'quote"d',
        "tab\there",
        "caf\u00e9/\u6570\u636e",
        "nb\u00a0sp",
        "ls\u2028x",
    ],
)
def test_manifest_paths_are_encoded_as_json_would(path: str) -> None:
    document = {
        "entries": [{"digest": GOOD, "mode": 420, "path": path, "size": 3}],
        "format": "mlc.manifest",
        "version": 1,
    }
    expected = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert Manifest.build([entry(path)]).encode() == expected.encode("utf-8")


def test_non_canonical_manifest_bytes_are_rejected() -> None:
    manifest = Manifest.build([entry("a")])
    spaced = manifest.encode().replace(b",", b", ")
    with pytest.raises(ManifestError, match="canonical"):
        decode_manifest(spaced)


@pytest.mark.parametrize(
    "path",
    ["", "/abs", "C:/windows", "..", "../x", "a/../b", "a/./b", "a//b", "a/", "a\\b", "a\0b"],
)
def test_unsafe_relative_paths_are_rejected(path: str) -> None:
    with pytest.raises(UnsafePathError):
        check_relative_path(path)
    with pytest.raises(UnsafePathError):
        Manifest.build([entry(path)])


def test_a_path_cannot_be_both_a_file_and_a_directory() -> None:
    with pytest.raises(ManifestError, match="both a file and the directory"):
        Manifest.build([entry("a"), entry("a/b")])


def test_duplicate_paths_are_rejected() -> None:
    with pytest.raises(ManifestError, match="twice"):
        Manifest.build([entry("a"), entry("a")])


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", b'{"format":"other"}', b'{"format":"mlc.manifest","version":2}'],
)
def test_garbage_is_not_a_manifest(data: bytes) -> None:
    with pytest.raises(ManifestError):
        decode_manifest(data)


def test_only_the_executable_bit_of_a_mode_is_kept() -> None:
    with pytest.raises(ManifestError, match="mode"):
        Manifest.build([entry("a", 0o600)])
