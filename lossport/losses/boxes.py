"""Box maths and IoU-based box regression losses: GIoU, DIoU, CIoU.

Boxes are float tensors ``[..., 4]``. The pure box functions take ``xyxy`` boxes
``(x1, y1, x2, y2)`` with ``x2 >= x1`` and ``y2 >= y1`` (areas are ``(x2 - x1)(y2 - y1)``,
no ``+ 1``); :func:`box_to_xyxy` converts from ``xywh`` (top-left corner, width, height) and
``cxcywh`` (centre, width, height). Pairs are aligned: ``boxes1[i]`` goes with ``boxes2[i]``
(not every pair, unlike ``torchvision.ops.box_iou``).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn

from lossport.errors import ConfigError, InvalidInputError
from lossport.losses._reduce import REDUCTIONS, weighted_reduce
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import BoxesXYXY

__all__ = [
    "BOX_FORMATS",
    "BOX_LOSSES",
    "CIoULoss",
    "DIoULoss",
    "GIoULoss",
    "aligned_box_iou",
    "aspect_ratio_term",
    "box_iou_loss",
    "box_to_xyxy",
    "center_distance_squared",
    "complete_box_iou_loss",
    "distance_box_iou_loss",
    "enclosing_box",
    "generalized_box_iou_loss",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
BOX_LOSSES = ("giou", "diou", "ciou")


# -- box maths -------------------------------------------------------------------------------


def box_to_xyxy(boxes: torch.Tensor, box_format: str) -> torch.Tensor:
    """``boxes [..., 4]`` in ``box_format`` (``"xyxy"``, ``"xywh"`` or ``"cxcywh"``) as xyxy.

    ``xywh`` is ``(x1, y1, w, h)``; ``cxcywh`` is ``(cx, cy, w, h)``. ``"xyxy"`` returns the
    input itself (no copy).
    """
    if box_format == "xyxy":
        return boxes
    a, b, c, d = boxes.unbind(-1)
    if box_format == "xywh":
        return torch.stack([a, b, a + c, b + d], dim=-1)
    half_w = c / 2
    half_h = d / 2
    return torch.stack([a - half_w, b - half_h, a + half_w, b + half_h], dim=-1)


def _width_height(boxes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    return boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]


def _minimum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``min(a, b) = (a + b - |a - b|) / 2``: at a tie the gradient is split evenly between
    ``a`` and ``b`` in every backend (``torch.min``'s tie gradient differs between eager and
    TorchScript's autodiff), so identical boxes get the gradient 0 everywhere."""
    return (a + b - (a - b).abs()) / 2


def _maximum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``max(a, b) = (a + b + |a - b|) / 2``, ties as :func:`_minimum`."""
    return (a + b + (a - b).abs()) / 2


def aligned_box_iou(
    boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-7
) -> Tuple[torch.Tensor, torch.Tensor]:
    """IoU and union area of aligned pairs of xyxy boxes ``[..., 4]``.

    ``inter = max(0, min(x2) - max(x1)) * max(0, min(y2) - max(y1))``,
    ``union = area1 + area2 - inter``, ``iou = inter / (union + eps)`` (torchvision's eps
    placement: two zero-area boxes give IoU 0, not NaN). Returns ``(iou, union)``, each
    ``[...]``.
    """
    inter_w = (_minimum(boxes1[..., 2], boxes2[..., 2]) - _maximum(boxes1[..., 0], boxes2[..., 0])).clamp(
        min=0
    )
    inter_h = (_minimum(boxes1[..., 3], boxes2[..., 3]) - _maximum(boxes1[..., 1], boxes2[..., 1])).clamp(
        min=0
    )
    inter = inter_w * inter_h
    w1, h1 = _width_height(boxes1)
    w2, h2 = _width_height(boxes2)
    union = w1 * h1 + w2 * h2 - inter
    return inter / (union + eps), union


def enclosing_box(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """The smallest xyxy box ``[..., 4]`` containing both boxes of each aligned pair."""
    top_left = _minimum(boxes1[..., :2], boxes2[..., :2])
    bottom_right = _maximum(boxes1[..., 2:], boxes2[..., 2:])
    return torch.cat([top_left, bottom_right], dim=-1)


def center_distance_squared(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance ``[...]`` between the centres of aligned xyxy boxes."""
    dx = (boxes1[..., 0] + boxes1[..., 2] - boxes2[..., 0] - boxes2[..., 2]) / 2
    dy = (boxes1[..., 1] + boxes1[..., 3] - boxes2[..., 1] - boxes2[..., 3]) / 2
    return dx.pow(2) + dy.pow(2)


def aspect_ratio_term(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """CIoU's aspect-ratio consistency ``v = 4/pi^2 (atan(w2/(h2+eps)) - atan(w1/(h1+eps)))^2``.

    ``eps`` in the denominators keeps ``v`` and its gradient finite for zero-height boxes
    (torchvision divides by ``h`` alone and gives NaN there); for ``h >> eps`` the difference
    is of order ``eps / h``. Returns ``[...]``.
    """
    w1, h1 = _width_height(boxes1)
    w2, h2 = _width_height(boxes2)
    angle = torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))
    return (4 / math.pi**2) * angle.pow(2)


def box_iou_loss(pred: torch.Tensor, target: torch.Tensor, kind: str, eps: float = 1e-7) -> torch.Tensor:
    """Element-wise ``1 - GIoU``, ``1 - DIoU`` or ``1 - CIoU`` of aligned xyxy boxes.

    ``kind`` selects the penalty terms added to ``1 - IoU``:

    - ``"giou"`` (Rezatofighi et al., CVPR 2019): ``+ (C - U) / (C + eps)``, ``C`` the area of
      the enclosing box, ``U`` the union;
    - ``"diou"`` (Zheng et al., AAAI 2020): ``+ rho^2 / (c^2 + eps)``, ``rho`` the distance of
      the centres, ``c`` the diagonal of the enclosing box;
    - ``"ciou"`` (same paper): the DIoU terms ``+ alpha v``, ``v`` from
      :func:`aspect_ratio_term` and ``alpha = v / (1 - IoU + v + eps)`` computed without
      gradient (detached), as the authors' code, torchvision and ultralytics do. The CIoU
      gradient is therefore that of ``DIoU + alpha v`` with ``alpha`` held constant, not the
      derivative of the value: a finite-difference gradient check disagrees with it by design.

    IoU from :func:`aligned_box_iou`. Same formulas and eps placement as
    ``torchvision.ops.{generalized,distance,complete}_box_iou_loss`` except CIoU's ``atan``
    argument (see :func:`aspect_ratio_term`); seed 004's GIoU clamps the union and the
    enclosing area at ``eps`` instead of adding ``eps``, which differs only for areas near
    ``eps``. Finite, with finite gradient, for any valid
    boxes: disjoint, identical, zero-area, zero-height; min/max ties split the gradient evenly
    (:func:`_minimum`), so identical boxes have gradient 0. Returns ``[...]``.
    """
    iou, union = aligned_box_iou(pred, target, eps)
    outer_w, outer_h = _width_height(enclosing_box(pred, target))
    if kind == "giou":
        outer_area = outer_w * outer_h
        return 1 - iou + (outer_area - union) / (outer_area + eps)
    loss = 1 - iou + center_distance_squared(pred, target) / (outer_w.pow(2) + outer_h.pow(2) + eps)
    if kind == "ciou":
        v = aspect_ratio_term(pred, target, eps)
        alpha = (v / (1 - iou + v + eps)).detach()
        loss = loss + alpha * v
    return loss


# -- losses ----------------------------------------------------------------------------------


def _reduced_box_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    kind: str,
    weights: Optional[torch.Tensor],
    reduction: str,
    eps: float,
    box_format: str,
) -> torch.Tensor:
    loss = box_iou_loss(box_to_xyxy(pred, box_format), box_to_xyxy(target, box_format), kind, eps)
    return weighted_reduce(loss, weights, reduction, eps)


def generalized_box_iou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weights: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    eps: float = 1e-7,
    box_format: str = "xyxy",
) -> torch.Tensor:
    """``1 - GIoU`` = ``1 - IoU + (C - U) / (C + eps)`` (see :func:`box_iou_loss`).

    Shapes: ``pred`` and ``target`` float ``[N, 4]`` or any ``[..., 4]`` in ``box_format``
    (``"xyxy"``, ``"xywh"`` or ``"cxcywh"``), aligned pairwise; ``weights`` optional float
    ``[...]`` (the boxes' shape without the last dimension), >= 0.
    Reduction: ``"mean"`` is the plain mean, or with weights ``sum(w l) / max(sum(w), eps)``;
    ``"sum"`` is ``sum(w l)``; ``"none"`` returns ``w l`` of shape ``[...]``. Empty input
    (``N = 0``) gives 0 for ``"mean"`` and ``"sum"``.
    Values lie in ``[0, 2)``: about 0 for identical boxes, above 1 for disjoint ones.
    """
    return _reduced_box_loss(pred, target, "giou", weights, reduction, eps, box_format)


def distance_box_iou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weights: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    eps: float = 1e-7,
    box_format: str = "xyxy",
) -> torch.Tensor:
    """``1 - DIoU`` = ``1 - IoU + rho^2 / (c^2 + eps)`` (see :func:`box_iou_loss`).

    Shapes, weights, reduction and empty input as :func:`generalized_box_iou_loss`.
    """
    return _reduced_box_loss(pred, target, "diou", weights, reduction, eps, box_format)


def complete_box_iou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weights: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    eps: float = 1e-7,
    box_format: str = "xyxy",
) -> torch.Tensor:
    """``1 - CIoU`` = ``1 - DIoU + alpha v``, ``alpha`` detached (see :func:`box_iou_loss`).

    ``v`` uses ``atan(w / (h + eps))`` (finite at zero height, see :func:`aspect_ratio_term`).
    Shapes, weights, reduction and empty input as :func:`generalized_box_iou_loss`.
    """
    return _reduced_box_loss(pred, target, "ciou", weights, reduction, eps, box_format)


def check_box_options(kind: str, reduction: str, eps: float, box_format: str) -> None:
    """Constructor checks shared by the box losses (raise :class:`ConfigError`)."""
    checks.check_choice(kind, "box_loss", BOX_LOSSES)
    checks.check_choice(reduction, "reduction", REDUCTIONS)
    checks.check_choice(box_format, "box_format", BOX_FORMATS)
    if not eps > 0:
        raise ConfigError(f"eps must be > 0, got {eps}")


def check_boxes(
    pred: torch.Tensor,
    target: torch.Tensor,
    box_format: str,
    pred_name: str = "pred",
    target_name: str = "target",
    used: Optional[torch.Tensor] = None,
) -> None:
    """Eager checks: float ``[..., 4]`` boxes of one shape; target widths and heights >= 0
    (only where the bool mask ``used [...]`` is True, if given).

    Predicted boxes are not checked for ``x2 >= x1`` (a network may emit inverted boxes
    while training); their loss is then finite but meaningless.
    """
    checks.check_float(pred, pred_name)
    checks.check_min_rank(pred, pred_name, 1, "[N, 4] or [..., 4]")
    checks.check_dim(pred, pred_name, -1, 4, f"box coordinates, {box_format}")
    checks.check_float(target, target_name)
    checks.check_same_shape(pred, pred_name, target, target_name)
    width, height = _width_height(box_to_xyxy(target, box_format))
    sides = torch.stack([width, height], dim=-1)
    if used is not None:
        sides = torch.where(used.unsqueeze(-1), sides, torch.zeros_like(sides))
    if sides.numel() > 0 and not bool((sides >= 0).all()):
        bad = sides[sides < 0].flatten()[0].item()
        raise InvalidInputError(
            f"{target_name} boxes must have non-negative width and height "
            f"(box_format {box_format!r}), found a side of {bad!r}"
        )


def _check_weights(weights: Optional[torch.Tensor], pred: torch.Tensor) -> None:
    if weights is None:
        return
    checks.check_float(weights, "weights")
    expected = list(pred.shape[:-1])
    checks.check_shape(
        weights, "weights", expected, f"{expected} (one weight per box of pred {list(pred.shape)})"
    )
    checks.check_range(weights, "weights", 0.0, math.inf, "box weights")


class _BoxIoULoss(nn.Module):
    """Shared module body of :class:`GIoULoss`, :class:`DIoULoss` and :class:`CIoULoss`."""

    def __init__(self, kind: str, reduction: str, eps: float, box_format: str) -> None:
        super().__init__()
        check_box_options(kind, reduction, eps, box_format)
        self.kind = kind
        self.reduction = reduction
        self.eps = float(eps)
        self.box_format = box_format

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, weights: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            check_boxes(pred, target, self.box_format)
            _check_weights(weights, pred)
        return _reduced_box_loss(pred, target, self.kind, weights, self.reduction, self.eps, self.box_format)


class GIoULoss(_BoxIoULoss):
    """Module form of :func:`generalized_box_iou_loss`: ``forward(pred, target, weights=None)``."""

    def __init__(self, reduction: str = "mean", eps: float = 1e-7, box_format: str = "xyxy") -> None:
        super().__init__("giou", reduction, eps, box_format)


class DIoULoss(_BoxIoULoss):
    """Module form of :func:`distance_box_iou_loss`: ``forward(pred, target, weights=None)``."""

    def __init__(self, reduction: str = "mean", eps: float = 1e-7, box_format: str = "xyxy") -> None:
        super().__init__("diou", reduction, eps, box_format)


class CIoULoss(_BoxIoULoss):
    """Module form of :func:`complete_box_iou_loss`: ``forward(pred, target, weights=None)``."""

    def __init__(self, reduction: str = "mean", eps: float = 1e-7, box_format: str = "xyxy") -> None:
        super().__init__("ciou", reduction, eps, box_format)


# -- specs -----------------------------------------------------------------------------------


def _box_edges(dtype: torch.dtype):
    def boxes(*rows):
        return torch.tensor(rows, dtype=dtype)

    unit = boxes([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 4.0, 3.0])
    return {
        "identical": (unit.clone(), unit.clone()),
        "disjoint": (unit.clone(), unit + 10.0),
        "touching": (boxes([0.0, 0.0, 1.0, 1.0]), boxes([1.0, 0.0, 2.0, 1.0])),
        "zero_area_pred": (boxes([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 3.0, 0.0]), unit.clone()),
        "zero_area_both": (boxes([1.0, 1.0, 1.0, 1.0]), boxes([1.0, 1.0, 1.0, 1.0])),
        "zero_height": (boxes([0.0, 1.0, 2.0, 1.0]), boxes([0.0, 0.0, 2.0, 0.0])),
        "nested": (boxes([1.0, 1.0, 2.0, 2.0]), boxes([0.0, 0.0, 4.0, 3.0])),
        "batch_of_one": (boxes([0.5, 0.5, 3.0, 2.0]), boxes([1.0, 0.0, 2.0, 4.0])),
        "empty": (torch.zeros(0, 4, dtype=dtype), torch.zeros(0, 4, dtype=dtype)),
    }


_BOX_SPECS = (
    ("giou", GIoULoss, "1 - IoU + (C - U)/(C + eps)", "torchvision.ops.generalized_box_iou_loss", True),
    ("diou", DIoULoss, "1 - IoU + rho^2/(c^2 + eps)", "torchvision.ops.distance_box_iou_loss", True),
    (
        "ciou",
        CIoULoss,
        "1 - IoU + rho^2/(c^2 + eps) + alpha v, alpha detached, v from atan(w/(h + eps))",
        "torchvision.ops.complete_box_iou_loss",
        False,
    ),
)

for _name, _build, _formula, _peer, _exact in _BOX_SPECS:
    register(
        Spec(
            name=_name,
            build=_build,
            inputs=(
                TensorSpec("pred", ("boxes", 4), BoxesXYXY(), differentiable=True),
                TensorSpec("target", ("boxes", 4), BoxesXYXY()),
            ),
            outputs=("loss",),
            shapes=({"boxes": 5}, {"boxes": 3}, {"boxes": 1}),
            source="loss-library catalog; AutoTimm loss guide",
            summary=f"{_formula} on aligned boxes [..., 4] (box_format xyxy|xywh|cxcywh); optional "
            f"per-box weights, weighted mean sum(w l)/max(sum(w), eps); empty input -> 0",
            peer=_peer,
            edge_cases=_box_edges,
            exact_gradient=_exact,
        )
    )
