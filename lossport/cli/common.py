"""What every command shares: exit codes, turning errors into one line, and parsing of the
option strings (``--set k=v``, ``--dynamic``, ``--backends``, sizes)."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import click

from lossport.errors import ConfigError, LossportError, brief_reason
from lossport.io.atomic import check_writable

EXIT_MISMATCH = 1
EXIT_USAGE = 2
SPATIAL = ("height", "width")


def report_failure(exc: BaseException, debug: bool) -> int:
    """Print ``exc`` as one ``error:`` line (a traceback first with ``debug``); the exit code.

    A :class:`LossportError` is a bad input and says what to do. Anything else is unexpected:
    it is named in one line too, with the hint to rerun with ``--debug``.
    """
    if isinstance(exc, KeyboardInterrupt):
        click.echo("error: interrupted", err=True)
        return 130
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    if isinstance(exc, LossportError):
        click.echo(f"error: {exc}", err=True)
    else:
        click.echo(
            f"error: unexpected failure ({brief_reason(exc)}); rerun with --debug for the traceback", err=True
        )
    return EXIT_USAGE


def parse_settings(pairs: Sequence[str]) -> Dict[str, str]:
    """``("gamma=2", ...)`` -> ``{"gamma": "2"}``; values stay strings (the spec parses them)."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        settings[key.strip()] = value.strip()
    return settings


def parse_dynamic(text: Optional[str]) -> Optional[List[str]]:
    """``--dynamic``: ``None``/``all`` (every dynamic dim), ``none``, or a comma list of dim
    names where ``spatial`` means height,width."""
    if text is None or text.strip() == "all":
        return None
    if text.strip() == "none":
        return []
    names: List[str] = []
    for name in (n.strip() for n in text.split(",")):
        if not name:
            raise ConfigError(
                f"--dynamic {text!r}: empty axis name; give all, none or names such as batch,spatial"
            )
        names += list(SPATIAL) if name == "spatial" else [name]
    return names


def parse_backends(text: Optional[str], known: Sequence[str]) -> List[str]:
    """``--backends`` as a list (default: all of ``known``)."""
    if text is None:
        return list(known)
    names = [n.strip() for n in text.split(",")]
    unknown = [n for n in names if n not in known]
    if unknown:
        shown = ", ".join(n or "(empty)" for n in unknown)
        raise ConfigError(f"--backends: unknown backend {shown}; choose from {', '.join(known)}")
    return names


def parse_sizes(text: str, option: str, expected: str) -> Tuple[int, ...]:
    """``"2,3,64,64"`` -> ``(2, 3, 64, 64)``; anything but positive integers is a ConfigError."""
    try:
        dims = tuple(int(part) for part in text.split(","))
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise ConfigError(f"{option} expects {expected}, got {text!r}")
    return dims


def check_report_paths(*paths: Optional[Path]) -> None:
    """Fail before any work when a report file (``--json``, ``--junit``) cannot be written."""
    for path in paths:
        if path is not None:
            check_writable(Path(path))


def add_options(*options: Callable) -> Callable:
    """Decorator applying click ``options`` in the order given."""

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


trust_artifact_option = click.option(
    "--trust-artifact",
    is_flag=True,
    help="Allow an artifact whose loading runs native code from the file (an AOTInductor "
    "package; trusted files only).",
)
