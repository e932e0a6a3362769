"""``lossport validate losses|all|tigas|artifact|module``: every backend against the eager
reference, a table on stdout, ``--json`` / ``--junit`` / ``--html`` reports, ``--nodes`` tables
and ``--repro`` bundles of localized failures, ``--images`` agreement (artifact, tigas), exit 1
on any mismatch or unmet criterion."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Sequence

import click
from tqdm import tqdm

from lossport import catalog
from lossport.cli.common import (
    EXIT_MISMATCH,
    add_options,
    check_report_paths,
    parse_backends,
    parse_settings,
    trust_artifact_option,
)
from lossport.cli.export import module_options, tigas_weight_options
from lossport.cli.modules import module_spec, specs_option
from lossport.errors import ConfigError
from lossport.models.tigas.specs import resolve_weights
from lossport.validation import html_report, report, repro
from lossport.validation.images import ImageCriteria
from lossport.validation.registry import ALL_BACKENDS, BACKENDS
from lossport.validation.results import SpecReport, failures, summary
from lossport.validation.suite import (
    DEFAULT_SEED,
    ValidationOptions,
    available_cpus,
    run_jobs,
    validate_artifact,
    validate_spec,
    variant_jobs,
)

MAX_DEFAULT_JOBS = 8

validate_options = add_options(
    click.option(
        "--backends",
        help=f"Comma list of {', '.join(ALL_BACKENDS)} (default: {', '.join(BACKENDS)}; onnx-ref, "
        "the ONNX reference evaluator that arbitrates ONNX failures, is slow and opt-in).",
    ),
    click.option(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        show_default=True,
        help="Seed of the random cases; printed so a failure can be replayed.",
    ),
    click.option("--atol", type=float, help="Override the absolute tolerance (finite, >= 0)."),
    click.option("--rtol", type=float, help="Override the relative tolerance (finite, >= 0)."),
    click.option(
        "--require-cuda", is_flag=True, help="Fail (instead of skip) when a CUDA backend cannot run."
    ),
    click.option(
        "--localize", is_flag=True, help="On an ONNX mismatch, name the first op whose output diverges."
    ),
    click.option(
        "--json",
        "json_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write every number to this JSON file.",
    ),
    click.option(
        "--junit",
        "junit_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write a JUnit XML report (one test case per spec x backend x check).",
    ),
    click.option(
        "--nodes",
        "nodes_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write every paired node of each localized ONNX failure to this .csv or .json file "
        "(implies --localize).",
    ),
    click.option(
        "--repro",
        "repro_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Write the minimal failing subgraph of each failing ONNX Runtime check to this new "
        "(or empty) folder, runnable with ONNX Runtime alone (implies --localize).",
    ),
    click.option(
        "--html",
        "html_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write a self-contained HTML report (implies --localize).",
    ),
)

image_options = add_options(
    click.option(
        "--images",
        type=click.Path(path_type=Path),
        help="Also score this image folder with the eager reference and the artifact(s): max "
        "|delta score|, Spearman and Kendall rank correlations, decisions flipped.",
    ),
    click.option(
        "--threshold",
        type=float,
        default=0.5,
        show_default=True,
        help="With --images: the decision threshold (score >= threshold is real).",
    ),
    click.option("--min-spearman", type=float, help="With --images: fail below this Spearman rho."),
    click.option("--max-flips", type=int, help="With --images: fail when more decisions than this flip."),
)

jobs_option = click.option(
    "--jobs",
    "workers",
    type=click.IntRange(min=1),
    default=min(available_cpus(), MAX_DEFAULT_JOBS),
    show_default=f"one per CPU, at most {MAX_DEFAULT_JOBS}",
    help="Specs validated at once, in parallel processes (each holds "
    "its own copy of PyTorch: memory grows with it).",
)


def options_from(
    backends,
    seed,
    atol,
    rtol,
    require_cuda,
    localize,
    json_path,
    junit_path,
    nodes_path,
    repro_dir,
    html_path,
    images=None,
    threshold=0.5,
    min_spearman=None,
    max_flips=None,
) -> ValidationOptions:
    """Checked options; report paths are checked too, before any work starts."""
    check_report_paths(json_path, junit_path, html_path)
    report.check_nodes_path(nodes_path)
    if repro_dir is not None:
        repro.check_repro_folder(repro_dir)
    if images is None and (min_spearman is not None or max_flips is not None):
        raise ConfigError("--min-spearman and --max-flips judge --images; give --images DIR")
    return ValidationOptions(
        backends=parse_backends(backends, ALL_BACKENDS) if backends is not None else list(BACKENDS),
        seed=seed,
        atol=atol,
        rtol=rtol,
        require_cuda=require_cuda,
        localize=localize or html_path is not None,
        nodes=nodes_path is not None or html_path is not None,
        repro=repro_dir is not None or html_path is not None,
        images=ImageCriteria(images, threshold, min_spearman, max_flips) if images is not None else None,
    )


def run_and_report(
    jobs: Sequence[Callable[[], SpecReport]], options: ValidationOptions, paths, workers: int
) -> None:
    """Run ``jobs`` (callables returning a SpecReport), print the table, write the reports
    (``paths``: the option values ``json_path``, ``junit_path``, ``nodes_path``, ``repro_dir``,
    ``html_path``), and exit 1 on any mismatch."""
    click.echo(f"seed {options.seed} (replay with --seed {options.seed})", err=True)
    with tqdm(
        total=len(jobs), desc="validate", unit="spec", file=sys.stderr, disable=not sys.stderr.isatty()
    ) as bar:

        def done(result) -> None:
            bar.set_postfix_str(result.spec)
            bar.update()

        reports = run_jobs(jobs, workers, done)
    text = summary(reports).splitlines()
    for line in text:  # mismatches and localizations go to stderr, the rest to stdout
        click.echo(line, err=line.startswith(("mismatch: ", "localized ")))
    problems = failures(reports)
    if paths["json_path"]:
        report.write_json(reports, paths["json_path"], options.seed)
    if paths["junit_path"]:
        report.write_junit(reports, paths["junit_path"])
    if paths["nodes_path"]:
        count = report.write_nodes(reports, paths["nodes_path"])
        click.echo(f"nodes: {count} paired value(s) written to {paths['nodes_path']}", err=True)
    if paths["html_path"]:
        html_report.write_html(reports, paths["html_path"], options.seed)
    if paths["repro_dir"]:
        bundles, notes = repro.collect(reports)
        for folder in repro.write_bundles(bundles, paths["repro_dir"]) if bundles else []:
            click.echo(f"repro: wrote {folder} (see its README.md)", err=True)
        for note in notes:
            click.echo(f"repro: none for {note}", err=True)
        if not bundles and not notes:
            click.echo("repro: no failing ONNX Runtime check to reproduce; nothing written", err=True)
    if problems:
        sys.exit(EXIT_MISMATCH)


@click.group("validate")
def validate_group() -> None:
    """Check eager vs TorchScript vs ONNX Runtime (CPU, CUDA) on outputs and gradients."""


@validate_group.command("losses")
@click.argument("names", nargs=-1)
@validate_options
@jobs_option
@specs_option
def validate_losses(names, workers, **option_values) -> None:
    """Validate the named losses (default: every registered loss)."""
    options = options_from(**option_values)
    specs = [catalog.get_spec(n, kind="loss") for n in names] if names else catalog.all_specs("loss")
    run_and_report(
        [job for s in specs for job in variant_jobs(s, options)],
        options,
        option_values,
        workers,
    )


@validate_group.command("all")
@validate_options
@jobs_option
@specs_option
def validate_all(workers, **option_values) -> None:
    """Validate every registered loss and model (each model variant at its small test config)."""
    options = options_from(**option_values)
    run_and_report(
        [job for s in catalog.all_specs() for job in variant_jobs(s, options)],
        options,
        option_values,
        workers,
    )


@validate_group.command("tigas")
@tigas_weight_options
@validate_options
@image_options
@jobs_option
def validate_tigas(mode, checkpoint, weights, trust_checkpoint, workers, **option_values) -> None:
    """Validate the TIGAS scorer: both modes at a small random config by default, or the
    model of --checkpoint / --weights hub. With --images, also compare the artifacts' scores
    on an image folder with the eager model's."""
    options = options_from(**option_values)
    spec = catalog.get_spec("tigas", kind="model")
    if checkpoint is None and weights is None:
        jobs = [job for job in variant_jobs(spec, options) if mode is None or job.config["mode"] == mode]
    else:
        resolved = resolve_weights(
            mode=mode, checkpoint=checkpoint, weights=weights, trust_checkpoint=trust_checkpoint
        )
        label = f"tigas[{resolved.config['mode']}]"
        jobs = [lambda: validate_spec(spec, resolved.config, options, module=resolved.model, label=label)]
    run_and_report(jobs, options, option_values, workers)


@validate_group.command("artifact")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The checkpoint the artifact was exported from (matched by its sha256).",
)
@click.option(
    "--trust-checkpoint",
    is_flag=True,
    help="Allow a checkpoint that needs arbitrary unpickling (trusted files only).",
)
@trust_artifact_option
@validate_options
@image_options
@specs_option
def validate_artifact_command(path, checkpoint, trust_checkpoint, trust_artifact, **option_values) -> None:
    """Validate an existing .onnx/.pt/.pt2 exported by lossport against its recorded spec and config
    (weights from --checkpoint when it was exported from one; nothing in the file is trusted).
    With --images, also compare its scores on an image folder with the eager reference's."""
    options = options_from(**option_values)
    run_and_report(
        [
            lambda: validate_artifact(
                path,
                options,
                checkpoint=checkpoint,
                trust_checkpoint=trust_checkpoint,
                trust_artifact=trust_artifact,
            )
        ],
        options,
        option_values,
        workers=1,
    )


@validate_group.command("module")
@module_options
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keyword argument of FACTORY (repeatable; values read as JSON where they parse).",
)
@validate_options
def validate_module_command(target, inputs, no_grad, settings, **option_values) -> None:
    """Validate any nn.Module (SOURCE:FACTORY as for `export module`) on every backend, at the
    export shape and at shapes differing in every dynamic axis, outputs and gradients."""
    options = options_from(**option_values)
    spec, module = module_spec(target, inputs, no_grad, parse_settings(settings))
    run_and_report(
        [lambda: validate_spec(spec, None, options, module=module)],
        options,
        option_values,
        workers=1,
    )
