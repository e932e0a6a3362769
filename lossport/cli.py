"""The ``lossport`` command line: parse, call the library, print, set the exit code.

Exit codes: 0 all good, 1 validation mismatch, 2 bad usage or input. A :class:`LossportError`
prints its one-line message (no traceback unless ``--debug``).
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Callable

import click

from lossport import __version__, registry
from lossport.errors import LossportError

EXIT_MISMATCH = 1
EXIT_USAGE = 2


def user_errors(command: Callable) -> Callable:
    """Turn a :class:`LossportError` into ``error: <message>`` on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LossportError as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lossport")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
def main(debug: bool) -> None:
    """Export losses and the TIGAS scorer to TorchScript/ONNX and prove every runtime agrees."""


@main.command("list")
@click.argument("kind", type=click.Choice(["losses", "models", "all"]), default="all")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@user_errors
def list_command(kind: str, as_json: bool) -> None:
    """What can be exported, with inputs, shapes and conventions."""
    wanted = {"losses": "loss", "models": "model", "all": None}[kind]
    specs = registry.all_specs(wanted)
    if as_json:
        click.echo(json.dumps([s.describe() for s in specs], indent=2))
        return
    for spec in specs:
        click.echo(click.style(spec.name, bold=True) + f"  ({spec.kind}, seed {spec.seed})")
        click.echo(f"    {spec.summary}")
        for t in spec.inputs:
            grad = ", differentiable" if t.differentiable else ""
            click.echo(f"    in  {t.name:<14} {t.describe_shape():<28} {t.domain.describe()}{grad}")
        click.echo(f"    out {', '.join(spec.outputs)}")
