"""Varifocal loss (Zhang et al., "VarifocalNet", CVPR 2021), as ``ultralytics``' VarifocalLoss.

An IoU-aware classification loss: BCE-with-logits of the logits against the IoU-aware target
score ``q``, weighted by ``q`` at the true class of a positive and by
``alpha * sigmoid(logits)^gamma`` everywhere else. Shapes: ``logits``, ``score`` (``q`` in
[0, 1]) and ``label`` (1 for the true class of a positive, else 0) float of one shape
``[B, N, C]`` (batch, anchors or queries, classes). The default reduction is ultralytics'
``l.mean(1).sum()``. Spec ``varifocal``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lossport.errors import InvalidInputError
from lossport.losses._reduce import REDUCTIONS, reduce_loss
from lossport.losses.classification import binary_cross_entropy_with_logits
from lossport.losses.detection.common import _check_options, _truncated
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import Binary, Interval, Real

VARIFOCAL_REDUCTIONS = ("mean_dim1_sum",) + REDUCTIONS


def _check_binary(t: torch.Tensor, name: str) -> None:
    """``t`` holds only 0 and 1."""
    if t.numel() > 0 and not bool(((t == 0) | (t == 1)).all()):
        bad = t[(t != 0) & (t != 1)].flatten()[0].item()
        raise InvalidInputError(f"{name} must hold only 0 and 1, found {bad!r}")


def varifocal_loss(
    logits: torch.Tensor,
    score: torch.Tensor,
    label: torch.Tensor,
    alpha: float = 0.75,
    gamma: float = 2.0,
    reduction: str = "mean_dim1_sum",
) -> torch.Tensor:
    """Varifocal loss (Zhang et al., "VarifocalNet", CVPR 2021), as ``ultralytics``' VarifocalLoss.

    Shapes: ``logits``, ``score`` and ``label`` float of one shape ``[B, N, C]`` (batch,
    anchors or queries, classes; any shape of rank >= 2 for the default reduction).
    ``score`` is the IoU-aware target ``q`` in [0, 1] (the IoU with the matched box for the
    true class, 0 elsewhere); ``label`` is 1 for the true class of a positive, else 0.

    ``l = w * BCE_with_logits(logits, q)`` with
    ``w = alpha * sigmoid(logits)^gamma * (1 - label) + q * label``; ``w`` is not detached
    (ultralytics does not detach it either). Reduction ``"mean_dim1_sum"`` (default) is
    ultralytics' ``l.mean(1).sum()``: mean over dimension 1, sum over the others, computed as
    ``sum(l) / max(N, 1)`` so that ``N = 0`` gives 0; ``"mean"``, ``"sum"``, ``"none"`` as
    usual. ``sigmoid(x)^gamma`` is computed as ``exp(-gamma softplus(-x))``, so the gradient
    stays finite for ``0 < gamma < 1`` even where ``sigmoid`` underflows to 0. Finite, with
    finite gradient, for any finite logits.
    """
    sigmoid_pow = torch.exp(-gamma * F.softplus(-logits))
    weight = alpha * sigmoid_pow * (1 - label) + score * label
    loss = binary_cross_entropy_with_logits(logits, score) * weight
    if reduction == "mean_dim1_sum":
        count = torch.full((), loss.shape[1], dtype=loss.dtype, device=loss.device)
        return loss.sum() / torch.clamp(count, min=1.0)
    return reduce_loss(loss, reduction)


class VarifocalLoss(nn.Module):
    """Module form of :func:`varifocal_loss`: ``forward(logits, score, label)``."""

    def __init__(self, alpha: float = 0.75, gamma: float = 2.0, reduction: str = "mean_dim1_sum") -> None:
        super().__init__()
        _check_options(alpha=alpha, gamma=gamma)
        checks.check_choice(reduction, "reduction", VARIFOCAL_REDUCTIONS)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, score: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            checks.check_float(logits, "logits")
            if self.reduction == "mean_dim1_sum":
                checks.check_min_rank(logits, "logits", 2, "[B, N, C]")
            checks.check_float(score, "score")
            checks.check_same_shape(logits, "logits", score, "score")
            checks.check_range(score, "score", 0.0, 1.0, "IoU-aware target scores")
            checks.check_float(label, "label")
            checks.check_same_shape(logits, "logits", label, "label")
            _check_binary(label, "label")
        return varifocal_loss(logits, score, label, self.alpha, self.gamma, self.reduction)


# -- spec ------------------------------------------------------------------------------------


def _varifocal_sampler(spec: Spec, sizes, generator: torch.Generator, dtype: torch.dtype):
    shape = spec.concrete_shape(spec.inputs[0], sizes)
    logits = 2 * torch.randn(shape, generator=generator, dtype=dtype)
    label = (torch.rand(shape, generator=generator) < 0.3).to(dtype)
    score = label * torch.rand(shape, generator=generator, dtype=dtype)
    return logits, score, label


def _varifocal_edges(dtype: torch.dtype):
    logits = torch.tensor([[[30.0, -30.0], [-30.0, 30.0]]], dtype=dtype)
    label = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=dtype)
    return {
        "extreme_logits_right": (logits, label.clone(), label.clone()),
        "extreme_logits_wrong": (-logits, label * 0.5, label.clone()),
        "no_positives": (logits, torch.zeros_like(logits), torch.zeros_like(logits)),
        "batch_of_one": (
            logits[:, :1].clone(),
            torch.tensor([[[0.7, 0.0]]], dtype=dtype),
            torch.tensor([[[1.0, 0.0]]], dtype=dtype),
        ),
        "empty": _truncated((logits, logits, logits), 0),
    }


register(
    Spec(
        name="varifocal",
        build=VarifocalLoss,
        inputs=(
            TensorSpec("logits", ("batch", "anchors", "classes"), Real(scale=2.0), differentiable=True),
            TensorSpec("score", ("batch", "anchors", "classes"), Interval(0.0, 1.0, "IoU-aware score")),
            TensorSpec("label", ("batch", "anchors", "classes"), Binary(p=0.3)),
        ),
        outputs=("loss",),
        shapes=(
            {"batch": 2, "anchors": 5, "classes": 3},
            {"batch": 3, "anchors": 2, "classes": 4},
            {"batch": 1, "anchors": 1, "classes": 1},
        ),
        source="loss-library catalog",
        summary="VFL: (alpha sigmoid(p)^gamma (1 - label) + q label) * BCE_with_logits(p, q); "
        "ultralytics' reduction mean over dim 1, sum over the rest",
        peer="ultralytics.utils.loss.VarifocalLoss",
        sampler=_varifocal_sampler,
        edge_cases=_varifocal_edges,
    )
)
