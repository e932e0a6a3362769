"""Running the lossport CLI in-process from a given folder (for the CLI tests)."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner, Result

from lossport.cli import main


def run_cli(*args, cwd: Path) -> Result:
    """``lossport ARGS`` with ``cwd`` as the working folder; arguments may be paths."""
    previous = Path.cwd()
    os.chdir(cwd)  # contextlib.chdir is Python 3.11+
    try:
        return CliRunner().invoke(main, [str(a) for a in args])
    finally:
        os.chdir(previous)
