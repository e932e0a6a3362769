"""The ``lossport`` command line: parse, call the library with plain values, print, set the
exit code. One module per command group: :mod:`.listing`, :mod:`.export`, :mod:`.validate`,
:mod:`.images` (``preprocess``, ``score``); :mod:`.common` holds what they share.

Exit codes: 0 all good, 1 validation mismatch, 2 bad usage or input (one ``error:`` line, no
traceback unless ``--debug``).
"""

from __future__ import annotations

import click

from lossport._version import __version__
from lossport.cli import export, images, listing, validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lossport")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
def main(debug: bool) -> None:
    """Export losses, the TIGAS scorer and your own modules to TorchScript/ONNX, and prove every
    runtime agrees on outputs and gradients."""


main.add_command(listing.list_command)
main.add_command(export.export_group)
main.add_command(validate.validate_group)
main.add_command(images.preprocess)
main.add_command(images.score_command)
