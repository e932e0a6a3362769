"""Gradient graphs: ``inputs -> (outputs..., d objective / d input for each differentiable input)``.

ONNX cannot express autograd, and ``torch.onnx`` cannot export it, so for ONNX we trace the
forward *and* backward pass into one forward-only graph:

1. ``torch.func.grad`` computes outputs and input gradients;
2. ``make_fx(tracing_mode="symbolic")`` traces that into an aten graph with symbolic shapes,
   decomposing backward ops into forward ops (core aten decompositions, plus our own for ops
   that have none with an ONNX translation: ``convolution_backward``);
3. the parameters enter as real tensors and become graph constants, and the resulting
   ``GraphModule`` is exported like any module (dynamic axes intact).

For TorchScript, :func:`torchscript_gradient_module` wraps the module in a scripted module that
runs ``torch.autograd.grad`` itself, so the artifact returns the same extra outputs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Sequence

import torch
from torch import nn
from torch._decomp import core_aten_decompositions
from torch.fx.experimental import _config as fx_config
from torch.fx.experimental.proxy_tensor import make_fx

from lossport.flatten import distinct_outputs, flatten_outputs
from lossport.registry import Spec

aten = torch.ops.aten


def gradient_names(spec: Spec) -> List[str]:
    """Output names of the gradients, in the order the gradient graphs return them."""
    return [f"grad_{name}" for name in spec.differentiable_inputs]


def _convolution_input_backward(grad_output, input, weight, bias_sizes, stride, padding,
                                dilation, transposed, output_padding, groups, output_mask):
    """Input gradient of a (non-transposed) N-d convolution as a transposed convolution.

    ONNX's ConvTranspose needs a static ``output_padding``, which depends on the input size.
    Instead: the transposed convolution without padding gives the gradient of the padded input
    (``(out - 1) * stride + dilation * (k - 1) + 1`` positions per spatial dim); it is padded at
    the end by ``stride - 1`` zeros (trailing input positions no window reached; never more
    than that many are missing) and sliced to ``[padding, padding + in)``. Every size stays
    symbolic. Weight and bias gradients are not needed: parameters are graph constants.
    """
    if transposed or output_mask[1] or output_mask[2]:
        return NotImplemented
    spatial = len(stride)
    full = aten.convolution(grad_output, weight, None, stride, [0] * spatial, dilation, True,
                            [0] * spatial, groups)
    pads: List[int] = []
    for dim in reversed(range(spatial)):
        pads += [0, stride[dim] - 1]
    grad_input = aten.constant_pad_nd(full, pads, 0.0)
    for dim in range(spatial):
        grad_input = aten.slice(grad_input, 2 + dim, padding[dim], padding[dim] + input.shape[2 + dim])
    return grad_input, None, None


def _decompositions() -> Dict[Any, Callable]:
    table = dict(core_aten_decompositions())
    table[aten.convolution_backward.default] = _convolution_input_backward
    return table


@contextlib.contextmanager
def _tracing_for_export() -> Iterator[None]:
    """Mark the trace as an export trace, as ``torch.export`` does.

    Modules skip their eager-only input checks (which read tensor values) when
    ``torch.compiler.is_compiling()`` is true; ``make_fx`` does not set that flag itself.
    """
    previous = torch.compiler._is_compiling_flag
    torch.compiler._is_compiling_flag = True
    try:
        yield
    finally:
        torch.compiler._is_compiling_flag = previous


def gradient_program(module: nn.Module, spec: Spec, example: Sequence[torch.Tensor]) -> torch.fx.GraphModule:
    """A forward-only ``GraphModule`` computing ``(*outputs, *input_gradients)`` of ``module``.

    ``example`` fixes dtypes and ranks only: input shapes are traced symbolically. Parameters
    and buffers enter the trace as real tensors, so they become graph constants with concrete
    shapes (symbolic parameter shapes would multiply the symbolic-shape reasoning many times
    over for no benefit).
    """
    diff_positions = [i for i, t in enumerate(spec.inputs) if t.differentiable]

    def program(*inputs):
        def objective(*diff):
            full = list(inputs)
            for position, value in zip(diff_positions, diff):
                full[position] = value
            outputs = flatten_outputs(module(*full))
            return spec.objective(outputs[spec.grad_output_index]), outputs

        argnums = tuple(range(len(diff_positions)))
        grads, outputs = torch.func.grad(objective, argnums=argnums, has_aux=True)(
            *[inputs[i] for i in diff_positions])
        return distinct_outputs((*outputs, *grads))

    # No duck shaping: equal example sizes (e.g. a square image) must stay separate symbols.
    with _tracing_for_export(), fx_config.patch(use_duck_shape=False), _frozen(module):
        return make_fx(program, tracing_mode="symbolic", decomposition_table=_decompositions(),
                       _allow_non_fake_inputs=True)(*example)


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Parameters without ``requires_grad`` for the trace: only input gradients are wanted."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


# -- TorchScript ------------------------------------------------------------------------------

_WRAPPER_TEMPLATE = '''
from typing import Dict, List, Optional, Tuple
import torch
from {objective_module} import {objective_name} as _objective


def _or_zeros(grad: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    if grad is None:
        return torch.zeros_like(like)
    return grad


class GradientWrapper(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, {arguments}) -> Tuple[{return_types}]:
        if not torch.is_grad_enabled():
            raise RuntimeError("this lossport gradient artifact computes input gradients: call it "
                               "with grad mode enabled (not under torch.no_grad / NoGradGuard)")
{requires_grad}
        out = self.inner({call})
        grads = torch.autograd.grad([_objective({grad_output})], [{diff_names}],
                                    allow_unused=True)
        return ({flat_outputs}, {grad_items})
'''


def _output_paths(output: Any, path: str = "out") -> List[str]:
    """Accessor expressions for each flattened output, e.g. ``out[1]["ranking"]``."""
    if isinstance(output, torch.Tensor):
        return [path]
    if isinstance(output, dict):
        return [p for key, value in output.items() for p in _output_paths(value, f"{path}[{key!r}]")]
    return [p for i, value in enumerate(output) for p in _output_paths(value, f"{path}[{i}]")]


def torchscript_gradient_module(module: nn.Module, spec: Spec,
                                example: Sequence[torch.Tensor]) -> torch.jit.ScriptModule:
    """A scripted module returning ``(*outputs, *input_gradients)`` via ``torch.autograd.grad``.

    Callers must leave grad mode on (TorchScript cannot switch it on inside the module).

    TorchScript needs a fixed signature, so the wrapper's source is generated for the spec's
    inputs and the module's output structure (observed on ``example``) and compiled from a
    temporary file.
    """
    with torch.no_grad():
        paths = _output_paths(module(*example))
    argument_names = [t.name for t in spec.inputs]
    diff_names = list(spec.differentiable_inputs)
    source = _WRAPPER_TEMPLATE.format(
        objective_module=spec.objective.__module__,
        objective_name=spec.objective.__name__,
        arguments=", ".join(f"{n}: torch.Tensor" for n in argument_names),
        return_types=", ".join(["torch.Tensor"] * (len(paths) + len(diff_names))),
        requires_grad="\n".join(f"        {n} = {n}.detach().requires_grad_(True)" for n in diff_names),
        call=", ".join(argument_names),
        grad_output=paths[spec.grad_output_index],
        diff_names=", ".join(diff_names),
        flat_outputs=", ".join(f"{p}.detach()" for p in paths),
        grad_items=", ".join(f"_or_zeros(grads[{i}], {n})" for i, n in enumerate(diff_names)),
    )
    module_name = f"_lossport_gradient_{spec.name}"
    with tempfile.TemporaryDirectory(prefix="lossport-") as folder:
        path = Path(folder) / f"{module_name}.py"
        path.write_text(source)
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        loaded = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = loaded  # TorchScript resolves globals through sys.modules
        try:
            loader_spec.loader.exec_module(loaded)
            return torch.jit.script(loaded.GradientWrapper(module))
        finally:
            del sys.modules[module_name]
