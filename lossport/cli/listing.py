"""``lossport list``: what can be exported, with inputs, shapes and conventions."""

from __future__ import annotations

import json

import click

from lossport import catalog
from lossport.cli.modules import specs_option


@click.command("list")
@click.argument("kind", type=click.Choice(["losses", "models", "all"]), default="all")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@specs_option
def list_command(kind: str, as_json: bool) -> None:
    """What can be exported, with inputs, shapes and conventions."""
    wanted = {"losses": "loss", "models": "model", "all": None}[kind]
    specs = catalog.all_specs(wanted)
    if as_json:
        click.echo(json.dumps([s.describe() for s in specs], indent=2))
        return
    for spec in specs:
        click.echo(click.style(spec.name, bold=True) + f"  ({spec.kind}; source: {spec.source})")
        click.echo(f"    {spec.summary}")
        for t in spec.inputs:
            grad = ", differentiable" if t.differentiable else ""
            click.echo(f"    in  {t.name:<14} {t.describe_shape():<28} {t.domain.describe()}{grad}")
        click.echo(f"    out {', '.join(spec.outputs)}")
