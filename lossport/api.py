"""The public API: export and validate any ``nn.Module``, PyTorch's conventions throughout.

    lossport.export_module(MyLoss(), (x, y), "my_loss.onnx", with_grad=True,
                           dynamic={"x": {0: "batch"}, "y": {0: "batch"}})
    report = lossport.validate_module(MyLoss(), (x, y), dynamic={"x": {0: "batch"}, ...})
    assert report.passed, report.summary()

``example_inputs`` is a tuple of float32 / int64 tensors; with ``with_grad=True`` the gradient is
taken w.r.t. every example tensor with ``requires_grad=True``, of ``objective(first output)``
(default: its sum). ``dynamic`` follows torch.export (``{"x": {0: "batch", 2: "height"}}``;
shared names share an axis). Input names default to ``forward``'s parameter names, outputs to
a dict output's keys, else ``output_0``, ``output_1``, ... The module is put in eval mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from lossport.errors import ConfigError
from lossport.export import ExportResult, export_artifact
from lossport.export.onnx.writer import DEFAULT_OPSET
from lossport.spec.module_spec import Dynamic, spec_from_examples
from lossport.validation.export_check import verify_export
from lossport.validation.registry import BACKENDS
from lossport.validation.results import SpecReport
from lossport.validation.suite import DEFAULT_SEED, ValidationOptions, validate_spec

FORMAT_NAMES = ("onnx", "torchscript")


def _spec(module, example_inputs, dynamic, input_names, output_names, objective, shapes=None):
    name = type(module).__name__.lower() if isinstance(module, nn.Module) else "module"
    return spec_from_examples(
        module,
        example_inputs,
        name=name,
        dynamic=dynamic,
        input_names=input_names,
        output_names=output_names,
        objective=objective,
        shapes=shapes,
    )


def export_module(
    module: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    path: Union[str, Path],
    *,
    format: str = "onnx",
    with_grad: bool = False,
    dynamic: Optional[Dynamic] = None,
    input_names: Optional[Sequence[str]] = None,
    output_names: Optional[Sequence[str]] = None,
    opset: Optional[int] = None,
    check: bool = True,
    objective: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> ExportResult:
    """Export ``module`` to ``path`` (``format`` ``"onnx"`` or ``"torchscript"``), atomically,
    and with ``check`` run the written file against eager PyTorch at the example shape and at a
    shape differing in every dynamic axis first. With ``with_grad`` the artifact also outputs
    ``grad_<input>`` for each example input with ``requires_grad=True``.

    Raises :class:`~lossport.errors.LossportError` (nothing is written) on bad arguments, a
    failed export or a failed check.
    """
    if format not in FORMAT_NAMES:
        raise ConfigError(f"format={format!r}: use 'onnx' or 'torchscript'")
    spec = _spec(module, example_inputs, dynamic, input_names, output_names, objective)
    return export_artifact(
        spec,
        fmt=format,
        path=Path(path),
        config={},
        module=module,
        with_grad=with_grad,
        opset=DEFAULT_OPSET if opset is None else opset,
        verify=verify_export if check else None,
    )


def validate_module(
    module: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    *,
    dynamic: Optional[Dynamic] = None,
    backends: Optional[Sequence[str]] = None,
    shapes: Optional[Sequence[Mapping[str, int]]] = None,
    atol: Optional[float] = None,
    rtol: Optional[float] = None,
    seed: int = DEFAULT_SEED,
    input_names: Optional[Sequence[str]] = None,
    output_names: Optional[Sequence[str]] = None,
    objective: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    require_cuda: bool = False,
) -> SpecReport:
    """Export ``module`` to every backend (default: all of ``BACKENDS``; CUDA ones are skipped
    with the reason where they cannot run) and compare outputs and input gradients with eager
    PyTorch (float64 where the module runs in float64) at the example shape (the examples
    themselves) and at ``shapes`` (default: two shapes differing in every dynamic axis, values
    drawn from the examples' ranges). Returns the report: ``.passed``, ``.to_json()`` (the
    CLI's ``--json`` schema for one spec), ``.summary()``."""
    extra = [dict(s) for s in shapes] if shapes is not None else None
    spec = _spec(module, example_inputs, dynamic, input_names, output_names, objective, extra)
    options = ValidationOptions(
        backends=tuple(backends or BACKENDS), seed=seed, atol=atol, rtol=rtol, require_cuda=require_cuda
    )
    return validate_spec(spec, {}, options, module=module)
