"""The repository's own gates: ruff (lint and format) and the import-linter contracts in
pyproject.toml (layers point down; no import cycles between sibling modules or packages)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["lossport", "tests", "benchmarks"]


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; pip install -e '.[test]'")
    return path


def _run(command) -> None:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-4000:]}{done.stderr[-2000:]}"


def test_ruff_lint():
    _run([_tool("ruff"), "check", *SOURCES])


def test_ruff_format():
    _run([_tool("ruff"), "format", "--check", *SOURCES])


def test_import_contracts():
    _run([_tool("lint-imports")])


def test_nothing_reads_outside_the_repository():
    offenders = [
        str(path.relative_to(ROOT))
        for folder in SOURCES + ["examples"]
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".js", ".cpp", ".hpp", ".txt")
        and "node_modules" not in path.parts
        and "build" not in path.parts
        and "../shared" in path.read_text(errors="ignore")
        and path.name != "test_code_style.py"
    ]
    assert offenders == []
