"""Combined detection loss: sigmoid focal classification + IoU-family box loss on matched rows.

One row per anchor / query / prediction slot: ``cls_logits [B, N, C]`` (or any ``[..., C]``),
``box_preds`` and ``box_targets [B, N, 4]`` in ``box_format`` (``xyxy``, ``xywh`` or
``cxcywh``, box maths from :mod:`lossport.losses.boxes`), ``cls_targets [B, N]`` int64 with -1
(any negative) for an unmatched row. Both terms are divided by ``max(#matched, 1)``
(RetinaNet's normalisation); the box term is ``1 - GIoU``, ``1 - DIoU`` or ``1 - CIoU``.
Returns a dict ``cls_loss``, ``box_loss``, ``total_loss`` (components already weighted, their
sum last). Spec ``detection``.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from lossport.losses.boxes import box_to_xyxy, check_box_options, check_boxes
from lossport.losses.detection.common import (
    _check_dense_targets,
    _check_focal,
    _check_options,
    _dense_terms,
    _truncated,
)
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import BoxesXYXY, ClassIndex, Real


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


# -- spec ------------------------------------------------------------------------------------


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
        "batch_of_one": _truncated((cls, boxes, labels, boxes + 0.5), 1),
        "empty": _truncated((cls, boxes, labels, boxes), 0),
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
