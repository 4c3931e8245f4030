"""`mlc.lock` and secrets from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlc.ir.model import SecretRef
from mlc.runtime.errors import PreflightError
from mlc.runtime.lockfile import LockedDataset, read_lock, render_lock, write_lock
from mlc.runtime.secrets import check_secrets, secret_env, secret_variable

from tests.runtime.builders import sh, step

DIGEST = "sha256:" + "c" * 64


def test_the_lock_file_is_sorted_toml_that_reads_back(tmp_path: Path) -> None:
    entries = [
        LockedDataset("zeta", "data/z", "latest", DIGEST),
        LockedDataset("alpha set", "s3://b/a", "tag:2026-10", DIGEST),
    ]
    text = render_lock(entries, "pipeline.mlspec")
    assert text.index('[datasets."alpha set"]') < text.index("[datasets.zeta]")
    write_lock(tmp_path / "mlc.lock", text)
    assert read_lock(tmp_path / "mlc.lock") == {e.name: e for e in entries}
    assert read_lock(tmp_path / "absent.lock") == {}


def test_a_broken_lock_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "mlc.lock").write_text("version = 1\n[datasets.x]\nuri = 'a'\n")
    with pytest.raises(PreflightError, match="entry `x` needs `uri`, `version` and `digest`"):
        read_lock(tmp_path / "mlc.lock")


def test_secret_variables_are_upper_case_with_underscores() -> None:
    assert secret_variable(SecretRef(name="hugging-face", key="token.v2")) == (
        "MLC_SECRET_HUGGING_FACE_TOKEN_V2"
    )


def test_missing_secrets_are_all_named_at_once() -> None:
    steps = [
        step("a", sh("true"), secrets={"TOKEN": "hub/token"}),
        step("b", sh("true"), secrets={"KEY": "wandb/api-key", "TOKEN": "hub/token"}),
    ]
    with pytest.raises(PreflightError) as error:
        check_secrets(steps, {"MLC_SECRET_HUB_TOKEN": "x"})
    assert str(error.value) == (
        "secrets are missing from the environment: `wandb/api-key` (step `b`): "
        "set MLC_SECRET_WANDB_API_KEY"
    )
    assert secret_env(steps[0], {"MLC_SECRET_HUB_TOKEN": "x"}) == {"TOKEN": "x"}
