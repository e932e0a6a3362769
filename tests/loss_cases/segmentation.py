"""Cases for the segmentation family (see loss_cases/__init__.py for the contract)."""

import math

import torch
import torch.nn.functional as F

from loss_cases import BadCase, HandCase, Peer
from lossport.errors import ConfigError

t = torch.tensor
LN2, LN3 = math.log(2.0), math.log(3.0)
IGNORE = 255

# One image, two classes, two pixels. Pixel 0 has logits (ln 3, 0) -> p = (3/4, 1/4);
# pixel 1 has logits (0, 0) -> p = (1/2, 1/2).
LOGITS = t([[[[LN3, 0.0]], [[0.0, 0.0]]]])
P = [(0.75, 0.25), (0.5, 0.5)]


def _sums(target):
    """(I, P, G) per class for LOGITS and a list of two pixel labels, by hand."""
    stats = []
    for c in range(2):
        valid = [k for k in range(2) if target[k] != IGNORE]
        inter = sum(P[k][c] for k in valid if target[k] == c)
        pred = sum(P[k][c] for k in valid)
        true = sum(1.0 for k in valid if target[k] == c)
        stats.append((inter, pred, true))
    return stats


def _dice(target, s=1.0):
    return sum(1 - (2 * i + s) / (p + g + s) for i, p, g in _sums(target)) / 2


def _iou(target, s=1.0):
    return sum(1 - (i + s) / (p + g - i + s) for i, p, g in _sums(target)) / 2


def _tversky(target, a, b, s=1.0):
    return sum(1 - (i + s) / (i + a * (p - i) + b * (g - i) + s) for i, p, g in _sums(target)) / 2


def _target(labels):
    return t([[labels]])


def _focal(p_t, alpha=0.25, gamma=2.0):
    return -alpha * (1 - p_t) ** gamma * math.log(p_t)


C2 = {"num_classes": 2}

HAND = {
    "focal_pixelwise": [
        HandCase((LOGITS, _target([0, 1])), {"loss": (_focal(0.75) + _focal(0.5)) / 2}),
        HandCase(
            (LOGITS, _target([1, IGNORE])), {"loss": _focal(0.25)}, note="ignored pixel leaves the mean"
        ),
        HandCase((LOGITS, _target([IGNORE, IGNORE])), {"loss": 0.0}, note="all ignored -> 0"),
        HandCase(
            (LOGITS, _target([0, 1])),
            {"loss": (-math.log(0.75) + LN2) / 2},
            config={"alpha": 1.0, "gamma": 0.0},
            note="alpha 1, gamma 0 is CE",
        ),
        HandCase(
            (LOGITS, _target([0, IGNORE])), {"loss": [[[_focal(0.75), 0.0]]]}, config={"reduction": "none"}
        ),
    ],
    "dice": [
        HandCase((LOGITS, _target([0, 1])), {"loss": _dice([0, 1])}, config=C2),
        HandCase(
            (torch.zeros(1, 2, 1, 2), _target([0, 1])),
            {"loss": 1 / 3},
            config=C2,
            note="uniform p: 1 - 2/3 per class",
        ),
        HandCase(
            (LOGITS, _target([0, IGNORE])),
            {"loss": _dice([0, IGNORE])},
            config=C2,
            note="ignored pixel removed from prediction and target",
        ),
        HandCase((LOGITS, _target([IGNORE, IGNORE])), {"loss": 0.0}, config=C2, note="all ignored -> 0"),
        HandCase(
            (LOGITS, _target([IGNORE, IGNORE])),
            {"loss": 0.0},
            config={"num_classes": 2, "smooth": 0.0},
            note="all ignored, smooth 0 -> 0",
        ),
        HandCase(
            (LOGITS, _target([0, 0])),
            {"loss": _dice([0, 0])},
            config=C2,
            note="class 1 absent from the target",
        ),
        HandCase(
            (LOGITS, _target([0, 1])),
            {"loss": _dice([0, 1], s=0.0)},
            config={"num_classes": 2, "smooth": 0.0},
        ),
        HandCase(
            (LOGITS, _target([0, 1])),
            {"loss": [[1 - (2 * i + 1) / (p + g + 1) for i, p, g in _sums([0, 1])]]},
            config={"num_classes": 2, "reduction": "none"},
        ),
    ],
    "iou": [
        HandCase((LOGITS, _target([0, 1])), {"loss": _iou([0, 1])}, config=C2),
        HandCase(
            (torch.zeros(1, 2, 1, 2), _target([0, 1])),
            {"loss": 0.4},
            config=C2,
            note="uniform p: 1 - 1.5/2.5 per class",
        ),
        HandCase((LOGITS, _target([0, IGNORE])), {"loss": _iou([0, IGNORE])}, config=C2),
        HandCase((LOGITS, _target([IGNORE, IGNORE])), {"loss": 0.0}, config=C2),
        HandCase(
            (LOGITS, _target([1, 1])), {"loss": _iou([1, 1], s=0.5)}, config={"num_classes": 2, "smooth": 0.5}
        ),
    ],
    "tversky": [
        HandCase((LOGITS, _target([0, 1])), {"loss": _tversky([0, 1], 0.5, 0.5)}, config=C2),
        HandCase(
            (LOGITS, _target([0, 0])),
            {"loss": _tversky([0, 0], 0.7, 0.3)},
            config={"num_classes": 2, "alpha": 0.7, "beta": 0.3},
            note="alpha weighs false positives",
        ),
        HandCase(
            (LOGITS, _target([0, 0])),
            {"loss": _tversky([0, 0], 0.3, 0.7)},
            config={"num_classes": 2, "alpha": 0.3, "beta": 0.7},
        ),
        HandCase((LOGITS, _target([1, IGNORE])), {"loss": _tversky([1, IGNORE], 0.5, 0.5)}, config=C2),
        HandCase((LOGITS, _target([IGNORE, IGNORE])), {"loss": 0.0}, config=C2),
    ],
    "mask": [
        HandCase(
            (t([[[0.0, LN3]]]), t([[[1.0, 0.0]]])),
            {"loss": (LN2 + math.log(4.0)) / 2},
            note="-log sigmoid(0) = ln 2, -log(1 - 3/4) = ln 4",
        ),
        HandCase(
            (t([[[0.0, LN3]]]), t([[[1.0, 0.0]]])),
            {"loss": (2 * LN2 + math.log(4.0)) / 2},
            config={"pos_weight": 2.0},
        ),
        HandCase(
            (t([[[[0.0, LN3]]]]), t([[[[1.0, 0.0]]]])),
            {"loss": LN2 + math.log(4.0)},
            config={"reduction": "sum"},
            note="[N, 1, H, W] layout",
        ),
        HandCase(
            (t([[[-30.0, 30.0]]]), t([[[1.0, 0.0]]])),
            {"loss": 30.0 + math.log1p(math.exp(-30.0))},
            note="extreme logits, both wrong",
        ),
        HandCase(
            (t([[[0.0, LN3]]]), t([[[0.5, 0.5]]])),
            {"loss": (LN2 + 0.5 * math.log(4.0) + 0.5 * math.log(4 / 3)) / 2},
            note="soft targets",
        ),
        HandCase(
            (t([[[0.0, LN3]]]), t([[[1.0, 0.0]]])),
            {"loss": [[[LN2, math.log(4.0)]]]},
            config={"reduction": "none"},
        ),
    ],
    "combined_segmentation": [
        HandCase((LOGITS, _target([0, 1])), {"loss": (-math.log(0.75) + LN2) / 2 + _dice([0, 1])}, config=C2),
        HandCase(
            (LOGITS, _target([0, 1])),
            {"loss": 0.5 * (1 * -math.log(0.75) + 3 * LN2) / 4 + 2.0 * _dice([0, 1])},
            config={"num_classes": 2, "class_weights": [1.0, 3.0], "ce_weight": 0.5, "dice_weight": 2.0},
            note="class weights on CE only",
        ),
        HandCase((LOGITS, _target([IGNORE, 1])), {"loss": LN2 + _dice([IGNORE, 1])}, config=C2),
        HandCase(
            (LOGITS, _target([IGNORE, IGNORE])),
            {"loss": 0.0},
            config=C2,
            note="all ignored -> 0 (torch CE gives NaN)",
        ),
    ],
}

_DENSE = ("dice", "iou", "tversky", "combined_segmentation")


def _dense_bad(config):
    logits = torch.zeros(2, 3, 4, 5)
    target = torch.zeros(2, 4, 5, dtype=torch.long)
    return [
        BadCase(
            (torch.zeros(2, 3, 4), target),
            r"logits must have shape \[B, C, H, W\] \(4-D\), got 3-D",
            config=config,
        ),
        BadCase(
            (torch.zeros(2, 4, 4, 5), target),
            r"logits must have size 3 \(num_classes = 3\) in dimension 1",
            config=config,
        ),
        BadCase(
            (logits, torch.zeros(2, 4, 6, dtype=torch.long)),
            r"target must have shape \[B, H, W\] = \[2, 4, 5\] matching logits \[2, 3, 4, 5\], got \[2, 4, 6\]",
            config=config,
        ),
        BadCase((logits, target.float()), r"target must be an int64 tensor of class indices", config=config),
        BadCase((logits.long(), target), r"logits must be a floating-point tensor", config=config),
        BadCase(
            (logits, torch.full_like(target, 3)),
            r"target holds class index 3; expected \[0, 3\) or 255",
            config=config,
        ),
        BadCase((logits, torch.full_like(target, -1)), r"target holds class index -1", config=config),
    ]


BAD = {name: _dense_bad({"num_classes": 3}) for name in _DENSE}
BAD["dice"] += [
    BadCase((), r"num_classes must be a positive int, got 0", config={"num_classes": 0}, error=ConfigError),
    BadCase((), r"smooth must be >= 0", config={"num_classes": 3, "smooth": -1.0}, error=ConfigError),
    BadCase(
        (), r"reduction must be one of", config={"num_classes": 3, "reduction": "avg"}, error=ConfigError
    ),
]
BAD["tversky"] += [
    BadCase((), r"alpha and beta must be >= 0", config={"num_classes": 3, "alpha": -0.1}, error=ConfigError),
]
BAD["combined_segmentation"] += [
    BadCase(
        (),
        r"class_weights must hold one value per class \(3\)",
        config={"num_classes": 3, "class_weights": [1.0, 2.0]},
        error=ConfigError,
    ),
    BadCase(
        (),
        r"class_weights must hold finite values >= 0",
        config={"num_classes": 3, "class_weights": [1.0, -2.0, 1.0]},
        error=ConfigError,
    ),
]
BAD["focal_pixelwise"] = [
    BadCase(
        (torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long)), r"logits must have shape \[B, C, H, W\]"
    ),
    BadCase((torch.zeros(2, 3, 4, 5), torch.zeros(2, 4, 5)), r"target must be an int64 tensor"),
    BadCase(
        (torch.zeros(2, 3, 4, 5), torch.full((2, 4, 5), 7)), r"target holds class index 7; expected \[0, 3\)"
    ),
    BadCase(
        (torch.zeros(2, 3, 4, 5), torch.zeros(2, 5, 4, dtype=torch.long)),
        r"target must have shape \[B, H, W\] = \[2, 4, 5\]",
    ),
    BadCase((), r"gamma must be >= 0", config={"gamma": -1.0}, error=ConfigError),
]
BAD["mask"] = [
    BadCase(
        (torch.zeros(2, 4, 5), torch.zeros(2, 4, 6)),
        r"target must have the same shape as logits \[2, 4, 5\], got \[2, 4, 6\]",
    ),
    BadCase(
        (torch.zeros(2, 4, 5), torch.full((2, 4, 5), 1.5)),
        r"target must hold mask values in \[0, 1\], found 1.5",
    ),
    BadCase(
        (torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 5)),
        r"logits must have size 1 \(one mask channel\) in dimension 1",
    ),
    BadCase((torch.zeros(4, 5), torch.zeros(4, 5)), r"logits must have shape \[N, H, W\] or \[N, 1, H, W\]"),
    BadCase(
        (torch.zeros(2, 4, 5), torch.zeros(2, 4, 5, dtype=torch.long)),
        r"target must be a floating-point tensor",
    ),
    BadCase((), r"pos_weight must be > 0 or None", config={"pos_weight": 0.0}, error=ConfigError),
]


def _valid(target, ignore_index):
    return (target != ignore_index).to(torch.float64)


def _kornia_focal(config, inputs):
    from kornia.losses import focal_loss

    logits, target = inputs
    # kornia's scalar alpha means 1 - alpha for class 0: pass none and scale by ours;
    # its "mean" divides by C x all pixels: take "none" and average over valid pixels
    per_class = focal_loss(logits, target, None, config["gamma"], "none", ignore_index=config["ignore_index"])
    valid = _valid(target, config["ignore_index"])
    loss = config["alpha"] * (per_class.sum(dim=1) * valid).sum() / valid.sum().clamp(min=1)
    return {"loss": loss}


def _monai_overlap(make):
    def reference(config, inputs):
        logits, target = inputs
        loss = make(config)(logits, target.unsqueeze(1))
        return {"loss": loss}

    return reference


def _monai_dice(config):
    from monai.losses import DiceLoss

    s = config["smooth"]
    return DiceLoss(
        softmax=True,
        to_onehot_y=True,
        smooth_nr=s,
        smooth_dr=s,
        ignore_index=config["ignore_index"],
        reduction=config["reduction"],
    )


def _monai_iou(config):
    from monai.losses import DiceLoss

    # MONAI's Jaccard is (2I + s_nr) / (2U + s_dr): our (I + s) / (U + s) at s_nr = s_dr = 2s
    s = 2 * config["smooth"]
    return DiceLoss(
        softmax=True,
        to_onehot_y=True,
        jaccard=True,
        smooth_nr=s,
        smooth_dr=s,
        ignore_index=config["ignore_index"],
        reduction=config["reduction"],
    )


def _monai_tversky(config):
    from monai.losses import TverskyLoss

    s = config["smooth"]
    return TverskyLoss(
        softmax=True,
        to_onehot_y=True,
        alpha=config["alpha"],
        beta=config["beta"],
        smooth_nr=s,
        smooth_dr=s,
        ignore_index=config["ignore_index"],
        reduction=config["reduction"],
    )


def _monai_dice_plus_torch_ce(config, inputs):
    from monai.losses import DiceLoss

    # DiceCELoss has no ignore_index (and applies its weight to Dice too): compose MONAI's
    # Dice with torch's weighted CE; DiceCELoss itself is checked in test_losses_segmentation
    logits, target = inputs
    weight = config["class_weights"]
    weight = None if weight is None else torch.as_tensor(weight, dtype=logits.dtype)
    dice = DiceLoss(
        softmax=True,
        to_onehot_y=True,
        smooth_nr=config["smooth"],
        smooth_dr=config["smooth"],
        ignore_index=config["ignore_index"],
    )
    ce = F.cross_entropy(logits, target, weight=weight, ignore_index=config["ignore_index"])
    return {"loss": config["ce_weight"] * ce + config["dice_weight"] * dice(logits, target.unsqueeze(1))}


def _torch_bce(config, inputs):
    logits, target = inputs
    pos_weight = config["pos_weight"]
    pos_weight = None if pos_weight is None else torch.tensor([pos_weight], dtype=logits.dtype)
    return {
        "loss": F.binary_cross_entropy_with_logits(
            logits, target, pos_weight=pos_weight, reduction=config["reduction"]
        )
    }


PEERS = {
    "focal_pixelwise": Peer(
        "kornia", _kornia_focal, configs=({}, {"alpha": 1.0, "gamma": 0.5}, {"gamma": 0.0})
    ),
    "dice": Peer("monai", _monai_overlap(_monai_dice), configs=({}, {"smooth": 1e-5}, {"reduction": "sum"})),
    "iou": Peer("monai", _monai_overlap(_monai_iou), configs=({}, {"smooth": 0.1})),
    "tversky": Peer(
        "monai",
        _monai_overlap(_monai_tversky),
        configs=({}, {"alpha": 0.7, "beta": 0.3}, {"alpha": 0.2, "beta": 0.9, "smooth": 0.5}),
    ),
    "mask": Peer("torch", _torch_bce, configs=({}, {"pos_weight": 3.0}, {"reduction": "sum"})),
    "combined_segmentation": Peer(
        "monai",
        _monai_dice_plus_torch_ce,
        configs=({}, {"class_weights": [0.5, 2.0, 1.0], "ce_weight": 0.3, "dice_weight": 1.7}),
    ),
}
