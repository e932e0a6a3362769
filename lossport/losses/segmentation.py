"""Segmentation losses: pixel-wise focal, soft Dice / IoU / Tversky, binary mask BCE, CE + Dice.

Dense class predictions are logits ``[B, C, H, W]`` (class dimension 1) with int64 class-index
targets ``[B, H, W]``; pixels whose target equals ``ignore_index`` take no part in any term.
Instance masks are logits ``[N, H, W]`` or ``[N, 1, H, W]`` with float targets in ``[0, 1]``.

Dice, IoU and Tversky share one soft-overlap core (:func:`soft_overlap_stats`): per image and
class, ``I = sum(p * g)``, ``P = sum(p)``, ``G = sum(g)`` over the valid pixels, where ``p`` is
the softmax probability and ``g`` the one-hot target, both set to 0 at ignored pixels. Each loss
is a score of these three sums, smoothed by ``smooth`` in numerator and denominator, computed
per ``(image, class)`` with the background class included, then reduced over ``(B, C)``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from lossport.errors import ConfigError
from lossport.losses._reduce import REDUCTIONS, reduce_loss
from lossport.losses.classification import (
    _class_weight_buffer,
    binary_cross_entropy_with_logits,
    cross_entropy_loss,
    softmax_focal_loss,
)
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import Binary, ClassIndex, Real

__all__ = [
    "CombinedSegmentationLoss",
    "DiceLoss",
    "FocalLossPixelwise",
    "IoULoss",
    "MaskLoss",
    "TverskyLoss",
    "combined_segmentation_loss",
    "dice_loss",
    "focal_loss_pixelwise",
    "iou_loss",
    "mask_loss",
    "soft_overlap_stats",
    "tversky_loss",
]


def _valid_one_hot(
    target: torch.Tensor, num_classes: int, ignore_index: int, dtype: torch.dtype
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(one_hot [B, C, H, W], valid [B, 1, H, W])`` in ``dtype``; ignored pixels are all-zero."""
    valid = (target != ignore_index).unsqueeze(1)
    classes = torch.arange(num_classes, device=target.device).view(1, num_classes, 1, 1)
    one_hot = (target.unsqueeze(1) == classes) & valid
    return one_hot.to(dtype), valid.to(dtype)


def soft_overlap_stats(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft overlap sums per image and class: ``(I, P, G)``, each ``[B, C]``.

    ``p = softmax(logits, dim=1)`` and ``g = one_hot(target)`` are both multiplied by the valid
    mask ``target != ignore_index``; then ``I = sum_hw(p g)``, ``P = sum_hw(p)``,
    ``G = sum_hw(g)``. ``logits`` float ``[B, C, H, W]``, ``target`` int64 ``[B, H, W]``.
    Soft false positives and false negatives are ``P - I`` and ``G - I``.
    """
    one_hot, valid = _valid_one_hot(target, logits.shape[1], ignore_index, logits.dtype)
    probability = torch.softmax(logits, dim=1) * valid
    intersection = (probability * one_hot).sum(dim=(2, 3))
    return intersection, probability.sum(dim=(2, 3)), one_hot.sum(dim=(2, 3))


def _overlap_loss(numerator: torch.Tensor, denominator: torch.Tensor, reduction: str) -> torch.Tensor:
    """``1 - numerator / denominator`` per (image, class), reduced; ``0 / 0`` (``smooth = 0``
    and nothing valid to compare) counts as a perfect score, loss 0."""
    empty = denominator <= 0
    safe = torch.where(empty, torch.ones_like(denominator), denominator)
    score = torch.where(empty, torch.ones_like(numerator), numerator / safe)
    return reduce_loss(1 - score, reduction)


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    smooth: float = 1.0,
    ignore_index: int = 255,
    reduction: str = "mean",
) -> torch.Tensor:
    """Soft Dice loss over softmax probabilities, per image and class.

    ``loss[b, c] = 1 - (2 I + smooth) / (P + G + smooth)`` with ``I, P, G`` from
    :func:`soft_overlap_stats` (ignored pixels removed from prediction and target). Background
    included. ``reduction``: ``"mean"`` over ``(B, C)``, ``"sum"``, or ``"none"`` (``[B, C]``).
    A class absent from an image's target scores ``1 - s / (P + s)``: its probability mass is
    penalised. An image whose pixels are all ignored has ``I = P = G = 0`` and loss 0 for every
    class (with ``smooth = 0`` too: ``0 / 0`` counts as a perfect score). Otherwise the same as
    ``monai.losses.DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=smooth, smooth_dr=smooth,
    ignore_index=ignore_index)`` (which gives NaN for that ``0 / 0``).
    """
    intersection, pred_sum, target_sum = soft_overlap_stats(logits, target, ignore_index)
    return _overlap_loss(2 * intersection + smooth, pred_sum + target_sum + smooth, reduction)


def iou_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    smooth: float = 1.0,
    ignore_index: int = 255,
    reduction: str = "mean",
) -> torch.Tensor:
    """Soft Jaccard (IoU) loss: ``loss[b, c] = 1 - (I + smooth) / (P + G - I + smooth)``.

    Conventions, reduction and edge behaviour as :func:`dice_loss`. MONAI's
    ``DiceLoss(jaccard=True)`` computes ``(2 I + s_nr) / (2 (P + G - I) + s_dr)``; it equals this
    loss with ``s_nr = s_dr = 2 * smooth``.
    """
    intersection, pred_sum, target_sum = soft_overlap_stats(logits, target, ignore_index)
    return _overlap_loss(intersection + smooth, pred_sum + target_sum - intersection + smooth, reduction)


def tversky_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth: float = 1.0,
    ignore_index: int = 255,
    reduction: str = "mean",
) -> torch.Tensor:
    """Tversky loss (Salehi et al. 2017): ``1 - (I + s) / (I + alpha FP + beta FN + s)``.

    ``FP = P - I`` (soft false positives, weighted by ``alpha``), ``FN = G - I`` (soft false
    negatives, weighted by ``beta``), per image and class. ``alpha = beta = 0.5`` is Dice with
    the smoothing doubled. Conventions, reduction and edge behaviour as :func:`dice_loss`.
    Otherwise the same as ``monai.losses.TverskyLoss(softmax=True, to_onehot_y=True, smooth_nr=s,
    smooth_dr=s, ignore_index=ignore_index)``.
    """
    intersection, pred_sum, target_sum = soft_overlap_stats(logits, target, ignore_index)
    false_pos = pred_sum - intersection
    false_neg = target_sum - intersection
    return _overlap_loss(
        intersection + smooth, intersection + alpha * false_pos + beta * false_neg + smooth, reduction
    )


def focal_loss_pixelwise(
    logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    ignore_index: int = 255,
    reduction: str = "mean",
) -> torch.Tensor:
    """Softmax focal loss per pixel: ``-alpha (1 - p_t)^gamma log(p_t)``.

    ``p_t`` is the softmax probability (over dimension 1 of ``[B, C, H, W]`` logits) of the
    target class (``[B, H, W]``). ``alpha`` is one scalar multiplier for every class (not the
    binary ``alpha_t`` of RetinaNet, nor kornia's ``1 - alpha`` for class 0). This is
    ``alpha`` times :func:`~lossport.losses.classification.softmax_focal_loss` without class
    weights. ``reduction``: ``"mean"`` over valid pixels (0 when every pixel is ignored),
    ``"sum"``, or ``"none"`` (``[B, H, W]``, 0 at ignored pixels).
    """
    return alpha * softmax_focal_loss(logits, target, None, gamma, ignore_index, reduction)


def mask_loss(
    logits: torch.Tensor, target: torch.Tensor, pos_weight: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Binary cross-entropy with logits on instance masks (:func:`~lossport.losses.classification.binary_cross_entropy_with_logits`).

    Equals ``F.binary_cross_entropy_with_logits(pos_weight=...)``; ``pos_weight = 1`` is plain
    BCE. ``logits`` and ``target`` share one shape, ``[N, H, W]`` or ``[N, 1, H, W]``;
    ``target`` holds floats in ``[0, 1]``. ``reduction``: ``"mean"`` over all pixels (0 when
    empty), ``"sum"``, ``"none"``.
    """
    return reduce_loss(binary_cross_entropy_with_logits(logits, target, pos_weight), reduction)


def combined_segmentation_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_weights: Optional[torch.Tensor] = None,
    ce_weight: float = 1.0,
    dice_weight: float = 1.0,
    smooth: float = 1.0,
    ignore_index: int = 255,
) -> torch.Tensor:
    """``ce_weight * CE + dice_weight * Dice`` over the valid pixels of ``[B, C, H, W]`` logits.

    ``CE`` is :func:`~lossport.losses.classification.cross_entropy_loss` with
    ``weight=class_weights`` (``[C]`` or None): ``sum(w_y ce) / sum(w_y)`` over non-ignored
    pixels, as ``F.cross_entropy(weight=..., ignore_index=...)`` except that all-ignored
    targets give 0, not NaN. The class weights enter the CE term only (MONAI's ``DiceCELoss``
    applies its ``weight`` to the Dice term too). ``Dice`` is :func:`dice_loss` (mean over
    ``(B, C)``).
    """
    ce_term = cross_entropy_loss(logits, target, class_weights, ignore_index)
    dice_term = dice_loss(logits, target, smooth, ignore_index, "mean")
    return ce_weight * ce_term + dice_weight * dice_term


def _check_dense(
    logits: torch.Tensor, target: torch.Tensor, num_classes: Optional[int], ignore_index: int
) -> None:
    """Eager checks for ``[B, C, H, W]`` logits and ``[B, H, W]`` class-index targets;
    ``num_classes=None`` takes the class count from the logits."""
    checks.check_float(logits, "logits")
    checks.check_rank(logits, "logits", [4], "[B, C, H, W]")
    if num_classes is None:
        num_classes = logits.shape[1]
    checks.check_dim(logits, "logits", 1, num_classes, f"num_classes = {num_classes}")
    checks.check_index(target, "target")
    batch, _, height, width = logits.shape
    checks.check_shape(
        target,
        "target",
        [batch, height, width],
        f"[B, H, W] = [{batch}, {height}, {width}] matching logits "
        f"[{batch}, {num_classes}, {height}, {width}]",
    )
    checks.check_class_index(target, "target", num_classes, ignore_index)


def _check_num_classes(num_classes: int) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive int, got {num_classes!r}")


def _check_smooth(smooth: float) -> None:
    if smooth < 0:
        raise ConfigError(f"smooth must be >= 0, got {smooth}")


class FocalLossPixelwise(nn.Module):
    """Module form of :func:`focal_loss_pixelwise`.

    The class count is taken from the logits; ``forward`` checks targets against it.
    """

    def __init__(
        self, alpha: float = 0.25, gamma: float = 2.0, ignore_index: int = 255, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"gamma must be >= 0, got {gamma}")
        checks.check_choice(reduction, "reduction", REDUCTIONS)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.ignore_index = ignore_index
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            _check_dense(logits, target, None, self.ignore_index)
        return focal_loss_pixelwise(logits, target, self.alpha, self.gamma, self.ignore_index, self.reduction)


class _OverlapLoss(nn.Module):
    """Shared constructor, checks and ``forward`` of the soft-overlap losses (Dice, IoU, Tversky).

    A subclass says only what differs: its loss of the checked inputs, in ``_loss``.
    """

    def __init__(
        self, num_classes: int, smooth: float = 1.0, ignore_index: int = 255, reduction: str = "mean"
    ) -> None:
        super().__init__()
        _check_num_classes(num_classes)
        _check_smooth(smooth)
        checks.check_choice(reduction, "reduction", REDUCTIONS)
        self.num_classes = num_classes
        self.smooth = float(smooth)
        self.ignore_index = ignore_index
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(logits, target)
        return self._loss(logits, target)

    def _check(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        _check_dense(logits, target, self.num_classes, self.ignore_index)

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class DiceLoss(_OverlapLoss):
    """Module form of :func:`dice_loss`: ``DiceLoss(num_classes, smooth=1.0, ignore_index=255,
    reduction="mean")``, ``forward(logits, target)``."""

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return dice_loss(logits, target, self.smooth, self.ignore_index, self.reduction)


class IoULoss(_OverlapLoss):
    """Module form of :func:`iou_loss`: ``IoULoss(num_classes, smooth=1.0, ignore_index=255,
    reduction="mean")``, ``forward(logits, target)``."""

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return iou_loss(logits, target, self.smooth, self.ignore_index, self.reduction)


class TverskyLoss(_OverlapLoss):
    """Module form of :func:`tversky_loss`; ``alpha`` weighs false positives, ``beta`` false
    negatives."""

    def __init__(
        self,
        num_classes: int,
        alpha: float = 0.5,
        beta: float = 0.5,
        smooth: float = 1.0,
        ignore_index: int = 255,
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes, smooth, ignore_index, reduction)
        if alpha < 0 or beta < 0:
            raise ConfigError(f"alpha and beta must be >= 0, got alpha={alpha}, beta={beta}")
        self.alpha = float(alpha)
        self.beta = float(beta)

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return tversky_loss(
            logits, target, self.alpha, self.beta, self.smooth, self.ignore_index, self.reduction
        )


class MaskLoss(nn.Module):
    """Module form of :func:`mask_loss`; ``pos_weight=None`` means plain BCE (weight 1)."""

    def __init__(self, pos_weight: Optional[float] = None, reduction: str = "mean") -> None:
        super().__init__()
        if pos_weight is not None and pos_weight <= 0:
            raise ConfigError(f"pos_weight must be > 0 or None, got {pos_weight}")
        checks.check_choice(reduction, "reduction", REDUCTIONS)
        self.pos_weight = 1.0 if pos_weight is None else float(pos_weight)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            checks.check_float(logits, "logits")
            checks.check_rank(logits, "logits", [3, 4], "[N, H, W] or [N, 1, H, W]")
            if logits.dim() == 4:
                checks.check_dim(logits, "logits", 1, 1, "one mask channel")
            checks.check_float(target, "target")
            checks.check_same_shape(logits, "logits", target, "target")
            checks.check_range(target, "target", 0.0, 1.0, "mask values")
        return mask_loss(logits, target, self.pos_weight, self.reduction)


class CombinedSegmentationLoss(nn.Module):
    """Module form of :func:`combined_segmentation_loss`.

    ``class_weights``: None, or ``num_classes`` non-negative values (a list or a tensor) that
    weigh the CE term only; kept as a buffer (moves with ``.to``).
    """

    def __init__(
        self,
        num_classes: int,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        ignore_index: int = 255,
        class_weights: Optional[Union[Sequence[float], torch.Tensor]] = None,
        smooth: float = 1.0,
    ) -> None:
        super().__init__()
        _check_num_classes(num_classes)
        _check_smooth(smooth)
        if ce_weight < 0 or dice_weight < 0:
            raise ConfigError(
                f"ce_weight and dice_weight must be >= 0, got ce_weight={ce_weight}, "
                f"dice_weight={dice_weight}"
            )
        weights = _class_weight_buffer(class_weights, "class_weights")
        if weights is not None and weights.numel() != num_classes:
            raise ConfigError(
                f"class_weights must hold one value per class ({num_classes}), got {weights.tolist()}"
            )
        self.register_buffer("class_weights", weights)
        self.num_classes = num_classes
        self.ce_weight = float(ce_weight)
        self.dice_weight = float(dice_weight)
        self.ignore_index = ignore_index
        self.smooth = float(smooth)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            _check_dense(logits, target, self.num_classes, self.ignore_index)
        return combined_segmentation_loss(
            logits,
            target,
            self.class_weights,
            self.ce_weight,
            self.dice_weight,
            self.smooth,
            self.ignore_index,
        )


# -- specs ---------------------------------------------------------------------------------

_NUM_CLASSES = 3
_SHAPES = (
    {"batch": 2, "height": 5, "width": 6},
    {"batch": 3, "height": 4, "width": 3},
    {"batch": 1, "height": 7, "width": 2},
)
_DENSE_INPUTS = (
    TensorSpec("logits", ("batch", "num_classes", "height", "width"), Real(scale=2.0), differentiable=True),
    TensorSpec("target", ("batch", "height", "width"), ClassIndex("num_classes", ignore_index=255)),
)


def _dense_edges(dtype: torch.dtype):
    target = torch.tensor([[[0, 1, 2], [2, 1, 0]], [[1, 1, 255], [0, 255, 2]]])
    one_hot = F.one_hot(torch.where(target == 255, 0, target), _NUM_CLASSES)
    confident = one_hot.permute(0, 3, 1, 2).to(dtype) * 60 - 30
    wrong = confident.roll(1, dims=1)
    mixed = torch.linspace(-3, 3, 2 * _NUM_CLASSES * 6, dtype=dtype).reshape(2, _NUM_CLASSES, 2, 3)
    return {
        "extreme_logits_correct": (confident, target),
        "extreme_logits_wrong": (wrong, target),
        "all_ignored": (mixed, torch.full_like(target, 255)),
        "absent_class": (mixed, torch.where(target == 2, 0, target)),
        "single_class_image": (mixed, torch.zeros_like(target)),
        "batch_of_one": (mixed[:1].clone(), target[:1].clone()),
    }


def _dense_spec(name: str, build, summary: str, source: str, peer: Optional[str]) -> Spec:
    return Spec(
        name=name,
        build=build,
        inputs=_DENSE_INPUTS,
        outputs=("loss",),
        shapes=_SHAPES,
        source=source,
        summary=summary,
        config={"num_classes": _NUM_CLASSES},
        peer=peer,
        edge_cases=_dense_edges,
    )


def _mask_edges(dtype: torch.dtype):
    logits = torch.tensor([[[30.0, -30.0], [30.0, -30.0]], [[0.5, -0.5], [2.0, -2.0]]], dtype=dtype)
    target = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]], dtype=dtype)
    return {
        "extreme_logits": (logits, target),
        "empty_masks": (logits, torch.zeros_like(target)),
        "full_masks": (logits, torch.ones_like(target)),
        "batch_of_one": (logits[:1].clone(), target[:1].clone()),
    }


register(
    Spec(
        name="focal_pixelwise",
        build=FocalLossPixelwise,
        inputs=(
            TensorSpec(
                "logits", ("batch", "classes", "height", "width"), Real(scale=2.0), differentiable=True
            ),
            TensorSpec("target", ("batch", "height", "width"), ClassIndex("classes", ignore_index=255)),
        ),
        outputs=("loss",),
        shapes=tuple(dict(sizes, classes=classes) for sizes, classes in zip(_SHAPES, (3, 4, 2))),
        source="AutoTimm loss guide",
        summary="softmax focal -alpha (1-p_t)^gamma log p_t per pixel of [B,C,H,W] logits, scalar "
        "alpha; mean over non-ignored pixels (all ignored -> 0)",
        peer="kornia.losses.focal_loss (reduction none, masked mean over valid pixels)",
        edge_cases=_dense_edges,
    )
)
register(
    _dense_spec(
        "dice",
        DiceLoss,
        "1 - (2I+s)/(P+G+s) per (image, class) on softmax probabilities, ignored "
        "pixels removed from both, background included, mean over (B, C)",
        "003, 004",
        "monai.losses.DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=s, smooth_dr=s)",
    )
)
register(
    _dense_spec(
        "iou",
        IoULoss,
        "soft Jaccard 1 - (I+s)/(P+G-I+s) per (image, class), conventions as dice",
        "003",
        "monai.losses.DiceLoss(jaccard=True, smooth_nr=2s, smooth_dr=2s)",
    )
)
register(
    _dense_spec(
        "tversky",
        TverskyLoss,
        "1 - (I+s)/(I + alpha FP + beta FN + s) per (image, class), alpha on "
        "false positives, conventions as dice",
        "004",
        "monai.losses.TverskyLoss",
    )
)
register(
    Spec(
        name="mask",
        build=MaskLoss,
        inputs=(
            TensorSpec("logits", ("batch", "height", "width"), Real(scale=2.0), differentiable=True),
            TensorSpec("target", ("batch", "height", "width"), Binary()),
        ),
        outputs=("loss",),
        shapes=_SHAPES,
        source="AutoTimm loss guide",
        summary="BCE-with-logits on [N,H,W] or [N,1,H,W] masks, optional pos_weight, mean",
        peer="torch.nn.functional.binary_cross_entropy_with_logits",
        edge_cases=_mask_edges,
    )
)
register(
    _dense_spec(
        "combined_segmentation",
        CombinedSegmentationLoss,
        "ce_weight * CE (class_weights, mean over non-ignored, all ignored -> 0) + dice_weight * "
        "Dice (as dice)",
        "004",
        "monai.losses.DiceCELoss (no ignored pixels)",
    )
)
