"""Atomic artifact writing: a temp file beside the target, checked, then ``os.replace``.

A crash or a failed check never leaves a truncated or unchecked file at the target path, and an
existing file there is replaced only by a complete one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from lossport.errors import ExportError


def check_writable(target: Path) -> None:
    """Fail early, before any export work, if ``target`` cannot be written."""
    folder = target.parent
    if target.is_dir():
        raise ExportError(f"output path {target} is a directory; give a file name")
    if not folder.is_dir():
        raise ExportError(f"output folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise ExportError(f"output folder {folder} is not writable")


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path in ``target``'s folder; on success move it to ``target``.

    The caller writes and verifies the temp file inside the ``with`` block. If the block
    raises, the temp file is removed and ``target`` is untouched.
    """
    check_writable(target)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}")
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()
