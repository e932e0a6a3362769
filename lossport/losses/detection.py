"""Detection losses: varifocal, centerness, FCOS, distribution focal, CenterNet, combined.

Conventions shared by the family: logits are raw scores (the sigmoid is applied inside); class
targets are int64 indices with a negative value (-1) meaning background / unmatched, so a
location is *positive* when its class index is >= 0; boxes are xyxy unless a ``box_format``
option says otherwise (box maths from :mod:`lossport.losses.boxes`). Positives are selected
with masks and ``where``, never by boolean indexing, so shapes never depend on the data.
Losses made of several terms return a dict whose components are already multiplied by their
weights, with ``total_loss`` (their sum) last.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from lossport.errors import ConfigError, InvalidInputError
from lossport.losses._reduce import REDUCTIONS, masked_mean, reduce_loss, weighted_reduce
from lossport.losses.boxes import box_iou_loss, box_to_xyxy, check_box_options, check_boxes
from lossport.losses.classification import binary_cross_entropy_with_logits, sigmoid_focal_loss
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import Binary, BoxesXYXY, ClassIndex, Domain, Interval, Real

__all__ = [
    "CenterNetLoss",
    "CenternessLoss",
    "DFLoss",
    "DetectionLoss",
    "FCOSLoss",
    "VarifocalLoss",
    "centernet_heatmap_loss",
    "centernet_loss",
    "centerness_loss",
    "detection_loss",
    "distribution_focal_loss",
    "fcos_loss",
    "flatten_levels",
    "ltrb_to_boxes",
    "varifocal_loss",
]


# -- shared pieces ---------------------------------------------------------------------------


def _check_options(**values: float) -> None:
    for name, value in values.items():
        if not value >= 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")


def _check_focal(alpha: float, gamma: float, prefix: str = "") -> None:
    if gamma < 0:
        raise ConfigError(f"{prefix}gamma must be >= 0, got {gamma}")
    if alpha > 1:
        raise ConfigError(f"{prefix}alpha must be in [0, 1] (or < 0 to disable it), got {alpha}")


def _check_binary(t: torch.Tensor, name: str) -> None:
    """``t`` holds only 0 and 1."""
    if t.numel() > 0 and not bool(((t == 0) | (t == 1)).all()):
        bad = t[(t != 0) & (t != 1)].flatten()[0].item()
        raise InvalidInputError(f"{name} must hold only 0 and 1, found {bad!r}")


def _one_hot_last(index: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """``[..., C]`` one-hot of int64 ``index [...]``; a negative index gives a row of zeros."""
    classes = torch.arange(num_classes, device=index.device)
    return (index.unsqueeze(-1) == classes).to(dtype)


def _positive_box_loss(
    pred: torch.Tensor, target: torch.Tensor, positive: torch.Tensor, kind: str, eps: float = 1e-7
) -> torch.Tensor:
    """Mean IoU-family loss of xyxy boxes ``[..., 4]`` over ``positive [...]`` (0 if none).

    Non-positive entries are replaced by the same unit box on both sides before the box maths,
    so whatever they hold (zeros, inverted boxes) neither reaches the result nor the gradient.
    """
    keep = positive.unsqueeze(-1)
    unit = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=pred.dtype, device=pred.device)
    loss = box_iou_loss(torch.where(keep, pred, unit), torch.where(keep, target, unit), kind, eps)
    return masked_mean(loss, positive)


def _dense_terms(
    cls_logits: torch.Tensor,
    cls_targets: torch.Tensor,
    pred_boxes: torch.Tensor,
    target_boxes: torch.Tensor,
    alpha: float,
    gamma: float,
    kind: str,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(cls, box)`` terms of a dense detector, both divided by ``max(num_pos, 1)``.

    ``cls``: sigmoid focal summed over all locations and classes (one-vs-all targets, rows of
    zeros for background); ``box``: IoU-family loss summed over positive locations.
    """
    positive = cls_targets >= 0
    num_pos = torch.clamp(positive.sum().to(cls_logits.dtype), min=1.0)
    one_hot = _one_hot_last(cls_targets, cls_logits.shape[-1], cls_logits.dtype)
    cls = sigmoid_focal_loss(cls_logits, one_hot, alpha, gamma).sum() / num_pos
    return cls, _positive_box_loss(pred_boxes, target_boxes, positive, kind)


def _check_dense_targets(
    cls_logits: torch.Tensor, logits_name: str, cls_targets: torch.Tensor, num_classes: int
) -> None:
    """int64 class targets of the logits' shape without the (last) class dimension."""
    checks.check_index(cls_targets, "cls_targets")
    expected = list(cls_logits.shape[:-1])
    checks.check_shape(
        cls_targets,
        "cls_targets",
        expected,
        f"{expected} ({logits_name} {list(cls_logits.shape)} without its class dimension)",
    )
    checks.check_class_index(cls_targets, "cls_targets", num_classes, allow_negative=True)


# -- varifocal -------------------------------------------------------------------------------

VARIFOCAL_REDUCTIONS = ("mean_dim1_sum",) + REDUCTIONS


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


# -- centerness ------------------------------------------------------------------------------


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


# -- FCOS ------------------------------------------------------------------------------------


def flatten_levels(levels: List[torch.Tensor]) -> torch.Tensor:
    """Concatenate per-level maps into one tensor of locations.

    Each level ``[B, K, H, W]`` becomes ``[B, H*W, K]`` and each ``[B, H, W]`` becomes
    ``[B, H*W]`` (locations in row-major ``(h, w)`` order); levels are concatenated along the
    location dimension in list order, giving ``[B, L, K]`` or ``[B, L]``.
    """
    rows = [level.flatten(2).transpose(1, 2) if level.dim() == 4 else level.flatten(1) for level in levels]
    return torch.cat(rows, dim=1)


def ltrb_to_boxes(distances: torch.Tensor) -> torch.Tensor:
    """FCOS distances ``(l, t, r, b) [..., 4]`` as xyxy boxes ``(-l, -t, r, b)`` around the
    location (the location is the origin; IoU-family losses do not depend on it)."""
    return torch.cat([-distances[..., :2], distances[..., 2:]], dim=-1)


def fcos_loss(
    cls_preds: torch.Tensor,
    reg_preds: torch.Tensor,
    centerness_preds: torch.Tensor,
    cls_targets: torch.Tensor,
    reg_targets: torch.Tensor,
    centerness_targets: torch.Tensor,
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
    cls_weight: float = 1.0,
    reg_weight: float = 1.0,
    centerness_weight: float = 1.0,
) -> Dict[str, torch.Tensor]:
    """FCOS loss (Tian et al., ICCV 2019) on locations flattened over the levels.

    Shapes (``L`` locations of all levels, see :func:`flatten_levels`): ``cls_preds`` float
    ``[B, L, C]`` logits; ``reg_preds`` float ``[B, L, 4]`` predicted distances ``(l, t, r, b)``
    from the location to the box sides (>= 0, e.g. after ``exp`` or ReLU in the head);
    ``centerness_preds`` float ``[B, L]`` logits; ``cls_targets`` int64 ``[B, L]``, class in
    ``[0, C)`` or -1 (any negative) for background; ``reg_targets`` float ``[B, L, 4]``
    target distances; ``centerness_targets`` float ``[B, L]`` in [0, 1]. The regression and
    centerness targets of background locations are not used (any finite values).

    With ``num_pos = max(#{cls_targets >= 0}, 1)``:

    - ``cls_loss = cls_weight * sum(focal) / num_pos``, sigmoid focal (``focal_alpha``,
      ``focal_gamma``) over *all* locations and classes, background rows all-negative;
    - ``reg_loss = reg_weight * sum_pos(1 - GIoU) / num_pos``, distances turned into boxes
      around the location (:func:`ltrb_to_boxes`);
    - ``centerness_loss = centerness_weight * sum_pos(BCE_with_logits) / num_pos``;
    - ``total_loss`` = the sum of the three.

    This is torchvision's FCOS normalisation (the paper weights GIoU by the centerness target;
    we do not). Seed 004's code differs and we do not follow it: its focal term drops the
    background locations entirely and averages per level, it uses ``-log(IoU)`` instead of
    GIoU, and divides the per-level centerness *mean* by ``num_pos`` again. With no positive
    location ``reg_loss`` and ``centerness_loss`` are 0 and ``cls_loss`` is the plain focal sum.
    """
    positive = cls_targets >= 0
    cls, reg = _dense_terms(
        cls_preds,
        cls_targets,
        ltrb_to_boxes(reg_preds),
        ltrb_to_boxes(reg_targets),
        focal_alpha,
        focal_gamma,
        "giou",
    )
    bce = binary_cross_entropy_with_logits(centerness_preds, centerness_targets)
    cls = cls_weight * cls
    reg = reg_weight * reg
    centerness = centerness_weight * masked_mean(bce, positive)
    return {
        "cls_loss": cls,
        "reg_loss": reg,
        "centerness_loss": centerness,
        "total_loss": cls + reg + centerness,
    }


def _fcos_rows(value: Union[torch.Tensor, List[torch.Tensor]], squeeze: bool) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    rows = flatten_levels(value)
    return rows.squeeze(-1) if squeeze else rows


class FCOSLoss(nn.Module):
    """Module form of :func:`fcos_loss`.

    ``forward(cls_preds, reg_preds, centerness_preds, cls_targets, reg_targets,
    centerness_targets)`` takes, for each argument, either the flattened tensor of
    :func:`fcos_loss` or a list with one map per pyramid level, flattened with
    :func:`flatten_levels`: ``cls_preds [B, C, H, W]``, ``reg_preds [B, 4, H, W]``,
    ``centerness_preds [B, 1, H, W]``, ``cls_targets [B, H, W]``, ``reg_targets [B, 4, H, W]``,
    ``centerness_targets [B, H, W]``. Both forms give the same numbers.
    """

    def __init__(
        self,
        num_classes: int,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        cls_weight: float = 1.0,
        reg_weight: float = 1.0,
        centerness_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
        _check_focal(focal_alpha, focal_gamma, "focal_")
        _check_options(cls_weight=cls_weight, reg_weight=reg_weight, centerness_weight=centerness_weight)
        self.num_classes = num_classes
        self.focal_alpha = float(focal_alpha)
        self.focal_gamma = float(focal_gamma)
        self.cls_weight = float(cls_weight)
        self.reg_weight = float(reg_weight)
        self.centerness_weight = float(centerness_weight)

    def forward(
        self,
        cls_preds: Union[torch.Tensor, List[torch.Tensor]],
        reg_preds: Union[torch.Tensor, List[torch.Tensor]],
        centerness_preds: Union[torch.Tensor, List[torch.Tensor]],
        cls_targets: Union[torch.Tensor, List[torch.Tensor]],
        reg_targets: Union[torch.Tensor, List[torch.Tensor]],
        centerness_targets: Union[torch.Tensor, List[torch.Tensor]],
    ) -> Dict[str, torch.Tensor]:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check_levels(
                cls_preds, reg_preds, centerness_preds, cls_targets, reg_targets, centerness_targets
            )
        cls = _fcos_rows(cls_preds, False)
        reg = _fcos_rows(reg_preds, False)
        centerness = _fcos_rows(centerness_preds, True)
        cls_t = _fcos_rows(cls_targets, False)
        reg_t = _fcos_rows(reg_targets, False)
        centerness_t = _fcos_rows(centerness_targets, False)
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(cls, reg, centerness, cls_t, reg_t, centerness_t)
        return fcos_loss(
            cls,
            reg,
            centerness,
            cls_t,
            reg_t,
            centerness_t,
            self.focal_alpha,
            self.focal_gamma,
            self.cls_weight,
            self.reg_weight,
            self.centerness_weight,
        )

    @torch.jit.unused
    def _check_levels(
        self,
        cls_preds: Union[torch.Tensor, List[torch.Tensor]],
        reg_preds: Union[torch.Tensor, List[torch.Tensor]],
        centerness_preds: Union[torch.Tensor, List[torch.Tensor]],
        cls_targets: Union[torch.Tensor, List[torch.Tensor]],
        reg_targets: Union[torch.Tensor, List[torch.Tensor]],
        centerness_targets: Union[torch.Tensor, List[torch.Tensor]],
    ) -> None:
        arguments = {
            "cls_preds": (cls_preds, "[B, C, H, W]"),
            "reg_preds": (reg_preds, "[B, 4, H, W]"),
            "centerness_preds": (centerness_preds, "[B, 1, H, W]"),
            "cls_targets": (cls_targets, "[B, H, W]"),
            "reg_targets": (reg_targets, "[B, 4, H, W]"),
            "centerness_targets": (centerness_targets, "[B, H, W]"),
        }
        lists = {name: value for name, value in arguments.items() if not isinstance(value[0], torch.Tensor)}
        if len({len(levels) for levels, _ in lists.values()}) > 1:
            counts = ", ".join(f"{name}: {len(levels)}" for name, (levels, _) in lists.items())
            raise InvalidInputError(f"per-level lists must all have the same number of levels, got {counts}")
        for name, (levels, layout) in lists.items():
            if not isinstance(levels, (list, tuple)) or len(levels) == 0:
                raise InvalidInputError(
                    f"{name} must be a tensor or a non-empty list of per-level tensors {layout}"
                )
            rank = layout.count(",") + 1
            for k, level in enumerate(levels):
                checks.check_rank(level, f"{name}[{k}]", [rank], layout)
                if name == "centerness_preds":
                    checks.check_dim(level, f"{name}[{k}]", 1, 1, "one centerness channel")

    @torch.jit.unused
    def _check(
        self,
        cls: torch.Tensor,
        reg: torch.Tensor,
        centerness: torch.Tensor,
        cls_t: torch.Tensor,
        reg_t: torch.Tensor,
        centerness_t: torch.Tensor,
    ) -> None:
        checks.check_float(cls, "cls_preds")
        checks.check_rank(cls, "cls_preds", [3], "[B, L, C] (or per-level [B, C, H, W])")
        checks.check_dim(cls, "cls_preds", 2, self.num_classes, f"num_classes = {self.num_classes}")
        batch, locations = cls.shape[0], cls.shape[1]
        for value, name, shape in (
            (reg, "reg_preds", [batch, locations, 4]),
            (centerness, "centerness_preds", [batch, locations]),
            (reg_t, "reg_targets", [batch, locations, 4]),
            (centerness_t, "centerness_targets", [batch, locations]),
        ):
            checks.check_float(value, name)
            checks.check_shape(value, name, shape, f"{shape} (locations of cls_preds {list(cls.shape)})")
        _check_dense_targets(cls, "cls_preds", cls_t, self.num_classes)
        positive_t = torch.where(cls_t >= 0, centerness_t, torch.zeros_like(centerness_t))
        checks.check_range(
            positive_t, "centerness_targets", 0.0, 1.0, "centerness targets (at positive locations)"
        )


# -- distribution focal ----------------------------------------------------------------------


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


# -- CenterNet -------------------------------------------------------------------------------


def centernet_heatmap_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """Penalty-reduced pixel-wise focal loss of CenterNet (Zhou et al., "Objects as Points").

    ``p = sigmoid(logits)``, ``Y = target`` (Gaussian-splatted heatmap in [0, 1], exactly 1 at
    object centres); ``-(1/N) sum [Y = 1] (1 - p)^alpha log p
    + [Y < 1] (1 - Y)^beta p^alpha log(1 - p)``, ``N = max(#{Y = 1}, 1)`` (the number of
    centres, as the reference code counts them). ``-log p`` and ``-log(1 - p)`` are
    ``softplus(-+logits)``: exact and finite for any finite logit, where the reference code
    clamps ``p`` to ``[1e-4, 1 - 1e-4]`` (which changes values beyond ``|logit| > 9.2`` and
    zeroes their gradient). Shapes: any equal shapes, ``[B, C, H, W]`` usually. Returns a scalar.
    """
    positive = (target == 1).to(logits.dtype)
    p = torch.sigmoid(logits)
    positive_term = torch.sigmoid(-logits).pow(alpha) * F.softplus(-logits)
    negative_term = (1 - target).pow(beta) * p.pow(alpha) * F.softplus(logits)
    total = (positive * positive_term + (1 - positive) * negative_term).sum()
    return total / torch.clamp(positive.sum(), min=1.0)


def _gather_locations(maps: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``maps [B, K, H, W]`` read at flat locations ``indices [B, M]`` (into ``H*W``):
    ``[B, M, K]``."""
    index = indices.unsqueeze(1).expand(-1, maps.shape[1], -1)
    return maps.flatten(2).gather(2, index).transpose(1, 2)


def _masked_l1(
    maps: torch.Tensor, indices: torch.Tensor, mask: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    pred = _gather_locations(maps, indices)
    return masked_mean((pred - target).abs(), mask.unsqueeze(-1).expand_as(pred))


def centernet_loss(
    heatmap: torch.Tensor,
    wh: torch.Tensor,
    reg: torch.Tensor,
    heatmap_target: torch.Tensor,
    indices: torch.Tensor,
    mask: torch.Tensor,
    wh_target: torch.Tensor,
    reg_target: torch.Tensor,
    hm_weight: float = 1.0,
    wh_weight: float = 0.1,
    reg_weight: float = 1.0,
) -> Dict[str, torch.Tensor]:
    """CenterNet loss: heatmap focal + masked L1 on sizes and centre offsets.

    Layout: ``heatmap`` float ``[B, C, H, W]`` class-heatmap logits; ``wh`` float
    ``[B, 2, H, W]`` predicted box sizes; ``reg`` float ``[B, 2, H, W]`` predicted sub-pixel
    centre offsets; ``heatmap_target`` float ``[B, C, H, W]`` in [0, 1] (1 at centres);
    ``indices`` int64 ``[B, M]`` flat centre locations ``y * W + x`` in ``[0, H*W)`` (up to
    ``M`` objects per image, padding rows included); ``mask`` float (0/1) or bool ``[B, M]``,
    1 for real objects; ``wh_target`` and ``reg_target`` float ``[B, M, 2]``.

    - ``hm_loss = hm_weight *`` :func:`centernet_heatmap_loss` (alpha 2, beta 4);
    - ``wh_loss = wh_weight * sum_obj |wh[b, :, idx] - wh_target| / max(2 #objects, 1)``;
    - ``reg_loss = reg_weight *`` the same L1 for the offsets;
    - ``total_loss`` = their sum.

    The L1 terms are means over the masked coordinates, as CenterNet's ``RegL1Loss``, with
    ``max(·, 1)`` in place of its ``+ 1e-4`` denominator; no objects gives 0.
    """
    hm = hm_weight * centernet_heatmap_loss(heatmap, heatmap_target)
    size = wh_weight * _masked_l1(wh, indices, mask, wh_target)
    offset = reg_weight * _masked_l1(reg, indices, mask, reg_target)
    return {"hm_loss": hm, "wh_loss": size, "reg_loss": offset, "total_loss": hm + size + offset}


class CenterNetLoss(nn.Module):
    """Module form of :func:`centernet_loss`: ``forward(heatmap, wh, reg, heatmap_target,
    indices, mask, wh_target, reg_target)``."""

    def __init__(self, hm_weight: float = 1.0, wh_weight: float = 0.1, reg_weight: float = 1.0) -> None:
        super().__init__()
        _check_options(hm_weight=hm_weight, wh_weight=wh_weight, reg_weight=reg_weight)
        self.hm_weight = float(hm_weight)
        self.wh_weight = float(wh_weight)
        self.reg_weight = float(reg_weight)

    def forward(
        self,
        heatmap: torch.Tensor,
        wh: torch.Tensor,
        reg: torch.Tensor,
        heatmap_target: torch.Tensor,
        indices: torch.Tensor,
        mask: torch.Tensor,
        wh_target: torch.Tensor,
        reg_target: torch.Tensor,
    ) -> Dict[str, torch.Tensor]:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(heatmap, wh, reg, heatmap_target, indices, mask, wh_target, reg_target)
        return centernet_loss(
            heatmap,
            wh,
            reg,
            heatmap_target,
            indices,
            mask,
            wh_target,
            reg_target,
            self.hm_weight,
            self.wh_weight,
            self.reg_weight,
        )

    @torch.jit.unused
    def _check(self, heatmap, wh, reg, heatmap_target, indices, mask, wh_target, reg_target) -> None:
        checks.check_float(heatmap, "heatmap")
        checks.check_rank(heatmap, "heatmap", [4], "[B, C, H, W]")
        checks.check_float(heatmap_target, "heatmap_target")
        checks.check_same_shape(heatmap, "heatmap", heatmap_target, "heatmap_target")
        checks.check_range(heatmap_target, "heatmap_target", 0.0, 1.0, "heatmap values")
        b, _, h, w = heatmap.shape
        for value, name in ((wh, "wh"), (reg, "reg")):
            checks.check_float(value, name)
            checks.check_shape(
                value, name, [b, 2, h, w], f"{[b, 2, h, w]} ([B, 2, H, W] of heatmap {list(heatmap.shape)})"
            )
        checks.check_index(indices, "indices")
        checks.check_rank(indices, "indices", [2], "[B, M]")
        checks.check_dim(indices, "indices", 0, b, "batch size of heatmap")
        checks.check_class_index(indices, "indices", h * w)
        m = indices.shape[1]
        checks.check_tensor(mask, "mask")
        checks.check_shape(mask, "mask", [b, m], f"{[b, m]} (matching indices [B, M])")
        if mask.is_floating_point():
            checks.check_range(mask, "mask", 0.0, 1.0, "object mask values")
        elif mask.dtype != torch.bool:
            raise InvalidInputError(f"mask must be a float (0/1) or bool tensor, got {mask.dtype}")
        for value, name in ((wh_target, "wh_target"), (reg_target, "reg_target")):
            checks.check_float(value, name)
            checks.check_shape(value, name, [b, m, 2], f"{[b, m, 2]} ([B, M, 2] of indices)")


# -- combined detection ----------------------------------------------------------------------


def detection_loss(
    cls_logits: torch.Tensor,
    box_preds: torch.Tensor,
    cls_targets: torch.Tensor,
    box_targets: torch.Tensor,
    cls_weight: float = 1.0,
    box_weight: float = 5.0,
    box_loss: str = "giou",
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
    box_format: str = "xyxy",
) -> Dict[str, torch.Tensor]:
    """Combined detection loss: focal classification + IoU-family box loss on matched boxes.

    Shapes: ``cls_logits`` float ``[B, N, C]`` (or any ``[..., C]``), one row per anchor /
    query / prediction slot; ``box_preds`` and ``box_targets`` float ``[B, N, 4]`` in
    ``box_format``, aligned with the rows; ``cls_targets`` int64 ``[B, N]``: the matched
    class in ``[0, C)``, or -1 (any negative) for an unmatched / background row. A row is
    positive when matched; its box pair enters the box loss, every row enters the focal term.

    With ``num_pos = max(#matched, 1)``: ``cls_loss = cls_weight * sum(focal) / num_pos``
    (sigmoid focal over all rows and classes, one-vs-all targets, RetinaNet's
    normalisation) and ``box_loss = box_weight * sum_matched(1 - IoU_kind) / num_pos`` with
    ``kind = box_loss`` in ``giou | diou | ciou`` (:func:`lossport.losses.boxes.box_iou_loss`,
    eps 1e-7); ``total_loss = cls_loss + box_loss``. The box targets of unmatched rows are not
    used. Seed 003 documents ``focal + 5 * GIoU`` with element-mean reductions; normalising
    both terms by the positives is the one-stage detectors' convention and keeps the two
    terms' balance independent of the number of background rows.
    """
    cls, box = _dense_terms(
        cls_logits,
        cls_targets,
        box_to_xyxy(box_preds, box_format),
        box_to_xyxy(box_targets, box_format),
        focal_alpha,
        focal_gamma,
        box_loss,
    )
    cls = cls_weight * cls
    box = box_weight * box
    return {"cls_loss": cls, "box_loss": box, "total_loss": cls + box}


class DetectionLoss(nn.Module):
    """Module form of :func:`detection_loss`: ``forward(cls_logits, box_preds, cls_targets,
    box_targets)``."""

    def __init__(
        self,
        cls_weight: float = 1.0,
        box_weight: float = 5.0,
        box_loss: str = "giou",
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        box_format: str = "xyxy",
    ) -> None:
        super().__init__()
        _check_options(cls_weight=cls_weight, box_weight=box_weight)
        _check_focal(focal_alpha, focal_gamma, "focal_")
        check_box_options(box_loss, "mean", 1e-7, box_format)
        self.cls_weight = float(cls_weight)
        self.box_weight = float(box_weight)
        self.box_loss = box_loss
        self.focal_alpha = float(focal_alpha)
        self.focal_gamma = float(focal_gamma)
        self.box_format = box_format

    def forward(
        self,
        cls_logits: torch.Tensor,
        box_preds: torch.Tensor,
        cls_targets: torch.Tensor,
        box_targets: torch.Tensor,
    ) -> Dict[str, torch.Tensor]:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            checks.check_float(cls_logits, "cls_logits")
            checks.check_min_rank(cls_logits, "cls_logits", 2, "[B, N, C] or [..., C]")
            _check_dense_targets(cls_logits, "cls_logits", cls_targets, cls_logits.shape[-1])
            expected = list(cls_logits.shape[:-1]) + [4]
            checks.check_shape(
                box_preds,
                "box_preds",
                expected,
                f"{expected} (one box per row of cls_logits {list(cls_logits.shape)})",
            )
            check_boxes(
                box_preds, box_targets, self.box_format, "box_preds", "box_targets", used=cls_targets >= 0
            )
        return detection_loss(
            cls_logits,
            box_preds,
            cls_targets,
            box_targets,
            self.cls_weight,
            self.box_weight,
            self.box_loss,
            self.focal_alpha,
            self.focal_gamma,
            self.box_format,
        )


# -- specs -----------------------------------------------------------------------------------


class _FlatLocation(Domain):
    """int64 flat locations ``y * W + x`` in ``[0, sizes[height] * sizes[width])``."""

    @property
    def is_float(self) -> bool:
        return False

    def describe(self) -> str:
        return "int64 flat location y * width + x in [0, height * width)"

    def sample(self, shape, sizes, generator, dtype):
        return torch.randint(0, int(sizes["height"]) * int(sizes["width"]), shape, generator=generator)


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
        "empty": (logits[:, :0].clone(), logits[:, :0].clone(), logits[:, :0].clone()),
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


def _fcos_edges(dtype: torch.dtype):
    def f(rows):
        return torch.tensor(rows, dtype=dtype)

    cls = f([[[30.0, -30.0, -30.0], [-30.0, 30.0, -30.0], [-30.0, -30.0, -30.0]]])
    reg = f([[[1.0, 2.0, 3.0, 1.0], [0.5, 0.5, 0.5, 0.5], [2.0, 2.0, 2.0, 2.0]]])
    centerness = f([[30.0, -30.0, 0.0]])
    centerness_t = f([[1.0, 0.0, 0.5]])
    labels = torch.tensor([[0, 2, -1]])
    background = torch.full((1, 3), -1)
    return {
        "extreme_logits": (cls, reg, centerness, labels, reg.clone(), centerness_t),
        "extreme_logits_wrong": (-cls, reg, -centerness, labels, reg + 1.0, centerness_t),
        "no_positives": (cls, reg, centerness, background, reg.clone(), centerness_t),
        "all_positive": (cls, reg, centerness, torch.tensor([[1, 1, 0]]), reg * 2.0, centerness_t),
        "zero_size_pred": (cls, torch.zeros_like(reg), centerness, labels, reg.clone(), centerness_t),
        "batch_of_one": (
            cls[:, :1].clone(),
            reg[:, :1].clone(),
            centerness[:, :1].clone(),
            labels[:, :1].clone(),
            reg[:, :1] + 0.5,
            centerness_t[:, :1].clone(),
        ),
        "no_locations": (
            cls[:, :0].clone(),
            reg[:, :0].clone(),
            centerness[:, :0].clone(),
            labels[:, :0].clone(),
            reg[:, :0].clone(),
            centerness_t[:, :0].clone(),
        ),
    }


register(
    Spec(
        name="fcos",
        build=FCOSLoss,
        inputs=(
            TensorSpec(
                "cls_preds", ("batch", "locations", "num_classes"), Real(scale=2.0), differentiable=True
            ),
            TensorSpec(
                "reg_preds", ("batch", "locations", 4), Interval(0.5, 8.0, "distance"), differentiable=True
            ),
            TensorSpec("centerness_preds", ("batch", "locations"), Real(scale=2.0), differentiable=True),
            TensorSpec(
                "cls_targets",
                ("batch", "locations"),
                ClassIndex("num_classes", ignore_index=-1, ignore_fraction=0.5),
            ),
            TensorSpec("reg_targets", ("batch", "locations", 4), Interval(0.5, 8.0, "distance")),
            TensorSpec("centerness_targets", ("batch", "locations"), Interval(0.0, 1.0, "centerness")),
        ),
        outputs=("cls_loss", "reg_loss", "centerness_loss", "total_loss"),
        shapes=({"batch": 2, "locations": 6}, {"batch": 1, "locations": 9}, {"batch": 3, "locations": 1}),
        source="AutoTimm loss guide",
        summary="FCOS on locations flattened over levels (or per-level lists): focal over all / "
        "num_pos, GIoU of LTRB boxes on positives / num_pos, centerness BCE on positives / "
        "num_pos; -1 = background",
        config={"num_classes": 3},
        edge_cases=_fcos_edges,
        grad_output="total_loss",
    )
)


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


def _centernet_sampler(spec: Spec, sizes, generator: torch.Generator, dtype: torch.dtype):
    b, c, h, w, m = (int(sizes[k]) for k in ("batch", "classes", "height", "width", "objects"))
    heatmap = 2 * torch.randn(b, c, h, w, generator=generator, dtype=dtype)
    wh = 1 + 4 * torch.rand(b, 2, h, w, generator=generator, dtype=dtype)
    reg = torch.rand(b, 2, h, w, generator=generator, dtype=dtype)
    indices = torch.randint(0, h * w, (b, m), generator=generator)
    mask = (torch.rand(b, m, generator=generator) < 0.7).to(dtype)
    classes = torch.randint(0, c, (b, m), generator=generator)
    centre = (
        (classes.unsqueeze(-1) == torch.arange(c)).unsqueeze(-1)
        & (indices.unsqueeze(-1) == torch.arange(h * w)).unsqueeze(-2)
        & (mask > 0).view(b, m, 1, 1)
    ).any(1)
    background = 0.9 * torch.rand(b, c, h * w, generator=generator, dtype=dtype)
    target = torch.where(centre, torch.ones_like(background), background).view(b, c, h, w)
    wh_target = 1 + 4 * torch.rand(b, m, 2, generator=generator, dtype=dtype)
    reg_target = torch.rand(b, m, 2, generator=generator, dtype=dtype)
    return heatmap, wh, reg, target, indices, mask, wh_target, reg_target


def _centernet_edges(dtype: torch.dtype):
    heatmap = torch.full((1, 2, 2, 3), -30.0, dtype=dtype)
    heatmap[0, 1, 0, 2] = 30.0
    target = torch.zeros(1, 2, 2, 3, dtype=dtype)
    target[0, 1, 0, 2] = 1.0
    target[0, 1, 0, 1] = 0.5
    wh = torch.ones(1, 2, 2, 3, dtype=dtype)
    reg = torch.full((1, 2, 2, 3), 0.5, dtype=dtype)
    indices = torch.tensor([[2, 0]])
    mask = torch.tensor([[1.0, 0.0]], dtype=dtype)
    wh_t = torch.tensor([[[1.0, 2.0], [0.0, 0.0]]], dtype=dtype)
    reg_t = torch.tensor([[[0.5, 0.25], [0.0, 0.0]]], dtype=dtype)
    return {
        "extreme_logits_right": (heatmap, wh, reg, target, indices, mask, wh_t, reg_t),
        "extreme_logits_wrong": (-heatmap, wh, reg, target, indices, mask, wh_t, reg_t),
        "no_objects": (heatmap, wh, reg, target * 0.5, indices, mask * 0, wh_t, reg_t),
        "saturated_target": (heatmap, wh, reg, torch.ones_like(target), indices, mask, wh_t, reg_t),
        "zero_object_slots": (
            heatmap,
            wh,
            reg,
            target,
            indices[:, :0].clone(),
            mask[:, :0].clone(),
            wh_t[:, :0].clone(),
            reg_t[:, :0].clone(),
        ),
    }


register(
    Spec(
        name="centernet",
        build=CenterNetLoss,
        inputs=(
            TensorSpec(
                "heatmap", ("batch", "classes", "height", "width"), Real(scale=2.0), differentiable=True
            ),
            TensorSpec("wh", ("batch", 2, "height", "width"), Real(scale=2.0), differentiable=True),
            TensorSpec("reg", ("batch", 2, "height", "width"), Real(), differentiable=True),
            TensorSpec(
                "heatmap_target",
                ("batch", "classes", "height", "width"),
                Interval(0.0, 1.0, "Gaussian heatmap, 1 at object centres"),
            ),
            TensorSpec("indices", ("batch", "objects"), _FlatLocation()),
            TensorSpec("mask", ("batch", "objects"), Binary(p=0.7)),
            TensorSpec("wh_target", ("batch", "objects", 2), Interval(1.0, 5.0, "box size")),
            TensorSpec("reg_target", ("batch", "objects", 2), Interval(0.0, 1.0, "centre offset")),
        ),
        outputs=("hm_loss", "wh_loss", "reg_loss", "total_loss"),
        shapes=(
            {"batch": 3, "classes": 4, "height": 5, "width": 6, "objects": 7},
            {"batch": 1, "classes": 2, "height": 3, "width": 3, "objects": 2},
            {"batch": 3, "classes": 1, "height": 2, "width": 6, "objects": 1},
        ),
        source="loss-library catalog",
        summary="CenterNet: penalty-reduced focal on sigmoid heatmap (alpha 2, beta 4, / max(#centres,"
        " 1)) + masked L1 of wh and offsets gathered at object indices",
        sampler=_centernet_sampler,
        edge_cases=_centernet_edges,
        grad_output="total_loss",
    )
)


def _detection_edges(dtype: torch.dtype):
    def f(rows):
        return torch.tensor(rows, dtype=dtype)

    cls = f([[[30.0, -30.0], [-30.0, 30.0], [-30.0, -30.0]]])
    boxes = f([[[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 4.0, 3.0], [0.0, 0.0, 0.0, 0.0]]])
    labels = torch.tensor([[0, 1, -1]])
    return {
        "identical_boxes": (cls, boxes, labels, boxes.clone()),
        "disjoint_boxes": (-cls, boxes, labels, boxes + 10.0),
        "zero_area_boxes": (
            cls,
            f([[[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0]]]),
            labels,
            boxes.clone(),
        ),
        "no_positives": (cls, boxes, torch.full((1, 3), -1), boxes.clone()),
        "batch_of_one": (cls[:, :1].clone(), boxes[:, :1].clone(), labels[:, :1].clone(), boxes[:, :1] + 0.5),
        "empty": (cls[:, :0].clone(), boxes[:, :0].clone(), labels[:, :0].clone(), boxes[:, :0].clone()),
    }


register(
    Spec(
        name="detection",
        build=DetectionLoss,
        inputs=(
            TensorSpec("cls_logits", ("batch", "anchors", "classes"), Real(scale=2.0), differentiable=True),
            TensorSpec("box_preds", ("batch", "anchors", 4), BoxesXYXY(), differentiable=True),
            TensorSpec(
                "cls_targets",
                ("batch", "anchors"),
                ClassIndex("classes", ignore_index=-1, ignore_fraction=0.5),
            ),
            TensorSpec("box_targets", ("batch", "anchors", 4), BoxesXYXY()),
        ),
        outputs=("cls_loss", "box_loss", "total_loss"),
        shapes=(
            {"batch": 2, "anchors": 5, "classes": 3},
            {"batch": 1, "anchors": 3, "classes": 2},
            {"batch": 3, "anchors": 2, "classes": 1},
        ),
        source="loss-library catalog",
        summary="cls_weight * focal over all rows / num_pos + box_weight * (1 - GIoU|DIoU|CIoU) on "
        "matched rows / num_pos; cls_targets -1 = unmatched",
        edge_cases=_detection_edges,
        grad_output="total_loss",
    )
)
