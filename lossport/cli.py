"""The ``lossport`` command line: parse, call the library, print, set the exit code.

Exit codes: 0 all good, 1 validation mismatch, 2 bad usage or input. A :class:`LossportError`
prints its one-line message (no traceback unless ``--debug``).
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Callable

from pathlib import Path

import click
from tqdm import tqdm

from lossport import __version__, registry
from lossport.errors import ConfigError, LossportError
from lossport.export import FORMATS, export_artifact
from lossport.export.manifest import export_many
from lossport.export.onnx_export import DEFAULT_OPSET
from lossport.models.tigas.hub import download_checkpoint
from lossport.validation import report
from lossport.validation.suite import (BACKENDS, DEFAULT_SEED, Options, available_cpus,
                                       parse_backends, run_jobs, validate_artifact, validate_spec,
                                       variant_jobs)

EXIT_MISMATCH = 1
EXIT_USAGE = 2
MAX_DEFAULT_JOBS = 8


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


# -- export ------------------------------------------------------------------------------------

def _parse_sets(pairs: tuple) -> dict:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        settings[key.strip()] = value.strip()
    return settings


def _export_options(command: Callable) -> Callable:
    """Options shared by every single-artifact export command."""
    options = [
        click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="onnx",
                     show_default=True),
        click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                     help="Artifact path (default: NAME[_grad].onnx|.pt in the current folder)."),
        click.option("--with-grad", is_flag=True,
                     help="Also output d objective / d input for each differentiable input."),
        click.option("--dynamic", help="Dynamic axes: all (default), none, or names such as "
                                       "batch or batch,spatial."),
        click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True),
        click.option("--no-check", is_flag=True,
                     help="Skip the built-in check of the written artifact against eager."),
        click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Override a config value (repeatable)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _report_export(result) -> None:
    checked = (f"checked on {len(result.checks)} runs, worst abs error "
               f"{max((c.max_abs for r in result.checks for c in r.comparisons), default=0.0):.2e}"
               if result.checks else "not checked (--no-check)")
    click.echo(f"wrote {result.path} ({result.format}, outputs {', '.join(result.outputs)}, "
               f"dynamic {', '.join(result.dynamic) or 'none'}; {checked}; {result.seconds:.1f}s)")


@main.group("export")
def export_group() -> None:
    """Export a loss or the TIGAS scorer to ONNX or TorchScript."""


@export_group.command("loss")
@click.argument("name")
@_export_options
@user_errors
def export_loss(name, fmt, output, with_grad, dynamic, opset, no_check, settings) -> None:
    """Export the registered loss NAME (see `lossport list losses`)."""
    spec = registry.get_spec(name, kind="loss")
    config = spec.resolve_config(_parse_sets(settings))
    _report_export(export_artifact(spec, fmt=fmt, path=output, config=config, with_grad=with_grad,
                                   dynamic=dynamic, opset=opset, check=not no_check))


def _tigas_config(mode, checkpoint, weights, img_size, trust_checkpoint, settings) -> tuple:
    """The TIGAS spec, its resolved config and the module for the weight options.

    ``--checkpoint FILE`` or ``--weights hub`` load weights (mode and sizes then come from the
    file, and ``--mode`` must agree); ``--weights random`` uses the seeded fresh-model init.
    """
    if checkpoint is not None and weights is not None:
        raise ConfigError("give either --checkpoint FILE or --weights hub|random, not both")
    spec = registry.get_spec("tigas", kind="model")
    overrides = {**_parse_sets(settings), "img_size": img_size}
    if checkpoint is not None or weights in (None, "hub"):
        source = checkpoint if checkpoint is not None else download_checkpoint()
        overrides.update(checkpoint=str(source), trust_checkpoint=trust_checkpoint)
    elif mode is not None:
        overrides["mode"] = mode
    config = spec.resolve_config(overrides)
    module = spec.instantiate(config)
    if mode is not None and module.config["mode"] != mode:
        raise ConfigError(f"--mode {mode} but the checkpoint holds a {module.config['mode']}-mode "
                          f"model; drop --mode or use a {mode}-mode checkpoint")
    config.update({k: module.config[k] for k in ("mode", "base_channels", "feature_dim",
                                                 "num_attention_heads", "input_range")})
    return spec, config, module


def _tigas_weight_options(command: Callable) -> Callable:
    options = [
        click.option("--mode", type=click.Choice(["fast", "full"]),
                     help="Model mode (default: fast; with weights, the checkpoint's)."),
        click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
                     help="TIGAS checkpoint file (upstream trainer, save_model or raw state_dict)."),
        click.option("--weights", type=click.Choice(["hub", "random"]),
                     help="hub: upstream's published weights (default; needs huggingface_hub "
                          "and the network once); random: seeded fresh weights."),
        click.option("--trust-checkpoint", is_flag=True,
                     help="Allow a checkpoint that needs arbitrary unpickling (trusted files only)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@export_group.command("tigas")
@_tigas_weight_options
@click.option("--img-size", type=int, default=256, show_default=True,
              help="Image size of the preprocessing contract and the export example.")
@_export_options
@user_errors
def export_tigas(mode, checkpoint, weights, trust_checkpoint, img_size, fmt, output, with_grad,
                 dynamic, opset, no_check, settings) -> None:
    """Export the TIGAS scorer (outputs score [B,1], logits [B,2]; --with-grad adds
    grad_images = d(1 - mean(score))/d images)."""
    spec, config, module = _tigas_config(mode, checkpoint, weights, img_size, trust_checkpoint,
                                         settings)
    _report_export(export_artifact(spec, fmt=fmt, path=output, config=config, module=module,
                                   with_grad=with_grad, dynamic=dynamic, opset=opset,
                                   check=not no_check))


@export_group.command("losses")
@click.option("--all", "export_all", is_flag=True, required=True, help="Every registered loss.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for the artifacts and manifest.json (created).")
@click.option("--format", "formats", type=click.Choice(sorted(FORMATS)), multiple=True,
              help="Formats to write (default: both).")
@click.option("--with-grad", is_flag=True, help="Also write the gradient variant of each.")
@click.option("--no-check", is_flag=True)
@user_errors
def export_losses(export_all, output_dir, formats, with_grad, no_check) -> None:
    """Export every registered loss into a folder, with a manifest.json."""
    output_dir.mkdir(parents=True, exist_ok=True)
    specs = registry.all_specs("loss")
    with tqdm(total=len(specs), desc="export", unit="loss", file=sys.stderr,
              disable=not sys.stderr.isatty()) as bar:
        manifest, failures = export_many(
            specs, output_dir, formats=formats or sorted(FORMATS), with_grad=with_grad,
            check=not no_check, progress=lambda result: bar.set_postfix_str(result.spec))
    for name, message in failures:
        click.echo(f"error: {message}", err=True)
    click.echo(f"wrote {manifest} ({len(specs) - len(failures)} of {len(specs)} losses)")
    if failures:
        sys.exit(EXIT_USAGE)


# -- validate ----------------------------------------------------------------------------------

def _validate_options(command: Callable) -> Callable:
    options = [
        click.option("--backends", help=f"Comma list of {', '.join(BACKENDS)} (default: all)."),
        click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
                     help="Seed of the random cases; printed so a failure can be replayed."),
        click.option("--atol", type=float, help="Override the absolute tolerance."),
        click.option("--rtol", type=float, help="Override the relative tolerance."),
        click.option("--require-cuda", is_flag=True,
                     help="Fail (instead of skip) when ORT-CUDA cannot run."),
        click.option("--localize", is_flag=True,
                     help="On an ONNX mismatch, name the first op whose output diverges."),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write every number to this JSON file."),
        click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write a JUnit XML report (one test case per spec x backend x check)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


jobs_option = click.option("--jobs", "workers", type=click.IntRange(min=1),
                           default=min(available_cpus(), MAX_DEFAULT_JOBS),
                           show_default=f"one per CPU, at most {MAX_DEFAULT_JOBS}",
                           help="Specs validated at once, in parallel processes (each holds "
                                "its own copy of PyTorch: memory grows with it).")


def _options(backends, seed, atol, rtol, require_cuda, localize) -> Options:
    names = parse_backends(backends)
    if require_cuda and "ort-cuda" not in names:
        raise ConfigError("--require-cuda needs the ort-cuda backend in --backends")
    return Options(backends=names, seed=seed, atol=atol, rtol=rtol, require_cuda=require_cuda,
                   localize=localize)


def _run_validation(jobs, options: Options, json_path, junit_path, workers: int) -> None:
    """``jobs``: callables returning a SpecReport (see ``run_jobs``). Prints the table, writes
    reports, exits."""
    click.echo(f"seed {options.seed} (replay with --seed {options.seed})", err=True)
    with tqdm(total=len(jobs), desc="validate", unit="spec", file=sys.stderr,
              disable=not sys.stderr.isatty()) as bar:
        def done(result) -> None:
            bar.set_postfix_str(result.spec)
            bar.update()

        reports = run_jobs(jobs, workers, done)
    click.echo(report.table(reports))
    for backend, reason in report.skips(reports).items():
        click.echo(f"skipped {backend}: {reason}")
    problems = report.failures(reports)
    for line in problems:
        click.echo(f"mismatch: {line}", err=True)
    for result in reports:
        for backend, where in result.localized.items():
            click.echo(f"localized {result.spec} / {backend}: {where}", err=True)
    if json_path:
        report.write_json(reports, json_path, options.seed)
    if junit_path:
        report.write_junit(reports, junit_path)
    if problems:
        sys.exit(EXIT_MISMATCH)


@main.group("validate")
def validate_group() -> None:
    """Check eager vs TorchScript vs ONNX Runtime (CPU, CUDA) on outputs and gradients."""


@validate_group.command("losses")
@click.argument("names", nargs=-1)
@_validate_options
@jobs_option
@user_errors
def validate_losses(names, backends, seed, atol, rtol, require_cuda, localize, json_path,
                    junit_path, workers) -> None:
    """Validate the named losses (default: every registered loss)."""
    options = _options(backends, seed, atol, rtol, require_cuda, localize)
    specs = [registry.get_spec(n, kind="loss") for n in names] if names else registry.all_specs("loss")
    _run_validation([job for s in specs for job in variant_jobs(s, options)], options, json_path,
                    junit_path, workers)


@validate_group.command("all")
@_validate_options
@jobs_option
@user_errors
def validate_all(backends, seed, atol, rtol, require_cuda, localize, json_path, junit_path,
                 workers) -> None:
    """Validate every registered loss and model (each model variant at its small test config)."""
    options = _options(backends, seed, atol, rtol, require_cuda, localize)
    _run_validation([job for s in registry.all_specs() for job in variant_jobs(s, options)],
                    options, json_path, junit_path, workers)


@validate_group.command("tigas")
@_tigas_weight_options
@_validate_options
@jobs_option
@user_errors
def validate_tigas(mode, checkpoint, weights, trust_checkpoint, backends, seed, atol, rtol,
                   require_cuda, localize, json_path, junit_path, workers) -> None:
    """Validate the TIGAS scorer: both modes at a small random config by default, or the
    model of --checkpoint / --weights hub."""
    options = _options(backends, seed, atol, rtol, require_cuda, localize)
    if checkpoint is None and weights is None:
        jobs = variant_jobs(registry.get_spec("tigas", kind="model"), options)
        jobs = [job for job in jobs if mode is None or job.config["mode"] == mode]
    else:
        spec, config, module = _tigas_config(mode, checkpoint, weights, 256,
                                             trust_checkpoint, ())
        label = f"tigas[{config['mode']}]"
        jobs = [lambda: validate_spec(spec, config, options, module=module, label=label)]
    _run_validation(jobs, options, json_path, junit_path, workers)


@validate_group.command("artifact")
@click.argument("path", type=click.Path(path_type=Path))
@_validate_options
@user_errors
def validate_artifact_command(path, backends, seed, atol, rtol, require_cuda, localize,
                              json_path, junit_path) -> None:
    """Validate an existing .onnx/.pt exported by lossport against its recorded spec and config."""
    options = _options(backends, seed, atol, rtol, require_cuda, localize)
    _run_validation([lambda: validate_artifact(path, options)], options, json_path, junit_path,
                    workers=1)


# -- preprocess --------------------------------------------------------------------------------

def _parse_dims(text: str, option: str, expected: str) -> tuple:
    """``"2,3,64,64"`` -> ``(2, 3, 64, 64)``; anything but positive integers is a ConfigError."""
    try:
        dims = tuple(int(part) for part in text.split(","))
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise ConfigError(f"{option} expects {expected}, got {text!r}")
    return dims


def _contract(size, model):
    """The preprocessing contract: ``--size S|H,W`` (RGB, [0,1], NCHW), or ``--model``'s."""
    from lossport.preprocess import Preprocess, read_preprocess

    if (size is None) == (model is None):
        raise ConfigError("give the image size as --size SIZE|HEIGHT,WIDTH, or --model ARTIFACT "
                          "to use the artifact's preprocessing contract (not both)")
    if model is not None:
        return read_preprocess(model) or Preprocess.default()
    dims = _parse_dims(size, "--size", "SIZE or HEIGHT,WIDTH (positive integers)")
    if len(dims) > 2:
        raise ConfigError(f"--size expects SIZE or HEIGHT,WIDTH (positive integers), got {size!r}")
    return Preprocess(size=(dims[0], dims[-1]))


@main.command("preprocess")
@click.argument("images", nargs=-1)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Tensor file to write (format: lossport/tensorfile.py, docs/deploying.md).")
@click.option("--size", help="Resize images to SIZE x SIZE or HEIGHT,WIDTH (RGB, [0,1], NCHW).")
@click.option("--model", type=click.Path(path_type=Path),
              help="Follow this exported artifact's preprocessing contract (size, range, ...).")
@click.option("--random", "random_shape", metavar="SHAPE",
              help="Instead of images: uniform [0, 1) float32 values of SHAPE, e.g. 2,3,64,64.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --random.")
@user_errors
def preprocess(images, output, size, model, random_shape, seed) -> None:
    """Write IMAGES (files or folders) or a random tensor as one tensor file that every runtime
    reads identically: float32, C order, after a small JSON header."""
    import torch

    from lossport import images as image_io
    from lossport import tensorfile
    from lossport.errors import ImageError

    if bool(images) == bool(random_shape):
        raise ConfigError("give IMAGES to preprocess, or --random SHAPE (not both)")
    if random_shape:
        if size is not None or model is not None:
            raise ConfigError("--size and --model apply to images, not to --random")
        shape = _parse_dims(random_shape, "--random", "comma-separated positive sizes, e.g. 2,3,64,64")
        tensor = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
        info = {"range": "[0,1]", "seed": seed, **({"layout": "NCHW"} if len(shape) == 4 else {})}
        what = f"seed {seed}"
    else:
        contract = _contract(size, model)
        sources, skipped = image_io.collect_sources(images)
        batches = list(image_io.load_batches(sources, contract.size, max(len(sources), 1), skipped))
        for item in skipped:
            click.echo(f"skipped {item.path}: {item.reason}", err=True)
        if not batches:
            raise ImageError(f"no images found in {', '.join(images)}")
        files, batch = batches[0]
        tensor = contract.apply(batch)
        info = {"layout": contract.layout, "range": contract.range,
                "channel_order": contract.channel_order, "files": files}
        what = f"{len(files)} images"
    header = tensorfile.write(output, tensor, **info)
    click.echo(f"wrote {output} ({header['dtype']} {header['shape']}, {what})")


# -- score -------------------------------------------------------------------------------------

@main.command("score")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--checkpoint", type=click.Path(path_type=Path),
              help="Upstream TIGAS checkpoint to run in PyTorch (default: the hub weights).")
@click.option("--model", "model_file", type=click.Path(path_type=Path),
              help="Exported scorer instead: .onnx (ONNX Runtime, CPU) or TorchScript .pt.")
@click.option("--img-size", type=int,
              help="Resize side with --checkpoint (default: the checkpoint's, else 256); an "
                   "exported model's own preprocessing contract decides for --model.")
@click.option("--heads", type=int, default=8, show_default=True,
              help="Attention heads of a full-mode checkpoint (not stored in the file).")
@click.option("--input-range", type=click.Choice(["[0,1]", "[-1,1]"]), default="[0,1]",
              show_default=True, help="Input range the checkpoint's model expects.")
@click.option("--trust-checkpoint", is_flag=True,
              help="Load a checkpoint that needs arbitrary unpickling (trusted files only).")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--device", help="Torch device for --checkpoint (default: cuda if available).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@user_errors
def score_command(paths, checkpoint, model_file, img_size, heads, input_range, trust_checkpoint,
                  batch_size, device, as_json, as_csv) -> None:
    """Score images (files or folders, recursive) with TIGAS: 1 = real, 0 = generated."""
    import csv

    from lossport.errors import ImageError
    from lossport.images import collect_sources
    from lossport.models.tigas import TIGAS
    from lossport.models.tigas.runners import open_model_file, score_sources

    if checkpoint is not None and model_file is not None:
        raise ConfigError("give --checkpoint or --model, not both")
    if as_json and as_csv:
        raise ConfigError("give --json or --csv, not both")
    sources, skipped = collect_sources(paths)
    if model_file is not None:
        if img_size is not None or trust_checkpoint or device is not None:
            raise ConfigError("--img-size, --trust-checkpoint and --device apply to --checkpoint; "
                              "an exported --model brings its own preprocessing contract")
        runner = open_model_file(model_file)
    else:
        runner = TIGAS(checkpoint, img_size=img_size, device=device, num_attention_heads=heads,
                       input_range=input_range, trust_checkpoint=trust_checkpoint)
    result = score_sources(runner, sources, skipped, batch_size,
                           progress=any(p.is_dir() for p in paths))
    if not result.scores:
        raise ImageError(f"no readable images in {', '.join(map(str, paths))} "
                         f"({len(result.skipped)} files skipped)")
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["path", "score", "logit_generated", "logit_real"])
        for item in result.scores:
            writer.writerow([item.path, f"{item.score:.6f}", f"{item.logits[0]:.6f}",
                             f"{item.logits[1]:.6f}"])
    else:
        click.echo(f"{'score':>8}  {'verdict':<9}  path")
        for item in result.scores:
            verdict = "real" if item.score >= 0.5 else "generated"
            click.echo(f"{item.score:8.4f}  {verdict:<9}  {item.path}")
    for item in result.skipped:
        click.echo(f"skipped {item.path}: {item.reason}", err=True)
    count = len(result.scores)
    click.echo(f"scored {count} image{'s' if count != 1 else ''}, skipped "
               f"{len(result.skipped)} file{'s' if len(result.skipped) != 1 else ''}", err=True)
