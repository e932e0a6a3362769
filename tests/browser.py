"""Debian's Chromium as the browser tests and ``benchmarks/bench_web.py`` drive it: headless,
no sandbox (CI runs as root), nothing fetched in the background."""

from __future__ import annotations

import shutil
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright: Any) -> Any:
    """A Playwright browser on the ``chromium`` found on ``PATH``."""
    return playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
