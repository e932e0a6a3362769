"""What the example tests share: requiring tools (skip here, fail under CI), running a command,
and building things once per test session across pytest-xdist workers."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator, List

import pytest
from filelock import FileLock


def require(*tools: str, package: str = "") -> None:
    """Skip unless every command in ``tools`` (and the Python ``package``) is here; under CI
    (the ``CI`` environment variable) fail instead: the CI machine must have them."""
    missing = [t for t in tools if shutil.which(t) is None]
    if package and importlib.util.find_spec(package) is None:
        missing.append(f"the {package} Python package")
    if missing:
        reason = f"{', '.join(missing)} not found"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; the CI machine must have it")
        pytest.skip(reason)


def run(command: List, **kwargs) -> subprocess.CompletedProcess:
    """Run ``command``; on failure, fail the test with the end of its output."""
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {done.returncode}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def session_folder(tmp_path_factory, name: str) -> Path:
    """A folder of this test session, shared by its pytest-xdist workers."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder = base / name
    folder.mkdir(exist_ok=True)
    return folder


@contextlib.contextmanager
def once(path: Path) -> Iterator[bool]:
    """Under a lock shared by the xdist workers: whether ``path`` is still to be made."""
    with FileLock(f"{path}.lock"):
        yield not path.exists()
