"""The README's "Your own loss or model" section, run verbatim: its Python block and its
command line."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _blocks(text: str):
    """``(language, code)`` of every fenced block, in order."""
    blocks, language, lines = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:].strip(), []
            else:
                blocks.append((language, "\n".join(lines)))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def test_the_python_example_runs_as_written(tmp_path):
    (code,) = [c for lang, c in _blocks(_section("Your own loss or model")) if lang == "python"]
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "myloss" in done.stdout and (tmp_path / "my_loss.onnx").is_file()


def test_the_command_line_example_runs_as_written():
    (line,) = [c.strip() for lang, c in _blocks(_section("Your own loss or model")) if not lang]
    arguments = shlex.split(line)
    assert arguments[:3] == ["lossport", "validate", "module"]
    done = subprocess.run(
        [sys.executable, "-m", "lossport", *arguments[1:]], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "PerceptualLoss" in done.stdout and "FAIL" not in done.stdout
