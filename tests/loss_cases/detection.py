"""Cases for the detection family: varifocal, centerness, fcos, dfl, centernet, detection
(see loss_cases/__init__.py for the contract).

ultralytics (VarifocalLoss, DFLoss) and torchvision (the box losses inside FCOS and the
combined detection loss) cannot be installed beside the CPU torch build here; their formulas
are written out below, element by element in float64 Python floats, and used as peers.
"""

import math

import torch
import torch.nn.functional as F

from loss_cases import BadCase, HandCase, Peer
from loss_cases.boxes import reference_box_loss, reference_to_xyxy
from lossport.errors import ConfigError

t = torch.tensor
LOG2 = math.log(2.0)


# -- scalar helpers --------------------------------------------------------------------------


def _log_sigmoid(x):
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _sigmoid(x):
    return math.exp(_log_sigmoid(x))


def _bce(x, q):
    return -(q * _log_sigmoid(x) + (1 - q) * _log_sigmoid(-x))


def _focal(x, y, alpha, gamma):
    p = _sigmoid(x)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = 1.0 if alpha < 0 else alpha * y + (1 - alpha) * (1 - y)
    return alpha_t * (1 - p_t) ** gamma * _bce(x, y)


def _cross_entropy(row, k):
    top = max(row)
    return top + math.log(math.fsum(math.exp(v - top) for v in row)) - row[k]


def _scalar(value):
    return torch.tensor(value, dtype=torch.float64)


# -- varifocal -------------------------------------------------------------------------------


def _ultralytics_varifocal(config, inputs):
    """Substitutes for ultralytics.utils.loss.VarifocalLoss (not installable here).

    ultralytics: ``weight = alpha * sigmoid(p)^gamma * (1 - label) + q * label``;
    ``(BCE_with_logits(p, q, reduction="none") * weight).mean(1).sum()``.
    """
    logits, score, label = (x.tolist() for x in inputs)
    alpha, gamma = config["alpha"], config["gamma"]
    total = 0.0
    for lb, qb, yb in zip(logits, score, label):
        per_class = [0.0] * len(lb[0])
        for ln, qn, yn in zip(lb, qb, yb):
            for c, (x, q, y) in enumerate(zip(ln, qn, yn)):
                weight = alpha * _sigmoid(x) ** gamma * (1 - y) + q * y
                per_class[c] += _bce(x, q) * weight
        total += math.fsum(per_class) / len(lb)
    return {"loss": _scalar(total)}


# -- centerness ------------------------------------------------------------------------------


def _torch_centerness(config, inputs):
    logits, target = inputs
    return {"loss": F.binary_cross_entropy_with_logits(logits, target, reduction=config["reduction"])}


# -- FCOS ------------------------------------------------------------------------------------


def _reference_fcos(config, inputs):
    """FCOS (Tian et al. 2019) with torchvision's normalisation, per location in Python floats:
    focal over every location and class, GIoU of (-l, -t, r, b) boxes and centerness BCE on
    positives, each summed and divided by max(#positives, 1)."""
    cls, reg, ctr, labels, reg_t, ctr_t = (x.tolist() for x in inputs)
    alpha, gamma = config["focal_alpha"], config["focal_gamma"]
    focal = box = centerness = 0.0
    num_pos = 0
    for b in range(len(cls)):
        for i in range(len(cls[b])):
            label = labels[b][i]
            for c, x in enumerate(cls[b][i]):
                focal += _focal(x, 1.0 if c == label else 0.0, alpha, gamma)
            if label >= 0:
                num_pos += 1
                (l, tp, r, bt), (l2, t2, r2, b2) = reg[b][i], reg_t[b][i]
                box += reference_box_loss([-l, -tp, r, bt], [-l2, -t2, r2, b2], "giou")
                centerness += _bce(ctr[b][i], ctr_t[b][i])
    n = max(num_pos, 1)
    cls_loss = config["cls_weight"] * focal / n
    reg_loss = config["reg_weight"] * box / n
    ctr_loss = config["centerness_weight"] * centerness / n
    return {
        "cls_loss": _scalar(cls_loss),
        "reg_loss": _scalar(reg_loss),
        "centerness_loss": _scalar(ctr_loss),
        "total_loss": _scalar(cls_loss + reg_loss + ctr_loss),
    }


# -- DFL -------------------------------------------------------------------------------------


def _ultralytics_dfl(config, inputs):
    """Substitutes for ultralytics.utils.loss.DFLoss (not installable here).

    ultralytics: ``target.clamp_(0, reg_max - 1 - 0.01)``, ``tl = target.long()``,
    ``wl = tl + 1 - target``, ``CE(pred, tl) * wl + CE(pred, tl + 1) * (1 - wl)``, mean over
    the 4 sides -> ``[N, 1]``; then our default reduction averages the boxes.
    """
    pred, target = inputs
    reg_max = config["reg_max"]
    rows = pred.reshape(-1, reg_max).tolist()
    per_box = []
    for n, sides in enumerate(target.tolist()):
        side_losses = []
        for s, y in enumerate(sides):
            y = min(max(y, 0.0), reg_max - 1 - 0.01)
            left = int(y)
            w_left = left + 1 - y
            row = rows[4 * n + s]
            side_losses.append(
                _cross_entropy(row, left) * w_left + _cross_entropy(row, left + 1) * (1 - w_left)
            )
        per_box.append(math.fsum(side_losses) / 4)
    total = math.fsum(per_box)
    value = {"mean": total / max(len(per_box), 1), "sum": total}.get(config["reduction"])
    return {"loss": _scalar(per_box if value is None else value)}


# -- CenterNet -------------------------------------------------------------------------------


def _reference_centernet(config, inputs):
    """CenterNet (Zhou et al. 2019), per pixel / object in Python floats: penalty-reduced focal
    (alpha 2, beta 4) / max(#pixels equal to 1, 1); L1 of wh and offsets read at each object's
    flat index, over masked objects, / max(2 #objects, 1)."""
    heatmap, wh, reg, hm_t, indices, mask, wh_t, reg_t = (x.tolist() for x in inputs)
    width = len(heatmap[0][0][0])
    focal, peaks = 0.0, 0
    for b, classes in enumerate(heatmap):
        for c, rows in enumerate(classes):
            for y, row in enumerate(rows):
                for x, logit in enumerate(row):
                    target = hm_t[b][c][y][x]
                    p = _sigmoid(logit)
                    if target == 1:
                        peaks += 1
                        focal -= (1 - p) ** 2 * _log_sigmoid(logit)
                    else:
                        focal -= (1 - target) ** 4 * p**2 * _log_sigmoid(-logit)
    hm = config["hm_weight"] * focal / max(peaks, 1)

    def l1(maps, targets):
        total, count = 0.0, 0.0
        for b in range(len(indices)):
            for m, index in enumerate(indices[b]):
                y, x = divmod(index, width)
                for k in range(2):
                    total += mask[b][m] * abs(maps[b][k][y][x] - targets[b][m][k])
                    count += mask[b][m]
        return total / max(count, 1.0)

    size = config["wh_weight"] * l1(wh, wh_t)
    offset = config["reg_weight"] * l1(reg, reg_t)
    return {
        "hm_loss": _scalar(hm),
        "wh_loss": _scalar(size),
        "reg_loss": _scalar(offset),
        "total_loss": _scalar(hm + size + offset),
    }


# -- combined detection ----------------------------------------------------------------------


def _reference_detection(config, inputs):
    """Focal over every row and class / max(#matched, 1) plus the IoU-family loss (the
    torchvision formulas of loss_cases.boxes) over matched rows / max(#matched, 1)."""
    cls, boxes, labels, targets = (x.tolist() for x in inputs)
    alpha, gamma = config["focal_alpha"], config["focal_gamma"]
    fmt = config["box_format"]
    focal = box = 0.0
    num_pos = 0
    for b in range(len(cls)):
        for i, row in enumerate(cls[b]):
            label = labels[b][i]
            for c, x in enumerate(row):
                focal += _focal(x, 1.0 if c == label else 0.0, alpha, gamma)
            if label >= 0:
                num_pos += 1
                box += reference_box_loss(
                    reference_to_xyxy(boxes[b][i], fmt),
                    reference_to_xyxy(targets[b][i], fmt),
                    config["box_loss"],
                )
    n = max(num_pos, 1)
    cls_loss = config["cls_weight"] * focal / n
    box_loss = config["box_weight"] * box / n
    return {
        "cls_loss": _scalar(cls_loss),
        "box_loss": _scalar(box_loss),
        "total_loss": _scalar(cls_loss + box_loss),
    }


# -- hand-computed values --------------------------------------------------------------------

# sigmoid(0) = 1/2: BCE(0, q) = log 2 for any q; focal at logit 0 is alpha_t * 1/4 * log 2
FOCAL0_POS = 0.25 * 0.25 * LOG2
FOCAL0_NEG = 0.75 * 0.25 * LOG2
GIOU_OVERLAP = 1 - 1 / 7 + 2 / 9

_VFL_LOGITS = t([[[0.0], [0.0]]])
_DFL_ROW = [0.0, 1.0, 2.0, 3.0]
_DFL_CE = [math.log(sum(math.exp(v) for v in _DFL_ROW)) - v for v in _DFL_ROW]

_CN_HEATMAP = t([[[[0.0, 0.0]]]])
_CN_TARGET = t([[[[1.0, 0.5]]]])
_CN_WH = t([[[[1.0, 2.0]], [[3.0, 4.0]]]])
_CN_REG = torch.full((1, 2, 1, 2), 0.5)
_CN_INPUTS = (
    _CN_HEATMAP,
    _CN_WH,
    _CN_REG,
    _CN_TARGET,
    t([[0, 1]]),
    t([[1.0, 0.0]]),
    t([[[2.0, 1.0], [0.0, 0.0]]]),
    t([[[0.25, 0.5], [9.0, 9.0]]]),
)
_CN_HM = (0.25 + 0.5**4 * 0.25) * LOG2  # centre pixel + the pixel at 0.5 (one centre)


def _fcos_inputs(labels, reg_pred, reg_target):
    return (
        torch.zeros(1, 2, 1),
        t([reg_pred]),
        torch.zeros(1, 2),
        t([labels]),
        t([reg_target]),
        torch.full((1, 2), 0.5),
    )


_ONES = [[1.0, 1.0, 1.0, 1.0]] * 2
_FCOS_POS = FOCAL0_POS + FOCAL0_NEG

HAND = {
    "varifocal": [
        HandCase(
            (_VFL_LOGITS, t([[[0.5], [0.0]]]), t([[[1.0], [0.0]]])),
            {"loss": (0.5 * LOG2 + 0.75 * 0.25 * LOG2) / 2},
            note="positive weight q = .5, negative weight .75 * .5^2; mean over dim 1",
        ),
        HandCase(
            (
                t([[[0.0, 0.0]], [[0.0, 0.0]]]),
                t([[[1.0, 0.0]], [[0.0, 0.0]]]),
                t([[[1.0, 0.0]], [[0.0, 0.0]]]),
            ),
            {"loss": LOG2 + 3 * 0.1875 * LOG2},
            note="sum over batch and classes",
        ),
        HandCase(
            (t([[[2.0]]]), t([[[0.0]]]), t([[[0.0]]])),
            {"loss": 0.75 * (1 / (1 + math.exp(-2))) ** 2 * math.log1p(math.exp(2))},
            note="a confident negative",
        ),
        HandCase(
            (_VFL_LOGITS, t([[[0.5], [0.0]]]), t([[[1.0], [0.0]]])),
            {"loss": (0.5 * LOG2 + 0.75 * 0.25 * LOG2) / 2},
            config={"reduction": "mean"},
        ),
        HandCase(
            (_VFL_LOGITS, t([[[0.5], [0.0]]]), t([[[1.0], [0.0]]])),
            {"loss": 0.5 * LOG2 + 0.5 * 0.5 * LOG2},
            config={"alpha": 0.5, "gamma": 1.0, "reduction": "sum"},
        ),
    ],
    "centerness": [
        HandCase((t([0.0, 0.0]), t([0.5, 1.0])), {"loss": LOG2}),
        HandCase((t([2.0]), t([1.0])), {"loss": math.log1p(math.exp(-2.0))}),
        HandCase(
            (t([0.0, 2.0]), t([1.0, 1.0]), t([3.0, 1.0])),
            {"loss": (3 * LOG2 + math.log1p(math.exp(-2.0))) / 4},
            note="weighted mean",
        ),
        HandCase(
            (t([0.0, 2.0]), t([1.0, 1.0])),
            {"loss": LOG2 + math.log1p(math.exp(-2.0))},
            config={"reduction": "sum"},
        ),
    ],
    "fcos": [
        HandCase(
            _fcos_inputs([0, -1], _ONES, _ONES),
            {"cls_loss": _FCOS_POS, "reg_loss": 0.0, "centerness_loss": LOG2, "total_loss": _FCOS_POS + LOG2},
            config={"num_classes": 1},
            note="identical boxes, one positive",
        ),
        HandCase(
            _fcos_inputs([0, 0], _ONES, [[2.0, 2.0, 2.0, 2.0]] * 2),
            {
                "cls_loss": FOCAL0_POS,
                "reg_loss": 0.75,
                "centerness_loss": LOG2,
                "total_loss": FOCAL0_POS + 0.75 + LOG2,
            },
            config={"num_classes": 1},
            note="2x2 box inside a 4x4 box: GIoU 1/4",
        ),
        HandCase(
            _fcos_inputs([-1, -1], _ONES, _ONES),
            {
                "cls_loss": 2 * FOCAL0_NEG,
                "reg_loss": 0.0,
                "centerness_loss": 0.0,
                "total_loss": 2 * FOCAL0_NEG,
            },
            config={"num_classes": 1},
            note="no positives: / max(0, 1)",
        ),
        HandCase(
            _fcos_inputs([0, -1], _ONES, [[2.0, 2.0, 2.0, 2.0]] * 2),
            {
                "cls_loss": 2 * _FCOS_POS,
                "reg_loss": 3 * 0.75,
                "centerness_loss": 0.5 * LOG2,
                "total_loss": 2 * _FCOS_POS + 2.25 + 0.5 * LOG2,
            },
            config={"num_classes": 1, "cls_weight": 2.0, "reg_weight": 3.0, "centerness_weight": 0.5},
            note="weights",
        ),
    ],
    "dfl": [
        HandCase(
            (torch.zeros(1, 4, 4), t([[1.5, 0.0, 2.0, 2.99]])),
            {"loss": math.log(4.0)},
            config={"reg_max": 4},
            note="uniform bins: log 4 whatever the target",
        ),
        HandCase(
            (t([[_DFL_ROW] * 4]), t([[2.25, 2.25, 2.25, 2.25]])),
            {"loss": 0.75 * _DFL_CE[2] + 0.25 * _DFL_CE[3]},
            config={"reg_max": 4},
        ),
        HandCase(
            (t([[_DFL_ROW] * 4]), t([[-1.0, 0.0, 5.0, 2.99]])),
            {"loss": (2 * _DFL_CE[0] + 2 * (0.01 * _DFL_CE[2] + 0.99 * _DFL_CE[3])) / 4},
            config={"reg_max": 4},
            note="clamped to [0, 2.99]",
        ),
        HandCase(
            (t([_DFL_ROW] * 4), t([[1.0, 1.0, 1.0, 1.0]])),
            {"loss": _DFL_CE[1]},
            config={"reg_max": 4},
            note="[N*4, reg_max] layout, integer target",
        ),
    ],
    "centernet": [
        HandCase(
            _CN_INPUTS,
            {"hm_loss": _CN_HM, "wh_loss": 0.1 * 1.5, "reg_loss": 0.125, "total_loss": _CN_HM + 0.15 + 0.125},
            note="one object at index 0: wh |1-2| + |3-1| over 2 coords, offset .25 / 2",
        ),
        HandCase(
            _CN_INPUTS,
            {"hm_loss": 2 * _CN_HM, "wh_loss": 1.5, "reg_loss": 0.0, "total_loss": 2 * _CN_HM + 1.5},
            config={"hm_weight": 2.0, "wh_weight": 1.0, "reg_weight": 0.0},
        ),
        HandCase(
            (
                _CN_HEATMAP,
                _CN_WH,
                _CN_REG,
                t([[[[0.0, 0.5]]]]),
                t([[0, 1]]),
                t([[0.0, 0.0]]),
                t([[[2.0, 1.0], [0.0, 0.0]]]),
                t([[[0.25, 0.5], [9.0, 9.0]]]),
            ),
            {
                "hm_loss": 0.25 * LOG2 * (1 + 0.5**4),
                "wh_loss": 0.0,
                "reg_loss": 0.0,
                "total_loss": 0.25 * LOG2 * (1 + 0.5**4),
            },
            note="no objects: heatmap sum / 1, L1 terms 0",
        ),
    ],
    "detection": [
        HandCase(
            (
                torch.zeros(1, 2, 1),
                t([[[0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 1.0, 1.0]]]),
                t([[0, -1]]),
                t([[[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 0.0, 0.0]]]),
            ),
            {"cls_loss": _FCOS_POS, "box_loss": 5 * GIOU_OVERLAP, "total_loss": _FCOS_POS + 5 * GIOU_OVERLAP},
            note="the unmatched row's (inverted) boxes are not used",
        ),
        HandCase(
            (
                torch.zeros(1, 2, 1),
                t([[[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]]]),
                t([[0, 0]]),
                t([[[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0]]]),
            ),
            {
                "cls_loss": FOCAL0_POS,
                "box_loss": (1 - 1 / 7 + 1 / 9 + 1 + 8 / 18) / 2,
                "total_loss": FOCAL0_POS + (1 - 1 / 7 + 1 / 9 + 1 + 8 / 18) / 2,
            },
            config={"box_loss": "diou", "box_weight": 1.0},
        ),
        HandCase(
            (torch.zeros(1, 1, 2), torch.zeros(1, 1, 4), t([[-1]]), torch.zeros(1, 1, 4)),
            {"cls_loss": 2 * FOCAL0_NEG, "box_loss": 0.0, "total_loss": 2 * FOCAL0_NEG},
            note="no matched row",
        ),
    ],
}


# -- bad inputs ------------------------------------------------------------------------------

_Z3 = torch.zeros(1, 2, 3)


def _fcos_bad():
    cls, reg, ctr = torch.zeros(1, 4, 3), torch.ones(1, 4, 4), torch.zeros(1, 4)
    labels, reg_t, ctr_t = t([[0, -1, 2, 1]]), torch.ones(1, 4, 4), torch.full((1, 4), 0.5)
    good = (cls, reg, ctr, labels, reg_t, ctr_t)

    def swap(i, value):
        return tuple(value if k == i else v for k, v in enumerate(good))

    cfg = {"num_classes": 3}
    levels = (
        [torch.zeros(1, 3, 2, 2)],
        [torch.ones(1, 4, 2, 2)],
        [torch.zeros(1, 1, 2, 2)],
        [torch.zeros(1, 2, 2, dtype=torch.long)],
        [torch.ones(1, 4, 2, 2)],
        [torch.zeros(1, 2, 2)],
    )
    return [
        BadCase(
            swap(0, torch.zeros(1, 4, 5)),
            r"cls_preds must have size 3 \(num_classes = 3\) "
            r"in dimension 2, got shape \[1, 4, 5\]",
            config=cfg,
        ),
        BadCase(swap(0, torch.zeros(4, 3)), r"cls_preds must have shape \[B, L, C\]", config=cfg),
        BadCase(swap(1, torch.ones(1, 3, 4)), r"reg_preds must have shape \[1, 4, 4\]", config=cfg),
        BadCase(swap(2, torch.zeros(1, 4, 1)), r"centerness_preds must have shape \[1, 4\]", config=cfg),
        BadCase(
            swap(3, t([[0, -1, 3, 1]])),
            r"cls_targets holds class index 3; expected "
            r"\[0, 3\) or negative",
            config=cfg,
        ),
        BadCase(swap(3, t([[0.0, -1.0, 2.0, 1.0]])), r"cls_targets must be an int64 tensor", config=cfg),
        BadCase(
            swap(5, t([[0.5, 9.0, 1.5, 0.0]])),
            r"centerness_targets must hold centerness "
            r"targets \(at positive locations\) in \[0, 1\], found 1.5",
            config=cfg,
        ),
        BadCase(
            (levels[0] * 2,) + levels[1:],
            r"per-level lists must all have the same number "
            r"of levels, got cls_preds: 2, reg_preds: 1",
            config=cfg,
        ),
        BadCase(
            ([torch.zeros(3, 2, 2)],) + levels[1:],
            r"cls_preds\[0\] must have shape "
            r"\[B, C, H, W\] \(4-D\), got 3-D",
            config=cfg,
        ),
        BadCase(
            levels[:2] + ([torch.zeros(1, 2, 2, 2)],) + levels[3:],
            r"centerness_preds\[0\] must have size 1 \(one centerness channel\)",
            config=cfg,
        ),
        BadCase(good, r"num_classes must be >= 1", config={"num_classes": 0}, error=ConfigError),
        BadCase(
            good,
            r"focal_gamma must be >= 0",
            config={"num_classes": 3, "focal_gamma": -1.0},
            error=ConfigError,
        ),
    ]


def _centernet_bad():
    good = _CN_INPUTS

    def swap(i, value):
        return tuple(value if k == i else v for k, v in enumerate(good))

    return [
        BadCase(swap(0, torch.zeros(1, 1, 2)), r"heatmap must have shape \[B, C, H, W\]"),
        BadCase(
            swap(3, t([[[[1.0, 1.5]]]])),
            r"heatmap_target must hold heatmap values in "
            r"\[0, 1\], found 1.5",
        ),
        BadCase(swap(1, torch.zeros(1, 2, 2, 1)), r"wh must have shape \[1, 2, 1, 2\]"),
        BadCase(swap(4, t([[0, 2]])), r"indices holds class index 2; expected \[0, 2\)"),
        BadCase(swap(4, t([[0.0, 1.0]])), r"indices must be an int64 tensor"),
        BadCase(swap(5, t([[1.0]])), r"mask must have shape \[1, 2\]"),
        BadCase(swap(5, t([[1, 0]])), r"mask must be a float \(0/1\) or bool tensor"),
        BadCase(swap(6, torch.zeros(1, 2, 3)), r"wh_target must have shape \[1, 2, 2\]"),
        BadCase(good, r"wh_weight must be >= 0", config={"wh_weight": -0.1}, error=ConfigError),
    ]


BAD = {
    "varifocal": [
        BadCase(
            (_Z3, _Z3, torch.zeros(1, 2, 2)),
            r"label must have the same shape as logits "
            r"\[1, 2, 3\], got \[1, 2, 2\]",
        ),
        BadCase(
            (_Z3, torch.full((1, 2, 3), 1.5), _Z3),
            r"score must hold IoU-aware target "
            r"scores in \[0, 1\], found 1.5",
        ),
        BadCase(
            (_Z3, _Z3, torch.full((1, 2, 3), 0.5)),
            r"label must hold only 0 and 1, "
            r"found 0.5",
        ),
        BadCase((_Z3.long(), _Z3, _Z3), r"logits must be a floating-point tensor"),
        BadCase(
            (torch.zeros(3), torch.zeros(3), torch.zeros(3)),
            r"logits must have shape \[B, N, C\] \(at least 2-D\)",
        ),
        BadCase(
            (_Z3, _Z3, _Z3),
            r"reduction must be one of 'mean_dim1_sum', 'mean'",
            config={"reduction": "avg"},
            error=ConfigError,
        ),
        BadCase((_Z3, _Z3, _Z3), r"gamma must be >= 0", config={"gamma": -2.0}, error=ConfigError),
    ],
    "centerness": [
        BadCase(
            (torch.zeros(3), torch.zeros(4)),
            r"target must have the same shape as logits "
            r"\[3\], got \[4\]",
        ),
        BadCase(
            (torch.zeros(2), t([0.5, -0.5])),
            r"target must hold centerness targets in "
            r"\[0, 1\], found -0.5",
        ),
        BadCase(
            (torch.zeros(2), torch.zeros(2), torch.zeros(3)),
            r"weights must have the same "
            r"shape as logits \[2\], got \[3\]",
        ),
        BadCase(
            (torch.zeros(2, dtype=torch.long), torch.zeros(2)), r"logits must be a floating-point tensor"
        ),
        BadCase(
            (torch.zeros(2), torch.zeros(2)),
            r"reduction must be one of",
            config={"reduction": "max"},
            error=ConfigError,
        ),
    ],
    "fcos": _fcos_bad(),
    "dfl": [
        BadCase(
            (torch.zeros(2, 4, 8), torch.zeros(2, 4)),
            r"pred must have shape \[2, 4, 16\] "
            r"\(\[N, 4, reg_max\] for target \[N, 4\] = \[2, 4\], reg_max = 16\)",
        ),
        BadCase(
            (torch.zeros(6, 16), torch.zeros(2, 4)),
            r"pred must have shape \[8, 16\] "
            r"\(\[N \* 4, reg_max\]",
        ),
        BadCase((torch.zeros(2, 4, 16), torch.zeros(2, 3)), r"target must have size 4"),
        BadCase((torch.zeros(2, 4, 16), torch.zeros(8)), r"target must have shape \[N, 4\]"),
        BadCase((torch.zeros(1, 4, 16), t([[1.0, float("nan"), 2.0, 3.0]])), r"target contains NaN or Inf"),
        BadCase(
            (torch.zeros(1, 4, 16, dtype=torch.long), torch.zeros(1, 4)),
            r"pred must be a floating-point tensor",
        ),
        BadCase(
            (torch.zeros(1, 4, 1), torch.zeros(1, 4)),
            r"reg_max must be >= 2, got 1",
            config={"reg_max": 1},
            error=ConfigError,
        ),
    ],
    "centernet": _centernet_bad(),
    "detection": [
        BadCase(
            (_Z3, torch.zeros(1, 2, 4), t([[0, 3]]), torch.zeros(1, 2, 4)),
            r"cls_targets holds class index 3; expected \[0, 3\) or negative",
        ),
        BadCase(
            (_Z3, torch.zeros(1, 2, 4), t([0, 1]), torch.zeros(1, 2, 4)),
            r"cls_targets must have shape \[1, 2\]",
        ),
        BadCase(
            (_Z3, torch.zeros(1, 3, 4), t([[0, 1]]), torch.zeros(1, 3, 4)),
            r"box_preds must have shape \[1, 2, 4\] \(one box per row of cls_logits",
        ),
        BadCase(
            (_Z3, torch.zeros(1, 2, 4), t([[0, 1]]), torch.zeros(1, 2, 3)),
            r"box_targets must have the same shape as box_preds \[1, 2, 4\], got \[1, 2, 3\]",
        ),
        BadCase(
            (_Z3, torch.zeros(1, 2, 4), t([[0, 1]]), t([[[0.0, 0.0, -1.0, 1.0]] * 2])),
            r"box_targets boxes must have non-negative width and height",
        ),
        BadCase(
            (_Z3, torch.zeros(1, 2, 4), t([[0, 1]]), torch.zeros(1, 2, 4)),
            r"box_loss must be one of 'giou', 'diou', 'ciou', got 'iou'",
            config={"box_loss": "iou"},
            error=ConfigError,
        ),
        BadCase(
            (_Z3, torch.zeros(1, 2, 4), t([[0, 1]]), torch.zeros(1, 2, 4)),
            r"box_weight must be >= 0",
            config={"box_weight": -1.0},
            error=ConfigError,
        ),
    ],
}


# -- peers -----------------------------------------------------------------------------------

PEERS = {
    "varifocal": Peer("torch", _ultralytics_varifocal, configs=({}, {"alpha": 0.5, "gamma": 1.5})),
    "centerness": Peer("torch", _torch_centerness, configs=({}, {"reduction": "sum"}, {"reduction": "none"})),
    "fcos": Peer(
        "torch",
        _reference_fcos,
        configs=(
            {},
            {
                "focal_alpha": -1.0,
                "focal_gamma": 1.0,
                "cls_weight": 2.0,
                "reg_weight": 0.5,
                "centerness_weight": 3.0,
            },
        ),
    ),
    "dfl": Peer(
        "torch", _ultralytics_dfl, configs=({}, {"reduction": "sum"}, {"reduction": "none"}, {"reg_max": 8})
    ),
    "centernet": Peer(
        "torch", _reference_centernet, configs=({}, {"hm_weight": 0.5, "wh_weight": 1.0, "reg_weight": 2.0})
    ),
    "detection": Peer(
        "torch",
        _reference_detection,
        configs=(
            {},
            {"box_loss": "diou"},
            {"box_loss": "ciou", "box_weight": 2.0},
            {"box_format": "cxcywh", "focal_alpha": 0.5},
        ),
    ),
}
