"""`mlc lint` stays light: it never imports a backend's heavy dependencies, the store's or
pydantic. Not a timing test: it checks which modules a real `mlc lint` process imports.

The lint runs in a fresh interpreter with a meta-path finder in front that records, for every
forbidden package, the first `mlc` frame that imported it, so a failure says where from.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart" / "pipeline.mlspec"

# Packages that only running a pipeline, a backend or the store may need.
FORBIDDEN = (
    "ray",
    "kubernetes",
    "kfp",
    "numpy",
    "networkx",
    "pydantic",
    "fsspec",
    "s3fs",
    "sklearn",
)

# Runs `mlc lint ARGS…` as the console script does, then writes a JSON report to REPORT.
_PROBE = """
import json, sys, traceback

FORBIDDEN = set(sys.argv[2].split(","))
ROOT = sys.argv[3] + "/"
MLC_SOURCES = ("compiler/", "backends/")
importers = {}

class Recorder:
    def find_spec(self, name, path=None, target=None):
        root = name.partition(".")[0]
        if root in FORBIDDEN and root not in importers:
            frames = [f"{f.filename.removeprefix(ROOT)}:{f.lineno}"
                      for f in traceback.extract_stack()[:-1]
                      if "/importlib/" not in f.filename and "<frozen" not in f.filename]
            importers[root] = [name, *(f for f in frames if f.startswith(MLC_SOURCES))]
        return None

sys.meta_path.insert(0, Recorder())
report_path = sys.argv[1]
sys.argv = ["mlc", *sys.argv[4:]]
code = None
try:
    from mlc.cli.main import main
    code = main(sys.argv[1:])
finally:
    with open(report_path, "w", encoding="utf-8") as report:
        json.dump({"code": code, "modules": sorted(sys.modules), "importers": importers}, report)
"""


def _lint_report(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    report = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(report), ",".join(FORBIDDEN), str(ROOT), "lint", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.exists(), f"the probe wrote no report:\n{done.stderr}"
    return json.loads(report.read_text(encoding="utf-8")), done.stderr


def _assert_light(report: dict[str, Any], stderr: str) -> None:
    # The lint really ran to the end: it checked the file and printed its summary.
    assert report["code"] in (0, 1), stderr
    assert "1 file checked" in stderr
    modules = set(report["modules"])
    assert {"mlc.compile", "mlc.checks.resolve", "mlc.front.parser"} <= modules

    roots = sorted({name.partition(".")[0] for name in modules} & set(FORBIDDEN))
    assert not roots, (
        f"`mlc lint` imported {', '.join(roots)}; the import chains (module, then the mlc "
        f"frames that led to it, outermost first):\n{json.dumps(report['importers'], indent=1)}"
    )


def test_lint_of_a_spec_without_targets_imports_no_heavy_package(tmp_path: Path) -> None:
    """The front end alone: parse, resolve and check, no backend to describe."""
    text = QUICKSTART.read_text(encoding="utf-8")
    spec = tmp_path / "pipeline.mlspec"
    spec.write_text(text[: text.index("target laptop")], encoding="utf-8")

    report, stderr = _lint_report(tmp_path, str(spec))

    assert report["code"] == 0, stderr
    assert not any(name.startswith("mlc.backends.") for name in report["modules"])
    _assert_light(report, stderr)


def test_lint_of_the_quickstart_imports_no_heavy_package(tmp_path: Path) -> None:
    """The quickstart declares `target laptop { backend = local }`: lint describes it."""
    report, stderr = _lint_report(tmp_path, str(QUICKSTART))

    assert "mlc.backends.local" in report["modules"]
    _assert_light(report, stderr)
