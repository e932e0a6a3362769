"""Distribution focal loss (Li et al., "Generalized Focal Loss", NeurIPS 2020), as ultralytics' DFLoss.

Each box side is predicted as a distribution over ``reg_max`` bins: ``pred`` logits
``[N, 4, reg_max]`` or ``[N * 4, reg_max]``. The continuous target distance (``[N, 4]``, in
bin units, clamped to ``[0, reg_max - 1.01]``) is shared between its two neighbouring bins,
linearly by distance, and the loss is the softmax cross-entropy to those two bins weighted
accordingly, averaged over the 4 sides of a box. Spec ``dfl``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lossport.errors import ConfigError
from lossport.losses._reduce import REDUCTIONS, reduce_loss
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import Interval, Real


def distribution_focal_loss(
    pred: torch.Tensor, target: torch.Tensor, reg_max: int = 16, reduction: str = "mean"
) -> torch.Tensor:
    """Distribution focal loss (Li et al., "Generalized Focal Loss", NeurIPS 2020), as
    ``ultralytics.utils.loss.DFLoss``.

    Shapes: ``pred`` float logits ``[N, 4, reg_max]`` or ``[N * 4, reg_max]`` (one
    distribution over the bins ``0 .. reg_max - 1`` per box side); ``target`` float ``[N, 4]``
    continuous side distances in bin units.

    ``y = clamp(target, 0, reg_max - 1 - 0.01)`` (a copy: the caller's tensor is never
    modified, unlike ultralytics' in-place ``clamp_``), ``i = floor(y)``; per side
    ``CE(pred, i) (i + 1 - y) + CE(pred, i + 1) (y - i)`` with ``CE`` the softmax
    cross-entropy over the bins. The loss of a box is the mean over its 4 sides (ultralytics
    returns that as ``[N, 1]``). ``"mean"`` averages the boxes (0 for ``N = 0``), ``"sum"``
    sums them, ``"none"`` returns ``[N]``. Targets outside the range are clamped, not rejected.
    """
    logits = pred.reshape([target.shape[0], target.shape[1], pred.shape[-1]])
    clamped = target.clamp(0.0, reg_max - 1 - 0.01)
    left = clamped.long()
    weight_left = (left + 1).to(clamped.dtype) - clamped
    log_prob = F.log_softmax(logits, dim=-1)
    ce_left = -log_prob.gather(-1, left.unsqueeze(-1)).squeeze(-1)
    ce_right = -log_prob.gather(-1, (left + 1).unsqueeze(-1)).squeeze(-1)
    per_box = (ce_left * weight_left + ce_right * (1 - weight_left)).mean(-1)
    return reduce_loss(per_box, reduction)


class DFLoss(nn.Module):
    """Module form of :func:`distribution_focal_loss`: ``forward(pred, target)``."""

    def __init__(self, reg_max: int = 16, reduction: str = "mean") -> None:
        super().__init__()
        if reg_max < 2:
            raise ConfigError(f"reg_max must be >= 2, got {reg_max}")
        checks.check_choice(reduction, "reduction", REDUCTIONS)
        self.reg_max = reg_max
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(pred, target)
        return distribution_focal_loss(pred, target, self.reg_max, self.reduction)

    @torch.jit.unused
    def _check(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        checks.check_float(target, "target")
        checks.check_rank(target, "target", [2], "[N, 4]")
        checks.check_dim(target, "target", 1, 4, "box sides l, t, r, b")
        checks.check_finite(target, "target")
        checks.check_float(pred, "pred")
        n = target.shape[0]
        if pred.dim() == 3:
            expected, human = [n, 4, self.reg_max], "[N, 4, reg_max]"
        else:
            expected, human = [4 * n, self.reg_max], "[N * 4, reg_max]"
        checks.check_shape(
            pred,
            "pred",
            expected,
            f"{expected} ({human} for target [N, 4] = {list(target.shape)}, reg_max = {self.reg_max})",
        )


# -- spec ------------------------------------------------------------------------------------


def _dfl_edges(dtype: torch.dtype):
    logits = torch.zeros(2, 4, 16, dtype=dtype)
    logits[0, :, 0] = 30.0
    logits[1, :, 15] = -30.0
    return {
        "targets_at_and_beyond_bounds": (
            logits,
            torch.tensor([[0.0, 14.99, 15.0, 40.0], [-3.0, 7.0, 0.5, 14.5]], dtype=dtype),
        ),
        "extreme_logits_wrong": (
            -logits,
            torch.tensor([[0.0, 0.0, 0.0, 0.0], [15.0, 15.0, 15.0, 15.0]], dtype=dtype),
        ),
        "batch_of_one": (logits[:1].clone(), torch.tensor([[1.25, 3.0, 9.75, 0.01]], dtype=dtype)),
        "empty": (logits[:0].clone(), torch.zeros(0, 4, dtype=dtype)),
    }


register(
    Spec(
        name="dfl",
        build=DFLoss,
        inputs=(
            TensorSpec("pred", ("boxes", 4, "reg_max"), Real(scale=2.0), differentiable=True),
            TensorSpec("target", ("boxes", 4), Interval(0.0, 15.0, "side distance in bins")),
        ),
        outputs=("loss",),
        shapes=({"boxes": 3}, {"boxes": 2}, {"boxes": 1}),
        source="loss-library catalog",
        summary="GFL distribution focal: CE to the two bins around clamp(t, 0, reg_max - 1.01), "
        "weighted by distance; mean over sides and boxes; pred [N, 4, R] or [N*4, R]",
        peer="ultralytics.utils.loss.DFLoss",
        edge_cases=_dfl_edges,
    )
)
