"""The ``lossport`` command line: parse, call the library with plain values, print, set the
exit code. One module per command group: :mod:`.listing`, :mod:`.export`, :mod:`.validate`,
:mod:`.images` (``preprocess``, ``score``); :mod:`.common` holds what they share.

Exit codes: 0 all good, 1 validation mismatch, 2 bad usage or input (one ``error:`` line, no
traceback unless ``--debug``).
"""

from __future__ import annotations

import sys

import click

from lossport._version import __version__
from lossport.cli import export, images, listing, validate, web
from lossport.cli.common import EXIT_USAGE, report_failure


class LossportCommand(click.Group):
    """click, with every failure as one ``error:`` line and exit code 2 (1 stays for validation
    mismatches): a usage error (with where to find help) instead of click's three-line usage
    block, a :class:`~lossport.errors.LossportError` as its message, anything unexpected named
    with the hint to rerun with ``--debug`` (which prints the traceback too)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        arguments = list(sys.argv[1:] if args is None else args)
        try:
            return super().main(arguments, prog_name, complete_var, False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(EXIT_USAGE)
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as click does
                click.echo(exc.format_message(), err=True)
                sys.exit(exc.exit_code)
            where = exc.ctx.command_path if exc.ctx is not None else "lossport"
            click.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (Exception, KeyboardInterrupt) as exc:
            sys.exit(report_failure(exc, debug="--debug" in arguments[:1]))


@click.group(cls=LossportCommand, context_settings={"help_option_names": ["-h", "--help"]})
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
main.add_command(web.serve_web)
