"""Export a spec to any registered artifact format, atomically, optionally verified before it lands.

:data:`FORMATS` is the registry of formats: each names its file suffix, its writer (a
function of one :class:`WriteRequest`) and the numeric precisions it can write. A new format
is one writer module and one entry here. ``export_artifact`` builds the module from the spec's
config (or takes a prepared one, e.g. TIGAS with a checkpoint), writes the artifact to a temp file beside ``path``, runs ``verify``
on the written file (the CLI passes validation's check: the file run from disk against eager
PyTorch), and only then moves it to ``path``. A failed export or check leaves nothing behind.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from torch import nn

from lossport.artifact.metadata import build_metadata
from lossport.errors import ConfigError, ExportError, LossportError, brief_reason
from lossport.export.calibration import CALIBRATED, calibration_set
from lossport.export.gradient import gradient_names
from lossport.export.onnx.precision import PRECISIONS as ONNX_PRECISIONS
from lossport.export.onnx.writer import DEFAULT_OPSET, MIN_OPSET, max_opset, write_onnx
from lossport.export.pt2 import write_aoti, write_pt2
from lossport.export.request import WriteRequest
from lossport.export.torchscript import write_torchscript
from lossport.io.atomic import atomic_path
from lossport.io.digest import FileRecord, sha256_file
from lossport.spec import Spec

EXPORT_SEED = 0


@dataclass(frozen=True)
class ArtifactFormat:
    """A registered format: its file ``suffix``, its ``write`` (returns a note on how the file
    was made, empty when there is nothing to say), the ``precisions`` it can write, the ``tag``
    of its default file name (formats sharing a suffix differ by it) and whether ``lossport
    export losses --all`` writes it by default."""

    suffix: str
    write: Callable[[WriteRequest], str]
    precisions: Tuple[str, ...] = ("fp32",)
    tag: str = ""
    default: bool = True


FORMATS: Dict[str, ArtifactFormat] = {
    "onnx": ArtifactFormat(".onnx", write_onnx, ONNX_PRECISIONS),
    "torchscript": ArtifactFormat(".pt", write_torchscript),
    "pt2": ArtifactFormat(".pt2", write_pt2, ("fp32", "bf16"), default=False),
    # AOTInductor: the pt2 program compiled to native code (lossport export --format pt2 --aoti)
    "aoti": ArtifactFormat(".pt2", write_aoti, ("fp32", "bf16"), tag="_aoti", default=False),
}


@dataclass(frozen=True)
class ExportRequest:
    """What :func:`export_artifact` hands its ``verify`` callback: the written file (still at its
    temp path), its format and precision, and what it was made from."""

    path: Path
    fmt: str
    precision: str
    spec: Spec
    config: Mapping[str, Any]
    module: nn.Module
    dynamic: Sequence[str]
    with_grad: bool


Verify = Callable[[ExportRequest], List[Any]]


@dataclass
class ExportResult:
    path: Path
    spec: str
    format: str
    config: Dict[str, Any]
    outputs: List[str]
    dynamic: List[str]
    with_grad: bool
    seconds: float
    sha256: str
    checks: List[Any] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    precision: str = "fp32"


def default_path(spec: Spec, fmt: str, with_grad: bool) -> Path:
    return Path(f"{spec.name}{'_grad' if with_grad else ''}{FORMATS[fmt].tag}{FORMATS[fmt].suffix}")


def check_output_path(path: Path, fmt: str, protected: Sequence[Path] = ()) -> None:
    """``path`` ends in the format's suffix (any case) and is none of ``protected`` (the files
    the export reads, e.g. its checkpoint)."""
    suffix = FORMATS[fmt].suffix
    if path.suffix.lower() != suffix:
        raise ConfigError(
            f"output {path}: a {fmt} artifact is written to a {suffix} file; "
            f"name it {path.with_suffix(suffix).name if path.suffix else path.name + suffix}"
        )
    for source in protected:
        if Path(source).exists() and path.exists() and os.path.samefile(source, path):
            raise ConfigError(f"output {path} is the file the export reads ({source}); choose another -o")


def select_dynamic(spec: Spec, config: Mapping[str, Any], names: Optional[Sequence[str]]) -> List[str]:
    """The dynamic axes to export: ``None`` means every dynamic dim of the spec; otherwise
    ``names`` must all be dynamic dims of the spec (returned in the spec's order)."""
    available = spec.dynamic_dims(config)
    if names is None:
        return available
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(
            f"{spec.name} has no dynamic axis {', '.join(unknown)}; its axes are "
            f"{', '.join(available) or 'none'}"
        )
    return [n for n in available if n in names]


def export_artifact(
    spec: Spec,
    *,
    fmt: str,
    path: Optional[Path] = None,
    config: Optional[Mapping[str, Any]] = None,
    module: Optional[nn.Module] = None,
    with_grad: bool = False,
    dynamic: Optional[Sequence[str]] = None,
    opset: int = DEFAULT_OPSET,
    precision: str = "fp32",
    calibrate: Optional[Path] = None,
    verify: Optional[Verify] = None,
    weights: Optional[FileRecord] = None,
    protected: Sequence[Path] = (),
    device: str = "cpu",
) -> ExportResult:
    """Export ``spec`` and return what was written. Raises :class:`ExportError` (nothing is left
    at ``path``) when the export or ``verify`` fails, :class:`ConfigError` on bad options.

    ``config``: a resolved config (see :meth:`Spec.resolve_config`); ``module``: a prepared
    module matching it (default: built from the config); ``dynamic``: dim names exported as
    dynamic axes (default: all); ``precision``: one of the format's precisions; ``calibrate``:
    the folder of calibration images of a calibrated precision (int8; default: the built-in
    set, see :mod:`lossport.export.calibration`); ``verify``: run on the written temp file, returns the check
    results kept in :attr:`ExportResult.checks`, raises to refuse the file; ``weights``: the
    checkpoint the module's weights came from (recorded by name and sha256); ``protected``:
    files ``path`` must not be; ``device``: what an ``aoti`` package is compiled for (``cpu``
    or ``cuda``; other formats are written for the CPU).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
    if precision not in FORMATS[fmt].precisions:
        raise ConfigError(
            f"--precision {precision}: a {fmt} artifact can be {', '.join(FORMATS[fmt].precisions)}"
        )
    if device != "cpu" and fmt != "aoti":
        raise ConfigError(f"--device {device} compiles an AOTInductor package; add --aoti (--format pt2)")
    if fmt == "onnx" and opset < MIN_OPSET:
        raise ConfigError(
            f"--opset {opset} is below the minimum {MIN_OPSET} (the exporter needs opset >= {MIN_OPSET})"
        )
    if fmt == "onnx" and opset > max_opset():
        raise ConfigError(
            f"--opset {opset} is above {max_opset()}, the newest opset the installed onnx knows"
        )
    if with_grad and not spec.differentiable_inputs:
        raise ConfigError(f"{spec.name} has no differentiable input, so --with-grad has nothing to compute")
    path = Path(path) if path is not None else default_path(spec, fmt, with_grad)
    check_output_path(path, fmt, protected)
    config = spec.resolve_config() if config is None else dict(config)
    module = spec.instantiate(config) if module is None else module.eval()
    dims = select_dynamic(spec, config, dynamic)
    outputs = list(spec.outputs) + (gradient_names(spec) if with_grad else [])
    calibration = None
    if precision in CALIBRATED:
        calibration = calibration_set(
            spec, config, calibrate, precision=precision, dynamic=dims, with_grad=with_grad
        )
    elif calibrate is not None:
        raise ConfigError(
            f"--calibrate calibrates --precision {' or '.join(CALIBRATED)}; drop it for {precision}"
        )
    metadata = build_metadata(
        spec,
        config,
        fmt=fmt,
        dynamic=dims,
        with_grad=with_grad,
        outputs=outputs,
        opset=opset if fmt == "onnx" else None,
        weights=weights,
        precision=precision,
        calibration=calibration.record if calibration is not None else None,
    )
    example = spec.sample_inputs(spec.sizes(0, config), EXPORT_SEED)
    other = spec.sample_inputs(spec.other_sizes(config, dims), EXPORT_SEED + 1)

    start = time.perf_counter()
    notes: List[str] = []
    with atomic_path(path) as temp:
        request = WriteRequest(
            module,
            spec,
            example,
            other,
            temp,
            metadata,
            dims,
            outputs,
            with_grad,
            opset,
            precision,
            device,
            calibration=calibration,
        )
        try:
            note = FORMATS[fmt].write(request)
            notes += [note] if note else []
        except LossportError:
            raise
        except Exception as exc:  # exporter failures come as many types; report them as one
            raise ExportError(f"exporting {spec.name} to {fmt} failed: {brief_reason(exc)}") from exc
        checks = (
            verify(ExportRequest(temp, fmt, precision, spec, config, module, dims, with_grad))
            if verify
            else []
        )
        digest = sha256_file(temp)
    return ExportResult(
        path,
        spec.name,
        fmt,
        config,
        outputs,
        dims,
        with_grad,
        time.perf_counter() - start,
        digest,
        checks,
        notes,
        precision,
    )
