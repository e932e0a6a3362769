"""Atomic file writing: a temp file beside the target, checked, then ``os.replace``.

A crash, a failed check, Ctrl-C or SIGTERM never leaves a truncated or unchecked file at the
target path nor a temp file beside it, and an existing file there is replaced only by a
complete one. The file gets the mode a plain ``open(path, "w")`` would give (``0o666`` less the
umask), not the temp file's private ``0o600``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
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
    with terminate_as_exit():
        handle, name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}"
        )
        os.close(handle)
        temp = Path(name)
        try:
            yield temp
            os.chmod(temp, 0o666 & ~_umask())
            os.replace(temp, target)
        finally:
            if temp.exists():
                temp.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM raises ``SystemExit(143)`` inside the block (as Ctrl-C raises
    ``KeyboardInterrupt``), so ``finally`` clauses remove temp files before the process ends.
    Only in the main thread, and only where SIGTERM still has its default action."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def exit_on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
