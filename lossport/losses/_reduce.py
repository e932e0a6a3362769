"""Reductions shared by the losses; all script with TorchScript and export to ONNX."""

from __future__ import annotations

from typing import Optional

import torch

REDUCTIONS = ("mean", "sum", "none")


def reduce_loss(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """``"mean"`` (0 for an empty tensor, not NaN), ``"sum"`` or ``"none"`` (unchanged)."""
    if reduction == "mean":
        return safe_mean(loss)
    if reduction == "sum":
        return loss.sum()
    return loss


def safe_mean(loss: torch.Tensor) -> torch.Tensor:
    """Mean over all elements; an empty tensor gives 0."""
    return loss.sum() / element_count(loss)


def element_count(t: torch.Tensor) -> torch.Tensor:
    """``max(t.numel(), 1)`` as a 0-d tensor of ``t``'s dtype.

    Built with ``torch.full`` rather than ``torch.tensor``: a traced ``torch.tensor(numel)``
    bakes the example's size into the graph as a constant, ``full`` keeps it symbolic.
    """
    count = torch.full((), t.numel(), dtype=t.dtype, device=t.device)
    return torch.clamp(count, min=1.0)


def masked_mean(loss: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum(loss * mask) / max(sum(mask), 1)``: mean over the selected elements, 0 if none.

    ``mask`` is a float or bool tensor broadcastable to ``loss``; unselected elements are
    zeroed with ``where`` so that a non-finite value there cannot leak into the result.
    """
    weight = mask.to(loss.dtype)
    selected = torch.where(weight > 0, loss * weight, torch.zeros_like(loss))
    return selected.sum() / torch.clamp(weight.sum(), min=1.0)


def weighted_reduce(
    loss: torch.Tensor, weight: Optional[torch.Tensor], reduction: str, eps: float
) -> torch.Tensor:
    """Reduce ``loss`` with optional per-element ``weight``.

    ``"mean"`` with weights is ``sum(w * l) / max(sum(w), eps)``; ``"sum"`` is ``sum(w * l)``;
    ``"none"`` returns ``w * l``.
    """
    if weight is None:
        return reduce_loss(loss, reduction)
    weighted = loss * weight
    if reduction == "mean":
        return weighted.sum() / torch.clamp(weight.sum(), min=eps)
    if reduction == "sum":
        return weighted.sum()
    return weighted
