"""Numerical primitives of TIGAS that script with TorchScript, export to ONNX, and behave
the same in every runtime.

All are elementwise or reduce over the last dimension; each docstring says which problem of
the plain formula (an ONNX gap, a per-runtime convention, a NaN gradient) it avoids.
"""

from __future__ import annotations

import math

import torch


def clean(x: torch.Tensor, bound: float) -> torch.Tensor:
    """``nan_to_num(x, nan=0, posinf=bound, neginf=-bound)`` (upstream's sanitising step)."""
    return torch.nan_to_num(x, nan=0.0, posinf=bound, neginf=-bound)


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` for ``x >= 0`` whose gradient at ``x == 0`` is 0 instead of inf.

    The plain derivative ``1 / (2 sqrt(x))`` is inf at 0, and any zero upstream gradient then
    turns it into NaN (0 * inf). Values are exactly ``sqrt(x)``.
    """
    positive = x > 0
    return torch.where(
        positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x)
    )


def atan2(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``atan2(y, x)`` in ``(-pi, pi]`` from ``atan``, with one convention in every runtime.

    ONNX has no Atan2; the exporter's composite returns ``-pi`` for ``atan2(+0, x < 0)`` where
    PyTorch returns ``+pi``. Here signed zeros are treated as ``+0`` throughout: ``y == 0,
    x < 0 -> pi``; ``x == 0 -> sign(y) * pi / 2``; ``atan2(0, 0) = 0``. Gradients are finite
    everywhere (0 at the origin).
    """
    x_zero = x == 0
    ratio = y / torch.where(x_zero, torch.ones_like(x), x)
    base = torch.atan(ratio)
    half_turn = torch.where(y >= 0, torch.full_like(base, math.pi), torch.full_like(base, -math.pi))
    angle = torch.where(x < 0, base + half_turn, base)
    axis = torch.sign(y) * (math.pi / 2)
    return torch.where(x_zero, axis, angle)


def lower_median(x: torch.Tensor) -> torch.Tensor:
    """Lower median over the last dimension: element ``(n - 1) // 2`` of the sorted values.

    ``[..., n] -> [...]``. ``torch.median`` has no ONNX translation and neither has
    ``kthvalue``; ``topk`` exports (ONNX TopK) but is about 5x slower on CPU than
    ``kthvalue`` at n = 65536, and ``sort`` about 12x. So eager and TorchScript use
    ``kthvalue`` and graph capture for export uses ``topk``: the same order statistic, the
    gradient flows to the selected element in both.
    """
    n = x.shape[-1]
    k = (n - 1) // 2
    if torch.jit.is_scripting() or not torch.compiler.is_compiling():
        return torch.kthvalue(x, k + 1, dim=-1)[0]
    return torch.topk(x, k + 1, dim=-1, largest=False)[0][..., -1]
