"""Export any registered spec to TorchScript or ONNX, atomically, with a built-in check.

``export_artifact`` builds the module from the spec's config (or takes a prepared one, e.g.
TIGAS with a checkpoint), writes the artifact to a temp file beside ``path``, runs the written
file from disk on the export shape and on a shape different in every dynamic axis, compares
with eager PyTorch (float64 where the spec allows), and only then moves it to ``path``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence

from torch import nn

from lossport.errors import ConfigError, ExportError, LossportError
from lossport.export.atomic import atomic_path
from lossport.export.gradient import gradient_names
from lossport.export.metadata import build_metadata
from lossport.export.onnx_export import DEFAULT_OPSET, MIN_OPSET, write_onnx
from lossport.export.torchscript import write_torchscript
from lossport.registry import Spec

if TYPE_CHECKING:
    from lossport.validation.runner import CaseResult

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
EXPORT_SEED = 0
SPATIAL = ("height", "width")


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
    checks: List[CaseResult] = field(default_factory=list)


def select_dynamic(spec: Spec, config: Mapping[str, Any], choice: Optional[str]) -> List[str]:
    """Dynamic axes from a ``--dynamic`` value: ``None``/``"all"`` (every dynamic dim of the
    spec), ``"none"``, or a comma list of dim names where ``spatial`` means height,width."""
    available = spec.dynamic_dims(config)
    if choice is None or choice == "all":
        return available
    if choice == "none":
        return []
    wanted: List[str] = []
    for name in (n.strip() for n in choice.split(",") if n.strip()):
        wanted += list(SPATIAL) if name == "spatial" else [name]
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise ConfigError(f"--dynamic {choice!r}: {spec.name} has no dynamic axis "
                          f"{', '.join(unknown)}; its axes are {', '.join(available) or 'none'} "
                          f"(or use all / none)")
    return [n for n in available if n in wanted]


def default_path(spec: Spec, fmt: str, with_grad: bool) -> Path:
    return Path(f"{spec.name}{'_grad' if with_grad else ''}{FORMATS[fmt]}")


def export_artifact(spec: Spec, *, fmt: str, path: Optional[Path] = None,
                    config: Optional[Mapping[str, Any]] = None, module: Optional[nn.Module] = None,
                    with_grad: bool = False, dynamic: Optional[str] = None,
                    opset: int = DEFAULT_OPSET, check: bool = True) -> ExportResult:
    """Export ``spec`` and return what was written. Raises :class:`ExportError` (nothing is left
    at ``path``) when the export or its check fails, :class:`ConfigError` on bad options.

    ``config``: a resolved config (see :meth:`Spec.resolve_config`); ``module``: a prepared
    module matching it (default: built from the config).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; use {' or '.join(FORMATS)}")
    if fmt == "onnx" and opset < MIN_OPSET:
        raise ConfigError(f"--opset {opset} is below the minimum {MIN_OPSET} "
                          f"(the dynamo exporter needs opset >= {MIN_OPSET})")
    if with_grad and not spec.differentiable_inputs:
        raise ConfigError(f"{spec.name} has no differentiable input, so --with-grad has nothing "
                          f"to compute")
    config = spec.resolve_config() if config is None else dict(config)
    module = spec.instantiate(config) if module is None else module.eval()
    dims = select_dynamic(spec, config, dynamic)
    path = Path(path) if path is not None else default_path(spec, fmt, with_grad)
    outputs = list(spec.outputs) + (gradient_names(spec) if with_grad else [])
    metadata = build_metadata(spec, config, fmt=fmt, dynamic=dims, with_grad=with_grad,
                              outputs=outputs, opset=opset if fmt == "onnx" else None)
    example = spec.sample_inputs(spec.sizes(0, config), EXPORT_SEED)

    start = time.perf_counter()
    with atomic_path(path) as temp:
        try:
            if fmt == "onnx":
                write_onnx(module, spec, example, temp, metadata, dynamic=dims, opset=opset,
                           output_names=outputs, with_grad=with_grad)
            else:
                write_torchscript(module, spec, example, temp, metadata, with_grad)
        except LossportError:
            raise
        except Exception as exc:  # exporter failures come as many types; report them as one
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ExportError(f"exporting {spec.name} to {fmt} failed: {type(exc).__name__}: "
                              f"{first}") from exc
        checks = _check(spec, config, module, temp, dims) if check else []
        digest = hashlib.sha256(temp.read_bytes()).hexdigest()
    return ExportResult(path, spec.name, fmt, config, outputs, dims, with_grad,
                        time.perf_counter() - start, digest, checks)


def _check(spec: Spec, config: Mapping[str, Any], module: nn.Module, artifact: Path,
           dynamic: Sequence[str]) -> List[CaseResult]:
    # Imported here: lossport.validation imports this package (it runs exported artifacts).
    from lossport.validation.backends import artifact_backends, reference_backend
    from lossport.validation.cases import check_cases
    from lossport.validation.policy import tolerance_for
    from lossport.validation.runner import run_case

    reference = reference_backend(module, spec)
    tolerance = tolerance_for(spec.tolerance)
    results = [run_case(spec, reference, backend, case, tolerance)
               for backend in artifact_backends(artifact, spec)
               for case in check_cases(spec, config, dynamic, EXPORT_SEED)]
    failed = [r for r in results if not r.passed]
    if failed:
        raise ExportError(f"{spec.name}: the written artifact does not match eager PyTorch "
                          f"({_describe_failure(failed[0])}); nothing was written "
                          f"(--no-check skips this check)")
    return results


def _describe_failure(result: CaseResult) -> str:
    if result.error:
        return f"{result.backend} on {result.case}: {result.error}"
    worst = next(c for c in result.comparisons if not c.passed)
    return (f"{result.backend} on {result.case}: {worst.output} max abs error {worst.max_abs:.3g}, "
            f"allowed {worst.atol:.3g} + {worst.rtol:.3g}*|ref|; {worst.detail}")
