"""Cases for the box losses GIoU / DIoU / CIoU (see loss_cases/__init__.py for the contract)."""

import math

import torch

from loss_cases import BadCase, HandCase, Peer
from lossport.errors import ConfigError

t = torch.tensor

# pred [0,0,2,2] vs target [1,1,3,3]: inter 1, union 7, enclosing [0,0,3,3] (area 9, diagonal^2
# 18), centres (1,1) and (2,2) at distance^2 2, same aspect ratio (v = 0).
OVERLAP = (t([[0.0, 0.0, 2.0, 2.0]]), t([[1.0, 1.0, 3.0, 3.0]]))
# disjoint unit boxes: union 2, enclosing [0,0,3,3], centre distance^2 8
DISJOINT = (t([[0.0, 0.0, 1.0, 1.0]]), t([[2.0, 2.0, 3.0, 3.0]]))
# a point inside a 2x2 box: IoU 0, enclosing = the target (GIoU penalty 0), same centre
POINT = (t([[1.0, 1.0, 1.0, 1.0]]), t([[0.0, 0.0, 2.0, 2.0]]))
# a 2x1 and a 1x2 box sharing the corner at the origin: inter 1, union 3, enclosing 2x2
# (diagonal^2 8), centres (1, .5) and (.5, 1) at distance^2 .5
CROSS = (t([[0.0, 0.0, 2.0, 1.0]]), t([[0.0, 0.0, 1.0, 2.0]]))
_V_CROSS = 4 / math.pi**2 * (math.atan(0.5) - math.atan(2.0)) ** 2
_V_POINT = 4 / math.pi**2 * (math.pi / 4) ** 2  # atan(0 / eps) = 0 against atan(1)

IDENTICAL = (t([[1.0, 2.0, 4.0, 3.0]]), t([[1.0, 2.0, 4.0, 3.0]]))
TWO = (
    t([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]]),
    t([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0]]),
)  # the overlap and disjoint pairs
GIOU_OVERLAP = 1 - 1 / 7 + 2 / 9
GIOU_DISJOINT = 1 + 7 / 9
DIOU_OVERLAP = 1 - 1 / 7 + 2 / 18
DIOU_DISJOINT = 1 + 8 / 18

HAND = {
    "giou": [
        HandCase(OVERLAP, {"loss": GIOU_OVERLAP}, note="overlap"),
        HandCase(DISJOINT, {"loss": GIOU_DISJOINT}, note="disjoint"),
        HandCase(POINT, {"loss": 1.0}, note="zero-area pred inside the target"),
        HandCase(IDENTICAL, {"loss": 0.0}, note="identical"),
        HandCase(CROSS, {"loss": 1 - 1 / 3 + 1 / 4}, note="cross"),
        HandCase(TWO, {"loss": (GIOU_OVERLAP + GIOU_DISJOINT) / 2}, note="mean"),
        HandCase(
            TWO + (t([3.0, 1.0]),), {"loss": (3 * GIOU_OVERLAP + GIOU_DISJOINT) / 4}, note="weighted mean"
        ),
        HandCase(TWO, {"loss": GIOU_OVERLAP + GIOU_DISJOINT}, config={"reduction": "sum"}),
        HandCase(
            (t([[1.0, 1.0, 1.0, 1.0]]), t([[1.0, 1.0, 2.0, 2.0]])),
            {"loss": 0.75},
            config={"box_format": "cxcywh"},
            note="cxcywh: a 1x1 box inside a 2x2 box, IoU 1/4, no GIoU penalty",
        ),
    ],
    "diou": [
        HandCase(OVERLAP, {"loss": DIOU_OVERLAP}, note="overlap"),
        HandCase(DISJOINT, {"loss": DIOU_DISJOINT}, note="disjoint"),
        HandCase(POINT, {"loss": 1.0}, note="zero-area pred at the target's centre"),
        HandCase(IDENTICAL, {"loss": 0.0}, note="identical"),
        HandCase(CROSS, {"loss": 1 - 1 / 3 + 0.5 / 8}, note="cross"),
        HandCase(
            (t([[0.0, 0.0, 2.0, 2.0]]), t([[1.0, 1.0, 2.0, 2.0]])),
            {"loss": DIOU_OVERLAP},
            config={"box_format": "xywh"},
            note="xywh: the overlap case",
        ),
    ],
    "ciou": [
        HandCase(OVERLAP, {"loss": DIOU_OVERLAP}, note="same aspect ratio: v = 0"),
        HandCase(DISJOINT, {"loss": DIOU_DISJOINT}, note="disjoint, same aspect ratio"),
        HandCase(
            CROSS,
            {"loss": 1 - 1 / 3 + 0.5 / 8 + _V_CROSS**2 / (2 / 3 + _V_CROSS)},
            note="cross: alpha v = v^2 / (1 - IoU + v)",
        ),
        HandCase(
            POINT, {"loss": 1 + _V_POINT**2 / (1 + _V_POINT)}, note="zero-area pred: atan(0 / (0 + eps)) = 0"
        ),
        HandCase(IDENTICAL, {"loss": 0.0}, note="identical"),
        HandCase(TWO + (t([0.0, 2.0]),), {"loss": DIOU_DISJOINT}, note="weight 0 drops a box"),
    ],
}


def _bad():
    return [
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 3)),
            r"pred must have size 4 \(box coordinates, xyxy\) in dimension -1, "
            r"got shape \[2, 3\]",
        ),
        BadCase(
            (torch.zeros(2, 4), torch.zeros(3, 4)),
            r"target must have the same shape as pred \[2, 4\], got \[3, 4\]",
        ),
        BadCase(
            (torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4)),
            r"pred must be a floating-point tensor, got torch.int64",
        ),
        BadCase(
            (torch.zeros(1, 4), t([[0.0, 0.0, 1.0, -1.0]])),
            r"target boxes must have non-negative width and height \(box_format 'xyxy'\), "
            r"found a side of -1.0",
        ),
        BadCase(
            (torch.zeros(1, 4), t([[0.0, 0.0, -2.0, 1.0]])),
            r"target boxes must have non-negative width and height \(box_format 'xywh'\)",
            config={"box_format": "xywh"},
        ),
        BadCase(
            (torch.zeros(2, 4), torch.zeros(2, 4), torch.ones(3)),
            r"weights must have shape \[2\] \(one weight per box of pred \[2, 4\]\), "
            r"got \[3\]",
        ),
        BadCase(
            (torch.zeros(2, 4), torch.zeros(2, 4), t([1.0, -1.0])),
            r"weights must hold box weights in \[0, inf\], found -1.0",
        ),
        BadCase(
            (torch.zeros(1, 4), torch.zeros(1, 4)),
            r"box_format must be one of 'xyxy', "
            r"'xywh', 'cxcywh', got 'yxyx'",
            config={"box_format": "yxyx"},
            error=ConfigError,
        ),
        BadCase(
            (torch.zeros(1, 4), torch.zeros(1, 4)),
            r"reduction must be one of",
            config={"reduction": "avg"},
            error=ConfigError,
        ),
        BadCase(
            (torch.zeros(1, 4), torch.zeros(1, 4)),
            r"eps must be > 0, got 0.0",
            config={"eps": 0.0},
            error=ConfigError,
        ),
    ]


BAD = {name: _bad() for name in ("giou", "diou", "ciou")}


# -- independent float64 reference -----------------------------------------------------------


def reference_box_loss(pred, target, kind, eps=1e-7):
    """``1 - GIoU / DIoU / CIoU`` of one xyxy box pair, in plain Python floats.

    Straight from the papers (Rezatofighi et al. 2019; Zheng et al. 2020) with torchvision's eps
    placement and ``atan(w / (h + eps))`` for CIoU's aspect term.
    """
    px1, py1, px2, py2 = pred
    tx1, ty1, tx2, ty2 = target
    inter = max(0.0, min(px2, tx2) - max(px1, tx1)) * max(0.0, min(py2, ty2) - max(py1, ty1))
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter
    iou = inter / (union + eps)
    cw = max(px2, tx2) - min(px1, tx1)
    ch = max(py2, ty2) - min(py1, ty1)
    if kind == "giou":
        return 1 - iou + (cw * ch - union) / (cw * ch + eps)
    rho2 = ((px1 + px2) / 2 - (tx1 + tx2) / 2) ** 2 + ((py1 + py2) / 2 - (ty1 + ty2) / 2) ** 2
    loss = 1 - iou + rho2 / (cw**2 + ch**2 + eps)
    if kind == "ciou":
        v = (
            4
            / math.pi**2
            * (math.atan((tx2 - tx1) / (ty2 - ty1 + eps)) - math.atan((px2 - px1) / (py2 - py1 + eps))) ** 2
        )
        loss += v / (1 - iou + v + eps) * v
    return loss


def reference_to_xyxy(box, box_format):
    a, b, c, d = box
    if box_format == "xywh":
        return [a, b, a + c, b + d]
    if box_format == "cxcywh":
        return [a - c / 2, b - d / 2, a + c / 2, b + d / 2]
    return [a, b, c, d]


def _reference(kind):
    def reference(config, inputs):
        """Substitutes for torchvision.ops.{generalized,distance,complete}_box_iou_loss:
        torchvision cannot be installed beside the CPU torch build here, so its formulas are
        written out per box in float64 Python floats (CIoU with atan(w / (h + eps)))."""
        pred, target = inputs[:2]
        fmt, eps = config["box_format"], config["eps"]
        losses = [
            reference_box_loss(reference_to_xyxy(p, fmt), reference_to_xyxy(q, fmt), kind, eps)
            for p, q in zip(pred.tolist(), target.tolist())
        ]
        total = math.fsum(losses)
        value = {"mean": total / max(len(losses), 1), "sum": total}.get(config["reduction"])
        return {"loss": torch.tensor(losses if value is None else value, dtype=torch.float64)}

    return reference


_CONFIGS = ({}, {"reduction": "sum"}, {"reduction": "none"}, {"box_format": "xywh"}, {"box_format": "cxcywh"})

PEERS = {name: Peer("torch", _reference(name), configs=_CONFIGS) for name in ("giou", "diou", "ciou")}
