"""The spec model: one declarative :class:`Spec` per exportable thing.

A spec says everything the exporters, the validator, the CLI and the tests need to know about a
loss or model, as data: how to build it from a config, its named inputs with symbolic shapes and
value domains, which inputs are differentiable, its output names, the shapes to test at, its
edge cases, its tolerance class, where it comes from and what to compare it with.

Specs are registered next to the code they describe (``register(Spec(...))`` at the bottom of
the module that defines the loss or model, see :mod:`lossport.spec.registration`) and found by name through
:mod:`lossport.catalog`. Nothing outside a spec branches on a spec's name.

Symbolic shapes: a shape entry is an ``int`` (fixed), the name of a config key (fixed by the
config, e.g. ``"num_classes"``), or any other name (a dynamic dimension, e.g. ``"batch"``,
exported as a dynamic axis; inputs sharing a name share the axis).
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from lossport.errors import ConfigError
from lossport.spec.domains import Domain
from lossport.spec.limits import MAX_DIM, MAX_ELEMENTS, MAX_MODULE_BYTES

Inputs = Tuple[torch.Tensor, ...]
Sizes = Mapping[str, int]
EdgeCases = Callable[[torch.dtype], Mapping[str, Inputs]]
Sampler = Callable[["Spec", Sizes, torch.Generator, torch.dtype], Inputs]
Objective = Callable[[torch.Tensor], torch.Tensor]
Metadata = Callable[[Mapping[str, Any]], Mapping[str, str]]


def output_sum(output: torch.Tensor) -> torch.Tensor:
    """Default gradient objective: the sum of the output (the loss itself for a scalar loss).

    Objectives are plain TorchScript-compatible functions ``Tensor -> Tensor``: the
    TorchScript gradient artifact compiles them.
    """
    return output.sum()


@dataclass(frozen=True)
class TensorSpec:
    """One named input: symbolic shape, value domain, and whether gradients flow to it."""

    name: str
    shape: Tuple[Union[str, int], ...]
    domain: Domain
    differentiable: bool = False

    def __post_init__(self) -> None:
        if self.differentiable and not self.domain.is_float:
            raise ValueError(f"input {self.name!r}: only float inputs can be differentiable")

    def describe_shape(self) -> str:
        return "[" + ", ".join(str(d) for d in self.shape) + "]"


@dataclass(frozen=True)
class Spec:
    """Everything lossport knows about one exportable loss or model.

    Attributes:
        name: the spec's unique name (``lossport export loss NAME``).
        build: callable that returns the ``nn.Module`` from keyword arguments (usually the class).
        inputs: the forward arguments used for export and validation, in order.
        outputs: names of the flattened outputs (a dict output flattens in insertion order).
        shapes: dynamic-dimension sizes to test at; ``shapes[0]`` is the export shape. Sizes
            there should be >= 2 so that no dynamic axis is specialised by the exporter.
        config: keyword arguments for ``build`` used by export and validation; merged over the
            constructor defaults, and overridable with ``--set key=value``.
        source: provenance, the document(s) the definition comes from.
        summary: one line on the definition and conventions, shown by ``lossport list``.
        peer: public implementation the tests compare against, or ``None``.
        kind: ``"loss"`` or ``"model"``.
        sampler: custom input sampler for inputs that are coupled (default: each input's domain).
        edge_cases: ``dtype -> {case name: inputs}`` for the spec's edge cases.
        tolerance: tolerance class name (see :mod:`lossport.validation.policy`).
        float64: whether the eager reference may run in float64.
        test_config: config overrides that tests and ``lossport validate`` use to keep runs
            fast (e.g. a small TIGAS); export uses ``config`` alone.
        grad_output: name of the output the gradient graphs differentiate (default: the first).
        objective: ``Tensor -> scalar`` applied to that output; the gradient graphs compute the
            gradient of the scalar w.r.t. each differentiable input (default: sum).
        metadata: ``config -> {key: value}`` extra artifact metadata (e.g. TIGAS's
            preprocessing contract under ``lossport.spec.preprocess``).
        variants: config overrides validated one by one by ``lossport validate`` (e.g. each
            TIGAS mode); default: the config alone.
        exact_gradient: ``False`` where the definition stops a gradient on purpose (CIoU's
            alpha), so autograd differs from finite differences by design; gradcheck then
            does not apply, while every runtime must still agree with eager autograd.
        weights_loader: ``(config, checkpoint file, trust) -> module`` for a spec whose trained
            weights come from a checkpoint file (an artifact records the file by name and
            sha256; ``lossport validate artifact --checkpoint FILE`` uses this to rebuild it).
        nonfinite_cases: validation case names (e.g. ``"edge:all_ignored"``) whose reference
            outputs may be NaN/Inf by definition; anywhere else a non-finite reference fails.
        limits: ``{config key: (low, high)}`` inclusive bounds of numeric config values, checked
            by :meth:`resolve_config` (on top of :mod:`lossport.spec.limits`).
    """

    name: str
    build: Callable[..., torch.nn.Module]
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[str, ...]
    shapes: Tuple[Sizes, ...]
    source: str
    summary: str
    config: Mapping[str, Any] = field(default_factory=dict)
    peer: Optional[str] = None
    kind: str = "loss"
    sampler: Optional[Sampler] = None
    edge_cases: Optional[EdgeCases] = None
    tolerance: str = "default"
    float64: bool = True
    test_config: Mapping[str, Any] = field(default_factory=dict)
    grad_output: Optional[str] = None
    objective: Objective = output_sum
    metadata: Optional[Metadata] = None
    variants: Tuple[Mapping[str, Any], ...] = ({},)
    exact_gradient: bool = True
    limits: Mapping[str, Tuple[float, float]] = field(default_factory=dict)
    nonfinite_cases: Tuple[str, ...] = ()
    weights_loader: Optional[Callable[[Mapping[str, Any], Path, bool], torch.nn.Module]] = None

    # -- configuration -------------------------------------------------------------------
    def default_config(self) -> Dict[str, Any]:
        """Constructor defaults that are plain JSON values, overlaid with ``self.config``."""
        defaults: Dict[str, Any] = {}
        for param in inspect.signature(self.build).parameters.values():
            if param.default is not inspect.Parameter.empty and _is_plain(param.default):
                defaults[param.name] = param.default
        defaults.update(self.config)
        return defaults

    def resolve_config(self, overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """The effective config: defaults plus ``overrides``, each key and type checked, every
        number finite and within :attr:`limits`, every size naming an input dim within
        ``MAX_DIM``."""
        config = self.default_config()
        for key, value in (overrides or {}).items():
            if key not in config:
                known = ", ".join(sorted(config)) or "none"
                raise ConfigError(f"{self.name} has no setting {key!r}; settable keys: {known}")
            config[key] = _coerce(self.name, key, value, config[key])
        self._check_bounds(config)
        return config

    def _check_bounds(self, config: Mapping[str, Any]) -> None:
        dims = {d for t in self.inputs for d in t.shape if isinstance(d, str)}
        for key, value in config.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if not math.isfinite(value):
                raise ConfigError(f"{self.name}: {key}={value} is not a finite number")
            low, high = self.limits.get(key, (-math.inf, MAX_DIM if key in dims else math.inf))
            if not low <= value <= high:
                raise ConfigError(f"{self.name}: {key}={value} is outside [{low:g}, {high:g}]")

    def instantiate(self, config: Optional[Mapping[str, Any]] = None) -> torch.nn.Module:
        """Build the module in eval mode from a resolved config (default: the spec's config).

        The module is first built on PyTorch's ``meta`` device (no memory) to refuse one whose
        parameters and buffers would exceed ``MAX_MODULE_BYTES``.
        """
        config = self.resolve_config() if config is None else dict(config)
        try:
            size = _module_bytes_on_meta(self.build, config)
            if size is not None and size > MAX_MODULE_BYTES:
                raise ConfigError(
                    f"{self.name}: config {json.dumps(config)} builds a module of "
                    f"{size / 1024**3:.1f} GiB of parameters and buffers, above "
                    f"the {MAX_MODULE_BYTES / 1024**3:.0f} GiB limit"
                )
            module = self.build(**config)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.name}: invalid config {json.dumps(config)}: {exc}") from exc
        return module.eval()

    # -- shapes and inputs ---------------------------------------------------------------
    def dynamic_dims(self, config: Optional[Mapping[str, Any]] = None) -> List[str]:
        """Names of the dynamic dimensions, in first-use order."""
        config = self.default_config() if config is None else config
        names: List[str] = []
        for tensor in self.inputs:
            for dim in tensor.shape:
                if isinstance(dim, str) and dim not in config and dim not in names:
                    names.append(dim)
        return names

    def sizes(self, shape_index: int = 0, config: Optional[Mapping[str, Any]] = None) -> Dict[str, int]:
        """Every symbolic name -> size: the dynamic sizes of ``shapes[i]`` plus int config values."""
        config = self.resolve_config() if config is None else config
        sizes = {k: v for k, v in config.items() if isinstance(v, int) and not isinstance(v, bool)}
        sizes.update(self.shapes[shape_index])
        return sizes

    def other_sizes(self, config: Mapping[str, Any], dynamic: Sequence[str]) -> Dict[str, int]:
        """Sizes that differ from the export shape in every ``dynamic`` dim (others unchanged):
        the first listed test shape that does so, else the export sizes with each dynamic dim
        + 1."""
        export = self.sizes(0, config)
        for index in range(1, len(self.shapes)):
            sizes = self.sizes(index, config)
            if all((sizes[d] != export[d]) == (d in dynamic) for d in self.dynamic_dims(config)):
                return sizes
        return {k: (v + 1 if k in dynamic else v) for k, v in export.items()}

    def concrete_shape(self, tensor: TensorSpec, sizes: Sizes) -> Tuple[int, ...]:
        return tuple(d if isinstance(d, int) else int(sizes[d]) for d in tensor.shape)

    def sample_inputs(self, sizes: Sizes, seed: int, dtype: torch.dtype = torch.float32) -> Inputs:
        """Deterministic valid inputs at ``sizes``; float inputs in ``dtype``."""
        for tensor in self.inputs:
            shape = self.concrete_shape(tensor, sizes)
            if math.prod(shape) > MAX_ELEMENTS:
                raise ConfigError(
                    f"{self.name}: input {tensor.name} of shape {list(shape)} has "
                    f"more than {MAX_ELEMENTS} elements"
                )
        generator = torch.Generator().manual_seed(seed)
        if self.sampler is not None:
            return tuple(self.sampler(self, sizes, generator, dtype))
        return tuple(
            t.domain.sample(self.concrete_shape(t, sizes), sizes, generator, dtype) for t in self.inputs
        )

    def edge_inputs(self, dtype: torch.dtype = torch.float32) -> Mapping[str, Inputs]:
        return {} if self.edge_cases is None else self.edge_cases(dtype)

    @property
    def grad_output_index(self) -> int:
        return 0 if self.grad_output is None else self.outputs.index(self.grad_output)

    @property
    def differentiable_inputs(self) -> Tuple[str, ...]:
        return tuple(t.name for t in self.inputs if t.differentiable)

    def describe(self) -> Dict[str, Any]:
        """JSON-ready description, as printed by ``lossport list --json``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "summary": self.summary,
            "config": self.default_config(),
            "inputs": [
                {
                    "name": t.name,
                    "shape": list(t.shape),
                    "domain": t.domain.describe(),
                    "differentiable": t.differentiable,
                }
                for t in self.inputs
            ],
            "outputs": list(self.outputs),
            "peer": self.peer,
            "tolerance": self.tolerance,
        }


def _module_bytes_on_meta(build: Callable[..., torch.nn.Module], config: Mapping[str, Any]) -> Optional[int]:
    """Bytes of parameters and buffers of ``build(**config)``, built without memory on the
    ``meta`` device; ``None`` when the module cannot be built there (it then builds for real,
    bounded by the spec's :attr:`Spec.limits`)."""
    try:
        with torch.device("meta"):
            module = build(**config)
    except Exception:  # construction code that needs real values (numpy, .item()) on meta
        return None
    return sum(t.numel() * t.element_size() for t in itertools.chain(module.parameters(), module.buffers()))


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return False


def _coerce(spec_name: str, key: str, value: Any, default: Any) -> Any:
    """Parse a ``--set`` value (string from the CLI, or a Python value) to the default's type."""
    if isinstance(value, str) and not isinstance(default, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            if default is not None:
                raise ConfigError(
                    f"{spec_name}: {key}={value!r} is not a valid "
                    f"{type(default).__name__} (default {default!r})"
                ) from None
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(
            f"{spec_name}: {key}={value!r} is not a valid {type(default).__name__} (default {default!r})"
        )
    return value
