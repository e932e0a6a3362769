"""Pieces shared by the detection losses; no loss of its own and no spec.

- config checks: non-negative weights (:func:`_check_options`), sigmoid-focal ``alpha`` and
  ``gamma`` (:func:`_check_focal`);
- the two terms of a dense detector (:func:`_dense_terms`, used by FCOS and the combined
  detection loss): sigmoid focal over every location and class, with one-vs-all targets
  (:func:`_one_hot_last`, rows of zeros for background), and an IoU-family box loss over the
  positive locations (:func:`_positive_box_loss`), both divided by ``max(num_pos, 1)``;
- the eager check of dense class targets (:func:`_check_dense_targets`): int64, the logits'
  shape without the class dimension, a class in ``[0, C)`` or negative for background;
- for the specs' edge cases, :func:`_truncated`: every input cut along dimension 1 (one
  anchor / location / object slot, or none).

Positives (class index >= 0) are selected with masks and ``where``, never by boolean
indexing, so shapes never depend on the data.
"""

from __future__ import annotations

from typing import Tuple

import torch

from lossport.errors import ConfigError
from lossport.losses._reduce import masked_mean
from lossport.losses.boxes import box_iou_loss
from lossport.losses.classification import sigmoid_focal_loss
from lossport.spec import checks


def _check_options(**values: float) -> None:
    for name, value in values.items():
        if not value >= 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")


def _check_focal(alpha: float, gamma: float, prefix: str = "") -> None:
    if gamma < 0:
        raise ConfigError(f"{prefix}gamma must be >= 0, got {gamma}")
    if alpha > 1:
        raise ConfigError(f"{prefix}alpha must be in [0, 1] (or < 0 to disable it), got {alpha}")


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


# -- edge cases ------------------------------------------------------------------------------


def _truncated(inputs: Tuple[torch.Tensor, ...], length: int) -> Tuple[torch.Tensor, ...]:
    """Copies of ``inputs``, each cut to its first ``length`` entries along dimension 1 (the
    anchors, locations or object slots): edge cases with one such entry, or none."""
    return tuple(t[:, :length].clone() for t in inputs)
