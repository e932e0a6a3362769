"""``lossport export loss|tigas|losses``: write artifacts, checked against eager PyTorch by
validation's :func:`~lossport.validation.export_check.verify_export` unless ``--no-check``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from lossport import catalog
from lossport.cli.common import EXIT_USAGE, add_options, parse_dynamic, parse_settings
from lossport.cli.modules import module_spec, specs_option
from lossport.errors import ConfigError
from lossport.export import FORMATS, ExportResult, export_artifact
from lossport.export.calibration import MAX_IMAGES as MAX_CALIBRATION_IMAGES
from lossport.export.manifest import export_many
from lossport.export.onnx.writer import DEFAULT_OPSET
from lossport.models.tigas.specs import DEFAULT_IMG_SIZE, resolve_weights
from lossport.validation.export_check import verify_export

export_options = add_options(
    click.option(
        "--format",
        "fmt",
        type=click.Choice(sorted(FORMATS)),
        default="onnx",
        show_default=True,
        help="pt2: the torch.export program (.pt2); aoti: the same as --format pt2 --aoti.",
    ),
    click.option(
        "--aoti",
        is_flag=True,
        help="With --format pt2: an AOTInductor package (the program compiled to native code for "
        "--device, loadable in C++ by AOTIModelPackageLoader).",
    ),
    click.option(
        "--device",
        type=click.Choice(["cpu", "cuda"]),
        default="cpu",
        show_default=True,
        help="With --aoti: the device the package is compiled for.",
    ),
    click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Artifact path (default: NAME[_grad].onnx|.pt in the current folder).",
    ),
    click.option(
        "--with-grad", is_flag=True, help="Also output d objective / d input for each differentiable input."
    ),
    click.option(
        "--dynamic", help="Dynamic axes: all (default), none, or names such as batch or batch,spatial."
    ),
    click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True),
    click.option(
        "--precision",
        type=click.Choice(sorted({p for f in FORMATS.values() for p in f.precisions})),
        default="fp32",
        show_default=True,
        help="Numeric precision (per format: "
        + "; ".join(f"{name}: {', '.join(f.precisions)}" for name, f in sorted(FORMATS.items()))
        + "). onnx fp16: float16 graph, float32 inputs/outputs; int8: static QDQ quantization "
        "calibrated on images (image models only, no --with-grad).",
    ),
    click.option(
        "--calibrate",
        type=click.Path(path_type=Path),
        help=f"With --precision int8: calibrate on the images in this folder (at most "
        f"{MAX_CALIBRATION_IMAGES}, evenly spaced by path; default: the built-in set of "
        f"photos and generated-looking images).",
    ),
    click.option(
        "--no-check", is_flag=True, help="Skip the built-in check of the written artifact against eager."
    ),
    click.option(
        "--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override a config value (repeatable)."
    ),
)

tigas_weight_options = add_options(
    click.option(
        "--mode",
        type=click.Choice(["fast", "full"]),
        help="Model mode (default: fast; with weights, the checkpoint's).",
    ),
    click.option(
        "--checkpoint",
        type=click.Path(dir_okay=False, path_type=Path),
        help="TIGAS checkpoint file (upstream trainer, save_model or raw state_dict).",
    ),
    click.option(
        "--weights",
        type=click.Choice(["hub", "random"]),
        help="hub: upstream's published weights (default; needs huggingface_hub and "
        "the network once); random: seeded fresh weights.",
    ),
    click.option(
        "--trust-checkpoint",
        is_flag=True,
        help="Allow a checkpoint that needs arbitrary unpickling (trusted files only).",
    ),
)


module_options = add_options(
    click.argument("target", metavar="SOURCE:FACTORY"),
    click.option(
        "--input",
        "inputs",
        multiple=True,
        metavar="SPEC",
        help="A forward argument: NAME:DTYPE[DIM,...][=LOW..HIGH], e.g. "
        "x:float32[batch,3,height=64,width=64]=0..1 (repeat, in forward's order).",
    ),
    click.option(
        "--no-grad",
        "no_grad",
        multiple=True,
        metavar="NAME",
        help="A float input that is not differentiable (repeatable).",
    ),
)


def report_export(result: ExportResult) -> None:
    checked = (
        f"checked on {len(result.checks)} runs, worst abs error "
        f"{max((c.max_abs for r in result.checks for c in r.comparisons), default=0.0):.2e}"
        if result.checks
        else "not checked (--no-check)"
    )
    click.echo(
        f"wrote {result.path} ({result.format}{'' if result.precision == 'fp32' else ' ' + result.precision}, outputs {', '.join(result.outputs)}, "
        f"dynamic {', '.join(result.dynamic) or 'none'}; {checked}; {result.seconds:.1f}s)"
    )


@click.group("export")
def export_group() -> None:
    """Export a loss, the TIGAS scorer or a module to ONNX, TorchScript or pt2 (torch.export,
    AOTInductor)."""


def _export(
    spec,
    settings,
    fmt,
    aoti,
    device,
    output,
    with_grad,
    dynamic,
    opset,
    no_check,
    precision,
    calibrate,
    **prepared,
) -> None:
    """Export ``spec`` with the shared options; ``prepared``: ``config``/``module``/... as
    :func:`~lossport.export.export_artifact` takes them (default: the spec's config with
    ``--set``)."""
    if aoti and fmt not in ("pt2", "aoti"):
        raise ConfigError(f"--aoti compiles the pt2 program, not {fmt}: use --format pt2 --aoti")
    fmt = "aoti" if aoti else fmt
    if "config" not in prepared and "module" not in prepared:
        prepared["config"] = spec.resolve_config(parse_settings(settings))
    report_export(
        export_artifact(
            spec,
            fmt=fmt,
            path=output,
            with_grad=with_grad,
            dynamic=parse_dynamic(dynamic),
            opset=opset,
            device=device,
            precision=precision,
            calibrate=calibrate,
            verify=None if no_check else verify_export,
            **prepared,
        )
    )


@export_group.command("loss")
@click.argument("name")
@export_options
@specs_option
def export_loss(name, **options) -> None:
    """Export the registered loss NAME (see `lossport list losses`)."""
    _export(catalog.get_spec(name, kind="loss"), **options)


@export_group.command("spec")
@click.argument("name")
@export_options
@specs_option
def export_spec(name, **options) -> None:
    """Export any registered spec NAME, a loss or a model (yours with --specs)."""
    _export(catalog.get_spec(name), **options)


@export_group.command("module")
@module_options
@export_options
def export_module_command(target, inputs, no_grad, **options) -> None:
    """Export any nn.Module: SOURCE is a .py file or an importable module, FACTORY an nn.Module
    subclass or a function returning one (called with the --set values)."""
    spec, module = module_spec(target, inputs, no_grad, parse_settings(options["settings"]))
    _export(spec, module=module, **options)


@export_group.command("tigas")
@tigas_weight_options
@click.option(
    "--img-size",
    type=int,
    default=DEFAULT_IMG_SIZE,
    show_default=True,
    help="Image size of the preprocessing contract and the export example.",
)
@export_options
def export_tigas(mode, checkpoint, weights, trust_checkpoint, img_size, **options) -> None:
    """Export the TIGAS scorer (outputs score [B,1], logits [B,2]; --with-grad adds
    grad_images = d(1 - mean(score))/d images)."""
    resolved = resolve_weights(
        mode=mode,
        checkpoint=checkpoint,
        weights=weights,
        trust_checkpoint=trust_checkpoint,
        overrides=parse_settings(options["settings"]),
        img_size=img_size,
    )
    _export(
        catalog.get_spec("tigas", kind="model"),
        config=resolved.config,
        module=resolved.model,
        weights=resolved.weights,
        protected=[checkpoint] if checkpoint is not None else [],
        **options,
    )


@export_group.command("losses")
@click.option("--all", "export_all", is_flag=True, required=True, help="Every registered loss.")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the artifacts and manifest.json (created).",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(sorted(FORMATS)),
    multiple=True,
    help="Formats to write (default: "
    + " and ".join(name for name, f in FORMATS.items() if f.default)
    + ").",
)
@click.option("--with-grad", is_flag=True, help="Also write the gradient variant of each.")
@click.option("--no-check", is_flag=True)
@specs_option
def export_losses(export_all, output_dir: Path, formats, with_grad, no_check) -> None:
    """Export every registered loss into a folder, with a manifest.json."""
    _make_folder(output_dir)
    specs = catalog.all_specs("loss")
    with tqdm(
        total=len(specs), desc="export", unit="loss", file=sys.stderr, disable=not sys.stderr.isatty()
    ) as bar:
        manifest, failures = export_many(
            specs,
            output_dir,
            formats=formats or sorted(name for name, f in FORMATS.items() if f.default),
            with_grad=with_grad,
            verify=None if no_check else verify_export,
            progress=lambda result: bar.set_postfix_str(result.spec),
        )
    for _name, message in failures:
        click.echo(f"error: {message}", err=True)
    click.echo(f"wrote {manifest} ({len(specs) - len(failures)} of {len(specs)} losses)")
    if failures:
        sys.exit(EXIT_USAGE)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"-o {folder}: a file is in the way; give a folder path") from None
    except OSError as exc:
        raise ConfigError(f"-o {folder}: cannot create the folder ({exc.strerror})") from None
