"""Gradient programs: ``inputs -> (outputs..., d objective / d input for each differentiable input)``.

ONNX cannot express autograd, so for ONNX the forward *and* backward pass are traced into one
forward-only graph: :func:`gradient_function` computes outputs and input gradients with
``torch.func.grad``, and :mod:`lossport.export.onnx.tracing` traces it into aten ops (backward ops
decomposed into forward ops), with symbolic shapes and the parameters as constants.

For TorchScript, :func:`torchscript_gradient_module` wraps the module in a scripted module that
runs ``torch.autograd.grad`` itself, so the artifact returns the same extra outputs.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from lossport.spec import Spec
from lossport.spec.flatten import distinct_outputs, flatten_outputs


def gradient_names(spec: Spec) -> List[str]:
    """Output names of the gradients, in the order the gradient graphs return them."""
    return [f"grad_{name}" for name in spec.differentiable_inputs]


def gradient_function(module: nn.Module, spec: Spec) -> Callable[..., Tuple[torch.Tensor, ...]]:
    """``(*inputs) -> (*flattened outputs, *gradients of spec.objective per differentiable
    input)``, computed with ``torch.func.grad`` (traceable, unlike ``torch.autograd.grad``
    inside ``functionalize``)."""
    diff_positions = [i for i, t in enumerate(spec.inputs) if t.differentiable]

    def program(*inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        def objective(*diff):
            full = list(inputs)
            for position, value in zip(diff_positions, diff):
                full[position] = value
            outputs = flatten_outputs(module(*full))
            return spec.objective(outputs[spec.grad_output_index]), outputs

        argnums = tuple(range(len(diff_positions)))
        grads, outputs = torch.func.grad(objective, argnums=argnums, has_aux=True)(
            *[inputs[i] for i in diff_positions]
        )
        return distinct_outputs((*outputs, *grads), inputs)

    return program


# -- TorchScript ------------------------------------------------------------------------------

_WRAPPER_TEMPLATE = """
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
"""


def _output_paths(output: Any, path: str = "out") -> List[str]:
    """Accessor expressions for each flattened output, e.g. ``out[1]["ranking"]``."""
    if isinstance(output, torch.Tensor):
        return [path]
    if isinstance(output, dict):
        return [p for key, value in output.items() for p in _output_paths(value, f"{path}[{key!r}]")]
    return [p for i, value in enumerate(output) for p in _output_paths(value, f"{path}[{i}]")]


def torchscript_gradient_module(
    module: nn.Module, spec: Spec, example: Sequence[torch.Tensor], eager: Optional[nn.Module] = None
) -> torch.jit.ScriptModule:
    """A scripted module returning ``(*outputs, *input_gradients)`` via ``torch.autograd.grad``.

    Callers must leave grad mode on (TorchScript cannot switch it on inside the module).

    TorchScript needs a fixed signature, so the wrapper's source is generated for the spec's
    inputs and the module's output structure (observed on ``example``) and compiled from a
    temporary file. ``module`` may be already compiled (scripted or traced); ``eager`` is then
    the eager module, run to observe the output structure.
    """
    with torch.no_grad():
        paths = _output_paths((eager or module)(*example))
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
