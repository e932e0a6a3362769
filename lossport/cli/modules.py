"""What ``export module`` and ``validate module`` share: ``SOURCE:FACTORY``, ``--input``
declarations, ``--no-grad``, and ``--specs`` for user spec files.

``--input NAME:DTYPE[DIM,...]`` with an optional ``=LOW..HIGH`` sampling range, e.g.
``x:float32[batch,3,height,width]=0..1`` or ``labels:int64[batch]=0..9``. DTYPE is float32 or
int64 (int64 needs a range). A DIM is an int (fixed), a name (dynamic; inputs sharing a name
share the axis) or ``name=SIZE`` (dynamic, exported and first tested at SIZE; default 8).
Float inputs are differentiable unless named by ``--no-grad``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import click
from torch import nn

from lossport import catalog
from lossport.errors import ConfigError, brief_reason
from lossport.io.python_source import import_source
from lossport.spec import Spec, TensorSpec
from lossport.spec.domains import Integers, Interval, Real
from lossport.spec.module_spec import DTYPES, spec_from_declarations

_INPUT = re.compile(r"^(?P<name>[A-Za-z_]\w*):(?P<dtype>\w+)\[(?P<dims>[^\]]*)\](?:=(?P<range>.+))?$")
_DIM = re.compile(r"^(?:(?P<size>\d+)|(?P<name>[A-Za-z_]\w*)(?:=(?P<export>\d+))?)$")


def _load_specs(context: click.Context, parameter: click.Parameter, values: Sequence[str]) -> None:
    import os

    for source in values:
        catalog.load_specs(source)
    if values:  # --jobs workers (spawned processes) load them through the variable
        known = [s for s in os.environ.get(catalog.SPECS_ENV, "").split(os.pathsep) if s]
        os.environ[catalog.SPECS_ENV] = os.pathsep.join(
            known + [os.path.abspath(v) if v.endswith(".py") else v for v in values]
        )


specs_option = click.option(
    "--specs",
    multiple=True,
    metavar="FILE_OR_MODULE",
    expose_value=False,
    is_eager=True,
    callback=_load_specs,
    help="Python file or module calling lossport.register(Spec(...)) (repeatable; also the "
    "LOSSPORT_SPECS variable and the lossport.specs entry points).",
)


@dataclass
class Declared:
    inputs: List[TensorSpec]
    export_sizes: Dict[str, int]


def parse_inputs(texts: Sequence[str], no_grad: Sequence[str]) -> Declared:
    """``--input`` declarations (see the module docstring) as tensor specs and export sizes."""
    if not texts:
        raise ConfigError(
            "give every forward argument as --input NAME:DTYPE[DIMS], e.g. "
            "--input x:float32[batch,3,height,width]=0..1"
        )
    inputs: List[TensorSpec] = []
    sizes: Dict[str, int] = {}
    for text in texts:
        match = _INPUT.match(text.replace(" ", ""))
        if not match:
            raise ConfigError(
                f"--input {text!r}: expected NAME:DTYPE[DIM,...] with an optional "
                f"=LOW..HIGH, e.g. x:float32[batch,3,64,64]=0..1"
            )
        name, dtype = match["name"], match["dtype"]
        if dtype not in DTYPES:
            raise ConfigError(f"--input {text!r}: dtype {dtype} is not one of {', '.join(DTYPES)}")
        shape = (
            tuple(_dim(text, part, sizes) for part in match["dims"].split(",") if part)
            if match["dims"]
            else ()
        )
        domain = _domain(text, dtype, match["range"])
        inputs.append(
            TensorSpec(name, shape, domain, differentiable=dtype == "float32" and name not in no_grad)
        )
    unknown = sorted(set(no_grad) - {t.name for t in inputs})
    if unknown:
        raise ConfigError(f"--no-grad {', '.join(unknown)}: no such --input")
    if len({t.name for t in inputs}) != len(inputs):
        raise ConfigError("--input names must be unique")
    return Declared(inputs, sizes)


def _dim(text: str, part: str, sizes: Dict[str, int]):
    match = _DIM.match(part)
    if not match:
        raise ConfigError(f"--input {text!r}: dim {part!r} is not an int, a name or name=SIZE")
    if match["size"] is not None:
        return int(match["size"])
    name = match["name"]
    if match["export"] is not None:
        size = int(match["export"])
        if sizes.setdefault(name, size) != size:
            raise ConfigError(f"--input {text!r}: {name}={size}, but {name}={sizes[name]} elsewhere")
    return name


def _domain(text: str, dtype: str, value_range: Any):
    if value_range is None:
        if dtype == "int64":
            raise ConfigError(f"--input {text!r}: an int64 input needs its range, e.g. =0..9")
        return Real()
    low, sep, high = value_range.partition("..")
    try:
        if not sep:
            raise ValueError
        if dtype == "int64":
            bounds = int(low), int(high)
            domain = Integers(*bounds)
        else:
            bounds = float(low), float(high)
            domain = Interval(*bounds)
    except ValueError:
        raise ConfigError(f"--input {text!r}: the range must be LOW..HIGH numbers") from None
    if not bounds[0] <= bounds[1] or any(abs(b) == float("inf") or b != b for b in bounds):
        raise ConfigError(f"--input {text!r}: the range must be finite with LOW <= HIGH")
    return domain


def load_factory(target: str) -> Tuple[str, Any]:
    """``SOURCE:FACTORY`` -> ``(name, factory)``: an ``nn.Module`` subclass or a callable
    returning a module, from a ``.py`` file or an importable module."""
    source, sep, attribute = target.rpartition(":")
    if not sep or not source or not attribute:
        raise ConfigError(f"{target!r}: expected SOURCE:FACTORY, e.g. my_losses.py:PerceptualLoss")
    module = import_source(source, what="module source")
    factory: Any = module
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise ConfigError(f"{source} has no {attribute!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise ConfigError(f"{target}: {attribute} is not a class or function")
    return attribute.split(".")[-1], factory


def build_module(factory: Any, settings: Mapping[str, str]) -> Tuple[nn.Module, Dict[str, Any]]:
    """``factory(**settings)`` with each value read as JSON where it parses (else a string)."""
    config = {key: _value(key, value) for key, value in settings.items()}
    try:
        module = factory(**config)
    except Exception as exc:  # the user's constructor: any error, in one line
        raise ConfigError(
            f"{getattr(factory, '__name__', factory)}({_shown(config)}) failed: {brief_reason(exc)}"
        ) from None
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"{getattr(factory, '__name__', factory)}(...) returned a "
            f"{type(module).__name__}, not a torch.nn.Module"
        )
    return module.eval(), config


def _value(key: str, text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ConfigError(f"--set {key}={text}: {constant} is not a finite number")

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError:
        return text


def _shown(config: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in config.items())


def module_spec(
    target: str, inputs: Sequence[str], no_grad: Sequence[str], settings: Mapping[str, str]
) -> Tuple[Spec, nn.Module]:
    """The spec and module of ``export module`` / ``validate module``."""
    name, factory = load_factory(target)
    declared = parse_inputs(inputs, no_grad)
    module, config = build_module(factory, settings)
    spec = spec_from_declarations(
        module, declared.inputs, declared.export_sizes, name=name, build=lambda **_: module, config=config
    )
    return spec, module
