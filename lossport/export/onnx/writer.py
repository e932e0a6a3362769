"""ONNX artifacts: one symbolic trace (:mod:`.tracing`), translated with the ONNX exporter's op
translations (:mod:`.translate`), a full checker pass, and the metadata in ``metadata_props``.

The graph is not run through an ONNX optimizer: onnxscript's folds scalars within 1e-8 of zero
to zero (``x + 1e-9`` -> ``x``), silently removing small eps terms. ONNX Runtime optimizes the
graph itself when a session loads it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Sequence, Tuple

import onnx
import torch
from torch import nn

from lossport.errors import ExportError, brief_reason
from lossport.export.gradient import gradient_function
from lossport.export.onnx.precision import convert_precision
from lossport.export.request import WriteRequest
from lossport.spec import Spec
from lossport.spec.flatten import distinct_outputs, flatten_outputs

if TYPE_CHECKING:
    from torch.export import ExportedProgram

MIN_OPSET = 18
DEFAULT_OPSET = 18


def max_opset() -> int:
    """The newest opset the installed ``onnx`` knows."""
    return onnx.defs.onnx_opset_version()


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """The exporter logs warnings for optional packages (e.g. torchvision ops) and for graph
    nodes without module metadata; keep the CLI output to what lossport says."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _translation() -> Tuple[Any, Any]:
    """``(translate, tracing)``, imported on first use: they load ``torch.onnx``'s exporter and
    ``torch._dynamo`` (seconds at start-up that no other command needs), and the torch
    internals they use are version-checked on import (:mod:`.torch_internals`)."""
    try:
        from lossport.export.onnx import tracing, translate
    except ImportError as exc:
        raise ExportError(
            f"ONNX export needs the torch.onnx exporter modules of torch>=2.9, which "
            f"torch {torch.__version__} lacks ({exc}); install a supported torch"
        ) from exc
    return translate, tracing


def op_translations(opset: int) -> Any:
    """The ONNX exporter's op translations for ``opset`` (see :mod:`.translate`)."""
    translate, _ = _translation()
    with quiet_exporter():
        return translate.op_translations(opset)


def traced_program(
    module: nn.Module,
    spec: Spec,
    example: Sequence[torch.Tensor],
    *,
    dynamic: Sequence[str],
    with_grad: bool,
    translations: Any,
) -> Tuple[ExportedProgram, Dict[str, str]]:
    """The program an ONNX artifact is translated from, and its symbol -> dim name map.

    ``example`` fixes dtypes, ranks and the sizes of static dims; ``dynamic`` dims are symbolic.
    """
    translate, tracing = _translation()
    if with_grad:
        function = gradient_function(module, spec)
    else:

        def function(*inputs):
            return distinct_outputs(flatten_outputs(module(*inputs)), inputs)

    with quiet_exporter():
        graph, axis_names = tracing.trace(function, module, spec, example, dynamic, translations)
        return translate.exported_program(graph, module), axis_names


def write_onnx(request: WriteRequest) -> str:
    """Write the artifact (then converted to ``request.precision``); returns a note on how
    (empty for the direct translation at float32).

    A forward graph (no gradients) that the direct translation cannot make is exported with
    ``torch.onnx.export(dynamo=True)`` instead (its graph optimizer off, as ours), so forward
    coverage is never below torch.onnx's; the metadata says which (``lossport.exporter``).
    """
    translate, _ = _translation()
    spec, opset = request.spec, request.opset
    translations = op_translations(opset)
    try:
        program, axis_names = traced_program(
            request.module,
            spec,
            request.example,
            dynamic=request.dynamic,
            with_grad=request.with_grad,
            translations=translations,
        )
        with quiet_exporter():
            model = translate.to_onnx(
                program,
                translations,
                opset=opset,
                input_names=[t.name for t in spec.inputs],
                output_names=request.output_names,
                axis_names=axis_names,
            )
        _check(model, opset)
        exporter, note = "direct", ""
    except Exception as exc:  # the direct path's failures (or invalid graphs) come as many types
        if request.with_grad:
            raise
        model = _torch_onnx_export(
            request.module, spec, request.example, request.dynamic, opset, request.output_names, exc
        )
        _check(model, opset)
        exporter, note = (
            "torch.onnx",
            f"exported with torch.onnx (the direct translation failed: {brief_reason(exc)})",
        )
    _set_metadata(model, {**request.metadata, "lossport.exporter": exporter})
    onnx.save(model, str(request.path))
    converted = convert_precision(request.path, request.precision, request.calibration)
    return "; ".join(n for n in (note, converted) if n)


def _check(model: onnx.ModelProto, opset: int) -> None:
    """The requested opset, and a full ``onnx.checker`` pass (shape inference included)."""
    written = {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")}
    if written != {opset}:
        raise ExportError(f"the exporter wrote opset {sorted(written)}, not the requested {opset}")
    onnx.checker.check_model(model, full_check=True)


def _torch_onnx_export(
    module: nn.Module,
    spec: Spec,
    example: Sequence[torch.Tensor],
    dynamic: Sequence[str],
    opset: int,
    output_names: List[str],
    direct_error: Exception,
) -> onnx.ModelProto:
    """``module`` through ``torch.onnx.export(dynamo=True)``, with the spec's names and dynamic
    axes (one ``torch.export.Dim`` per dim name, shared by the inputs that have it)."""
    dims = {name: torch.export.Dim(name) for name in dynamic}
    per_input = tuple(
        {axis: dims[d] for axis, d in enumerate(t.shape) if isinstance(d, str) and d in dims} or None
        for t in spec.inputs
    )
    dynamic_shapes = None if not any(per_input) else _shapes_for_signature(module, per_input)
    try:
        with quiet_exporter(), contextlib.redirect_stdout(io.StringIO()):  # its progress lines
            program = torch.onnx.export(
                module,
                tuple(example),
                dynamo=True,
                dynamic_shapes=dynamic_shapes,
                input_names=[t.name for t in spec.inputs],
                output_names=output_names,
                opset_version=opset,
                optimize=False,
                verify=False,
                report=False,
            )
    except Exception as exc:  # torch.onnx's failures come as many types too
        raise ExportError(
            f"exporting {spec.name} to onnx failed: {brief_reason(direct_error)}; torch.onnx also "
            f"failed: {brief_reason(exc)}"
        ) from exc
    return program.model_proto


def _set_metadata(model: onnx.ModelProto, metadata: Mapping[str, str]) -> None:
    existing: Dict[str, str] = {p.key: p.value for p in model.metadata_props}
    existing.update(metadata)
    del model.metadata_props[:]
    for key, value in existing.items():
        model.metadata_props.add(key=key, value=value)


def _shapes_for_signature(module: nn.Module, per_input: Tuple[Any, ...]) -> Any:
    """``torch.export``'s ``dynamic_shapes`` for ``module.forward``: one entry per positional
    parameter, or all of them under ``*args`` for a ``forward(*args)``."""
    import inspect

    parameters = list(inspect.signature(module.forward).parameters.values())
    if parameters and parameters[0].kind is inspect.Parameter.VAR_POSITIONAL:
        return (per_input,)
    return per_input
