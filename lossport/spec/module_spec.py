"""A spec for any ``nn.Module``: what ``export_module`` / ``validate_module`` and the CLI's
``export module`` / ``validate module`` build from a user's module.

Two ways in, one result (a :class:`~lossport.spec.Spec` whose ``build`` returns the module):

- :func:`spec_from_examples`: example tensors, PyTorch's conventions. A dim named in
  ``dynamic`` (torch.export's ``{"x": {0: "batch"}}``; shared names share an axis) is dynamic,
  every other dim is fixed at the example's size. Inputs that ``requires_grad`` are
  differentiable. The export shape is the examples' own (the examples themselves are the export
  and first test inputs); other test shapes differ in every dynamic axis.
- :func:`spec_from_declarations`: declared inputs (name, dtype, dims, value range), as the CLI
  parses them from ``x:float32[batch,3,height=64,width=64]=0..1``.

Output names: a dict output's keys, else ``output_0``, ``output_1``, ... (found by running the
module once); the gradient objective is ``sum`` of the first output unless given.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from lossport.errors import ConfigError
from lossport.spec.definition import Objective, Spec, TensorSpec, output_sum
from lossport.spec.domains import Integers, Interval, Real
from lossport.spec.flatten import flatten_outputs
from lossport.spec.limits import MAX_DIM

Dynamic = Mapping[str, Mapping[int, str]]
DTYPES = {"float32": torch.float32, "int64": torch.int64}
DEFAULT_DIM_SIZE = 8
_INPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
# Other test shapes: every dynamic dim grown by these steps (differs from the export shape in
# every axis, odd and even steps).
SHAPE_STEPS = (1, 3)


def input_names_of(module: nn.Module, count: int) -> List[str]:
    """``forward``'s parameter names for ``count`` positional inputs, else ``input_0``, ..."""
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= count:
        return positional[:count]
    return [f"input_{i}" for i in range(count)]


def output_names_of(output: Any) -> List[str]:
    """A dict's keys (nested dicts joined with ``.``), else ``output_0``, ``output_1``, ..."""
    if isinstance(output, Mapping):
        names = []
        for key, value in output.items():
            inner = output_names_of(value)
            names += [str(key)] if len(inner) == 1 else [f"{key}.{n}" for n in inner]
        return names
    return [f"output_{i}" for i in range(len(flatten_outputs(output)))]


def _check_names(names: Sequence[str], what: str) -> None:
    """Unique; inputs are identifiers (they become argument names), outputs may hold ``. -``."""
    if len(set(names)) != len(names):
        raise ConfigError(f"{what} names must be unique, got {list(names)}")
    for name in names:
        pattern = _INPUT_NAME if what == "input" else _OUTPUT_NAME
        if not pattern.fullmatch(name):
            raise ConfigError(
                f"{what} name {name!r}: start with a letter or _, then up to 63 "
                f"letters, digits, _{'' if what == 'input' else ' . -'}"
            )


def _other_shapes(sizes: Mapping[str, int]) -> Tuple[Dict[str, int], ...]:
    return tuple({k: v + step for k, v in sizes.items()} for step in SHAPE_STEPS if sizes)


def _discover_outputs(
    module: nn.Module, inputs: Sequence[torch.Tensor], output_names: Optional[Sequence[str]]
) -> Tuple[str, ...]:
    try:
        with torch.no_grad():
            output = module(*inputs)
        found = output_names_of(output)
    except Exception as exc:  # the user's module: any error is theirs to see, in one line
        raise ConfigError(
            f"running the module on its example inputs failed: "
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        ) from exc
    if not found:
        raise ConfigError("the module returns no tensor; lossport exports tensor outputs")
    if output_names is not None:
        if len(output_names) != len(found):
            raise ConfigError(
                f"output_names has {len(output_names)} names, the module returns {len(found)} tensors"
            )
        found = list(output_names)
    _check_names(found, "output")
    return tuple(found)


def _domain_of(example: torch.Tensor) -> Any:
    """The value range the example shows: its [min, max] (so other test shapes sample valid
    values), or a normal distribution when the example is constant."""
    if example.numel() == 0:
        return Real() if example.is_floating_point() else Integers(0, 0)
    low, high = example.min().item(), example.max().item()
    if not example.is_floating_point():
        return Integers(int(low), int(high))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(
            "example inputs must be finite (they set the range other test inputs are drawn from)"
        )
    return Interval(float(low), float(high)) if high > low else Real(scale=max(abs(low), 1.0))


def spec_from_examples(
    module: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    *,
    name: str,
    dynamic: Optional[Dynamic] = None,
    input_names: Optional[Sequence[str]] = None,
    output_names: Optional[Sequence[str]] = None,
    objective: Optional[Objective] = None,
    shapes: Optional[Sequence[Mapping[str, int]]] = None,
    kind: str = "model",
) -> Spec:
    """The spec of ``module`` called as ``module(*example_inputs)`` (see the module docstring)."""
    if not isinstance(module, nn.Module):
        raise ConfigError(f"expected a torch.nn.Module, got {type(module).__name__}")
    examples = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    for index, tensor in enumerate(examples):
        if not isinstance(tensor, torch.Tensor):
            raise ConfigError(f"example input {index} is a {type(tensor).__name__}; pass a tuple of tensors")
        if tensor.dtype not in (torch.float32, torch.int64):
            raise ConfigError(
                f"example input {index} has dtype {tensor.dtype}; lossport exports "
                f"float32 and int64 inputs (convert with .float() or .long())"
            )
    names = list(input_names) if input_names is not None else input_names_of(module, len(examples))
    if len(names) != len(examples):
        raise ConfigError(f"input_names has {len(names)} names for {len(examples)} example inputs")
    _check_names(names, "input")
    dynamic = dict(dynamic or {})
    unknown = sorted(set(dynamic) - set(names))
    if unknown:
        raise ConfigError(f"dynamic names inputs {unknown}, but the inputs are {names}")
    sizes: Dict[str, int] = {}
    tensors = []
    for input_name, example in zip(names, examples):
        axes = dict(dynamic.get(input_name, {}))
        bad = [axis for axis in axes if not -example.dim() <= int(axis) < example.dim()]
        if bad:
            raise ConfigError(
                f"dynamic[{input_name!r}] names axes {bad}, but {input_name} has {example.dim()} dims"
            )
        axes = {int(axis) % example.dim(): dim for axis, dim in axes.items()}
        shape: List[Union[str, int]] = []
        for axis, size in enumerate(example.shape):
            dim = axes.get(axis)
            if dim is None:
                shape.append(int(size))
                continue
            if sizes.setdefault(dim, int(size)) != int(size):
                raise ConfigError(
                    f"dynamic axis {dim!r} has size {sizes[dim]} in one example "
                    f"and {int(size)} in another; a shared name means one size"
                )
            shape.append(dim)
        tensors.append(
            TensorSpec(
                input_name,
                tuple(shape),
                _domain_of(example),
                differentiable=example.is_floating_point() and example.requires_grad,
            )
        )
    outputs = _discover_outputs(module, examples, output_names)
    frozen = tuple(t.detach().clone() for t in examples)

    def sampler(
        spec: Spec, at: Mapping[str, int], generator: torch.Generator, dtype: torch.dtype
    ) -> Tuple[torch.Tensor, ...]:
        if all(at.get(k) == v for k, v in sizes.items()):
            return tuple(t.to(dtype) if t.is_floating_point() else t.clone() for t in frozen)
        return tuple(t.domain.sample(spec.concrete_shape(t, at), at, generator, dtype) for t in spec.inputs)

    return Spec(
        name=name,
        build=lambda: module,
        inputs=tuple(tensors),
        outputs=outputs,
        shapes=(dict(sizes), *(shapes if shapes is not None else _other_shapes(sizes))),
        source="user module",
        summary=f"{type(module).__name__} (a user module)",
        kind=kind,
        sampler=sampler,
        objective=objective or output_sum,
        float64=_runs_in_float64(module, examples),
    )


def spec_from_declarations(
    module: nn.Module,
    inputs: Sequence[TensorSpec],
    export_sizes: Mapping[str, int],
    *,
    name: str,
    output_names: Optional[Sequence[str]] = None,
    objective: Optional[Objective] = None,
    kind: str = "model",
    build: Optional[Callable[..., nn.Module]] = None,
    config: Optional[Mapping[str, Any]] = None,
) -> Spec:
    """The spec of ``module`` with declared ``inputs``; dynamic dims get ``export_sizes`` (or
    ``DEFAULT_DIM_SIZE``) at export, and grow by ``SHAPE_STEPS`` for the other test shapes.
    ``build``/``config``: how to rebuild the module (recorded in artifacts), default the module
    itself."""
    _check_names([t.name for t in inputs], "input")
    dims = [d for t in inputs for d in t.shape if isinstance(d, str)]
    sizes = {d: int(export_sizes.get(d, DEFAULT_DIM_SIZE)) for d in dict.fromkeys(dims)}
    for dim, size in sizes.items():
        if not 1 <= size <= MAX_DIM:
            raise ConfigError(f"dim {dim}={size}: sizes are from 1 to {MAX_DIM}")
    probe = Spec(
        name=name,
        build=lambda: module,
        inputs=tuple(inputs),
        outputs=("probe",),
        shapes=(sizes,),
        source="user module",
        summary="",
    )
    example = probe.sample_inputs(sizes, seed=0)
    outputs = _discover_outputs(module, example, output_names)
    return Spec(
        name=name,
        build=build or (lambda: module),
        inputs=tuple(inputs),
        outputs=outputs,
        shapes=(sizes, *_other_shapes(sizes)),
        source="user module",
        summary=f"{type(module).__name__} (a user module)",
        kind=kind,
        objective=objective or output_sum,
        config=dict(config or {}),
        float64=_runs_in_float64(module, example),
    )


def _runs_in_float64(module: nn.Module, examples: Sequence[torch.Tensor]) -> bool:
    """Whether a float64 copy of ``module`` runs on float64 examples (the reference is then
    float64; a module that cannot is compared in float32)."""
    import copy

    try:
        double = copy.deepcopy(module).to(torch.float64)
        with torch.no_grad():
            double(*[t.double() if t.is_floating_point() else t for t in examples])
    except Exception:  # any failure means: not float64-capable
        return False
    return True
