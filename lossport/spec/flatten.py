"""Flatten a module's (possibly nested) outputs into a tuple of tensors.

Dicts flatten in insertion order, tuples and lists in order: the same order the ONNX exporter
uses, so ``spec.outputs[i]`` names ``flatten_outputs(out)[i]`` in every runtime.
"""

from __future__ import annotations

from typing import Any, Tuple

import torch


def flatten_outputs(output: Any) -> Tuple[torch.Tensor, ...]:
    if isinstance(output, torch.Tensor):
        return (output,)
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return tuple(t for item in output for t in flatten_outputs(item))
    raise TypeError(f"cannot flatten output of type {type(output).__name__}")


def distinct_outputs(
    outputs: Tuple[torch.Tensor, ...], inputs: Tuple[torch.Tensor, ...] = ()
) -> Tuple[torch.Tensor, ...]:
    """``outputs`` with every repeat of an already returned tensor, and every one of
    ``inputs`` returned as is, replaced by a copy.

    A graph that returns one value under two names (e.g. a loss returning its total both as
    ``loss`` and as ``total``), or an input as an output (``x.contiguous()``), loses a name in
    ONNX; a copy gives each output its own value.
    """
    seen = list(inputs)
    result = []
    for tensor in outputs:
        repeated = any(tensor is earlier for earlier in seen)
        result.append(tensor.clone() if repeated else tensor)
        seen.append(tensor)
    return tuple(result)
