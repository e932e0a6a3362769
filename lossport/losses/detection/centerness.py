"""Centerness loss of FCOS: BCE-with-logits between centerness logits and targets in [0, 1].

Shapes: ``logits``, ``target`` and optional per-location ``weights`` float of one shape
(``[N]`` usually). Reduction ``"mean"`` (a weighted mean ``sum(w l) / max(sum(w), eps)`` with
weights), ``"sum"`` or ``"none"``; empty input gives 0. Spec ``centerness``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from lossport.losses._reduce import REDUCTIONS, weighted_reduce
from lossport.losses.classification import binary_cross_entropy_with_logits
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import Interval, Real


def centerness_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    eps: float = 1e-7,
) -> torch.Tensor:
    """BCE-with-logits between centerness logits and targets in [0, 1] (FCOS).

    Shapes: ``logits``, ``target`` and optional ``weights`` float of one shape (``[N]``
    usually). ``"mean"`` is the plain mean or, with weights, ``sum(w l) / max(sum(w), eps)``;
    ``"sum"`` is ``sum(w l)``; ``"none"`` returns ``w l``. Empty input gives 0. Same numbers
    as ``F.binary_cross_entropy_with_logits`` (which has no weighted mean); finite for any
    finite logits.
    """
    loss = binary_cross_entropy_with_logits(logits, target)
    return weighted_reduce(loss, weights, reduction, eps)


class CenternessLoss(nn.Module):
    """Module form of :func:`centerness_loss`: ``forward(logits, target, weights=None)``."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        checks.check_choice(reduction, "reduction", REDUCTIONS)
        self.reduction = reduction

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, weights: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            checks.check_float(logits, "logits")
            checks.check_float(target, "target")
            checks.check_same_shape(logits, "logits", target, "target")
            checks.check_range(target, "target", 0.0, 1.0, "centerness targets")
            if weights is not None:
                checks.check_float(weights, "weights")
                checks.check_same_shape(logits, "logits", weights, "weights")
        return centerness_loss(logits, target, weights, self.reduction)


# -- spec ------------------------------------------------------------------------------------


def _centerness_edges(dtype: torch.dtype):
    logits = torch.tensor([30.0, -30.0, 30.0, -30.0], dtype=dtype)
    return {
        "extreme_logits_right": (logits, torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=dtype)),
        "extreme_logits_wrong": (logits, torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=dtype)),
        "batch_of_one": (logits[:1].clone(), torch.tensor([0.25], dtype=dtype)),
        "empty": (logits[:0].clone(), logits[:0].clone()),
    }


register(
    Spec(
        name="centerness",
        build=CenternessLoss,
        inputs=(
            TensorSpec("logits", ("locations",), Real(scale=2.0), differentiable=True),
            TensorSpec("target", ("locations",), Interval(0.0, 1.0, "centerness")),
        ),
        outputs=("loss",),
        shapes=({"locations": 6}, {"locations": 3}, {"locations": 1}),
        source="AutoTimm loss guide",
        summary="BCE-with-logits on centerness targets in [0, 1]; optional weights, weighted mean "
        "sum(w l)/max(sum(w), 1e-7)",
        peer="torch.nn.functional.binary_cross_entropy_with_logits",
        edge_cases=_centerness_edges,
    )
)
