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
