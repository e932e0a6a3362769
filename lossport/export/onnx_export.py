"""ONNX artifacts: the dynamo exporter, dynamic axes from the spec, a full checker pass, and
the metadata in ``metadata_props``."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Sequence

import onnx
import torch
from torch import nn

from lossport.export.gradient import gradient_program
from lossport.flatten import FlatOutputs
from lossport.registry import Spec

MIN_OPSET = 18
DEFAULT_OPSET = 18


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """The exporter prints progress to stdout and logs warnings for optional packages
    (e.g. torchvision ops); keep the CLI output to what lossport says."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def dynamic_shapes(spec: Spec, dynamic: Sequence[str]) -> tuple:
    """``torch.export`` dynamic shapes: one ``Dim`` per dynamic name, shared across inputs."""
    dims = {name: torch.export.Dim(name, min=1) for name in dynamic}
    return tuple({axis: dims[d] for axis, d in enumerate(t.shape) if d in dims} or None
                 for t in spec.inputs)


def write_onnx(module: nn.Module, spec: Spec, example: Sequence[torch.Tensor], path: Path,
               metadata: Mapping[str, str], *, dynamic: Sequence[str], opset: int,
               output_names: List[str], with_grad: bool) -> None:
    shapes = dynamic_shapes(spec, dynamic)
    if with_grad:
        program = gradient_program(module, spec, example)
    else:  # FlatOutputs.forward(*inputs): dynamic shapes go under the varargs' name
        program, shapes = FlatOutputs(module), {"inputs": shapes}
    with quiet_exporter():
        torch.onnx.export(
            program, tuple(example), str(path), dynamo=True, opset_version=opset,
            dynamic_shapes=shapes,
            input_names=[t.name for t in spec.inputs], output_names=output_names,
            # The exporter's graph optimizer folds scalars within 1e-8 of zero to zero
            # (onnxscript 0.7: `x + 1e-9` -> `x`), silently removing small eps terms.
            # ONNX Runtime optimizes the graph itself when a session loads it.
            external_data=False, optimize=False, verbose=False,
        )
    model = onnx.load(str(path))
    _set_metadata(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def _set_metadata(model: onnx.ModelProto, metadata: Mapping[str, str]) -> None:
    existing: Dict[str, str] = {p.key: p.value for p in model.metadata_props}
    existing.update(metadata)
    del model.metadata_props[:]
    for key, value in existing.items():
        model.metadata_props.add(key=key, value=value)
