"""Cases for the classification family (see loss_cases/__init__.py for the contract)."""

import math

import torch
import torch.nn.functional as F

from loss_cases import BadCase, HandCase, Peer
from lossport.errors import ConfigError

t = torch.tensor
LN2 = math.log(2.0)


def _ce(logits, y):
    """-log softmax(logits)[y] for one row of Python floats."""
    return math.log(sum(math.exp(v) for v in logits)) - logits[y]


def _ce_smooth(logits, y, eps):
    C = len(logits)
    return (1 - eps) * _ce(logits, y) + eps / C * sum(_ce(logits, c) for c in range(C))


def _sigmoid_focal(x, target, alpha=0.25, gamma=2.0):
    p = 1 / (1 + math.exp(-x))
    p_t = p if target == 1 else 1 - p
    a_t = 1.0 if alpha < 0 else (alpha if target == 1 else 1 - alpha)
    return -a_t * (1 - p_t) ** gamma * math.log(p_t)


def _softmax_focal(logits, y, gamma=2.0, alpha=1.0):
    p = math.exp(-_ce(logits, y))
    return -alpha * (1 - p) ** gamma * math.log(p)


LN3 = math.log(3.0)

HAND = {
    "cross_entropy": [
        HandCase(
            (t([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), t([2, 0])),
            {"loss": (_ce([1, 2, 3], 2) + math.log(3)) / 2},
        ),
        HandCase(
            (t([[1.0, 2.0, 3.0], [0.0, 5.0, 0.0]]), t([0, -100])),
            {"loss": _ce([1, 2, 3], 0)},
            note="ignored row leaves the mean",
        ),
        HandCase((t([[1.0, 2.0, 3.0]]), t([-100])), {"loss": 0.0}, note="all ignored -> 0"),
        HandCase(
            (t([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]), t([0, 1])),
            {"loss": (_ce_smooth([1, 2, 3], 0, 0.2) + _ce_smooth([0, 1, 0], 1, 0.2)) / 2},
            config={"label_smoothing": 0.2},
        ),
        HandCase(
            (t([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]), t([0, 1])),
            {"loss": _ce([1, 2, 3], 0) + _ce([0, 1, 0], 1)},
            config={"reduction": "sum"},
        ),
        HandCase(
            (t([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]), t([0, -100])),
            {"loss": [_ce([1, 2, 3], 0), 0.0]},
            config={"reduction": "none"},
        ),
        HandCase(
            (t([[[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]]), t([[2, -100]])),
            {"loss": _ce([1, 2, 3], 2)},
            config={"class_dim_last": True},
            note="LM layout [B, T, V]",
        ),
        HandCase(
            (t([[[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]]]), t([[2, 1]])),
            {"loss": (_ce([1, 2, 3], 2) + _ce([0, 1, 0], 1)) / 2},
            note="[N, C, d] layout",
        ),
    ],
    "focal": [
        HandCase((t([[0.0, 0.0]]), t([[1.0, 0.0]])), {"loss": (0.25 * 0.25 * LN2 + 0.75 * 0.25 * LN2) / 2}),
        HandCase((t([[LN3]]), t([[1.0]])), {"loss": 0.25 * 0.25**2 * -math.log(0.75)}, note="p = 3/4"),
        HandCase(
            (t([[LN3]]), t([[0.0]])),
            {"loss": 0.75**2 * -math.log(0.25)},
            config={"alpha": -1.0},
            note="alpha disabled",
        ),
        HandCase(
            (t([[0.0, LN3], [1.0, -1.0]]), t([[1.0, 0.0], [0.0, 1.0]])),
            {
                "loss": _sigmoid_focal(0, 1)
                + _sigmoid_focal(LN3, 0)
                + _sigmoid_focal(1, 0)
                + _sigmoid_focal(-1, 1)
            },
            config={"reduction": "sum"},
        ),
        HandCase(
            (t([[0.0, LN3], [1.0, -1.0], [5.0, 5.0]]), t([1, 0, -1])),
            {
                "loss": (
                    _sigmoid_focal(0, 0)
                    + _sigmoid_focal(LN3, 1)
                    + _sigmoid_focal(1, 1)
                    + _sigmoid_focal(-1, 0)
                )
                / 2
            },
            note="index path: one-vs-all, sum over classes, mean over valid samples",
        ),
        HandCase(
            (t([[0.0, LN3], [5.0, 5.0]]), t([1, -1])),
            {"loss": [_sigmoid_focal(0, 0) + _sigmoid_focal(LN3, 1), 0.0]},
            config={"reduction": "none"},
            note="index path, none",
        ),
        HandCase((t([[5.0, 5.0]]), t([-1])), {"loss": 0.0}, note="index path, all ignored"),
    ],
    "softmax_focal": [
        HandCase((t([[0.0, 0.0]]), t([0])), {"loss": 0.25 * LN2}),
        HandCase(
            (t([[LN3, 0.0], [9.0, 0.0]]), t([0, -100])),
            {"loss": 0.25**2 * -math.log(0.75)},
            note="ignored row leaves the mean",
        ),
        HandCase(
            (t([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]), t([1, 2])),
            {"loss": (_softmax_focal([1, 2, 3], 1, 0.5) + _softmax_focal([0, 1, 0], 2, 0.5)) / 2},
            config={"gamma": 0.5},
        ),
        HandCase(
            (t([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]), t([1, 2])),
            {"loss": _ce([1, 2, 3], 1) + _ce([0, 1, 0], 2)},
            config={"gamma": 0.0, "reduction": "sum"},
            note="gamma 0 = CE",
        ),
        HandCase((t([[1.0, 2.0, 3.0]]), t([-100])), {"loss": 0.0}, note="all ignored -> 0"),
    ],
    "mtp": [
        # all logits 0: every scored position costs ln 2; head k of T = 3 scores 3 - k
        # positions, head 3 none (-> 0)
        HandCase(
            (torch.zeros(1, 3, 2), torch.zeros(3, 1, 3, 2), t([[0, 1, 1]])),
            {"loss": LN2 + 0.3 / 3 * (LN2 + LN2 + 0.0)},
        ),
        # D = 1: head position 0 -> labels[1] = 1 (p = 3/4), position 1 -> labels[2] = 1
        # (p = 1/4), position 2 has no target
        HandCase(
            (torch.zeros(1, 3, 2), t([[[[0.0, LN3], [LN3, 0.0], [50.0, -50.0]]]]), t([[0, 1, 1]])),
            {"loss": LN2 + 0.5 * (-math.log(0.75) - math.log(0.25)) / 2},
            config={"mtp_depth": 1, "mtp_lambda": 0.5},
        ),
        HandCase(
            (torch.zeros(1, 3, 2), [t([[[0.0, LN3], [LN3, 0.0], [50.0, -50.0]]])], t([[0, 1, -100]])),
            {"loss": LN2 + 0.5 * -math.log(0.75)},
            config={"mtp_depth": 1, "mtp_lambda": 0.5},
            note="heads as a list; an ignored label is ignored by the main and shifted CE",
        ),
    ],
}

BAD = {
    "cross_entropy": [
        BadCase(
            (torch.zeros(3, 4), t([0, 1])),
            r"target must have shape \[3\] \(\[N\] or \[N, d1, \.\.\.\] matching logits",
        ),
        BadCase((torch.zeros(3, 4), t([0.0, 1.0, 2.0])), r"target must be an int64 tensor"),
        BadCase(
            (torch.zeros(3, 4, dtype=torch.long), t([0, 1, 2])), r"logits must be a floating-point tensor"
        ),
        BadCase((torch.zeros(3, 4), t([0, 1, 4])), r"target holds class index 4; expected \[0, 4\)"),
        BadCase((torch.zeros(3), t([0, 1, 2])), r"logits must have shape \[N, C\] or"),
        BadCase(
            (torch.zeros(2, 3, 4), t([[0, 1, 2, 3], [0, 1, 2, 3]])),
            r"target must have shape \[2, 3\]",
            config={"class_dim_last": True},
        ),
        BadCase(
            (torch.zeros(2, 3), t([0, 1])),
            r"label_smoothing must be in \[0, 1\]",
            config={"label_smoothing": 1.5},
            error=ConfigError,
        ),
        BadCase(
            (torch.zeros(2, 3), t([0, 1])),
            r"reduction must be one of",
            config={"reduction": "avg"},
            error=ConfigError,
        ),
    ],
    "focal": [
        BadCase((torch.zeros(2, 3), torch.zeros(2, 4)), r"target must have the same shape as logits"),
        BadCase(
            (torch.zeros(2, 3), t([[0.0, 1.5, 0.0], [0.0, 0.0, 1.0]])),
            r"target must hold binary targets in \[0, 1\], found 1.5",
        ),
        BadCase((torch.zeros(2, 3), t([0, 3])), r"target holds class index 3; expected \[0, 3\)"),
        BadCase(
            (torch.zeros(2, 3), t([0, 1], dtype=torch.int32)),
            r"target must be a float tensor of the logits' shape .* or an int64 tensor",
        ),
        BadCase((torch.zeros(2, 3, 4, 4), t([0, 1])), r"target must have shape \[2, 4, 4\]"),
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 3)),
            r"gamma must be >= 0",
            config={"gamma": -1.0},
            error=ConfigError,
        ),
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 3)),
            r"alpha must be in \[0, 1\] \(or < 0",
            config={"alpha": 1.5},
            error=ConfigError,
        ),
    ],
    "softmax_focal": [
        BadCase((torch.zeros(2, 3), t([0, 3])), r"target holds class index 3; expected \[0, 3\) or -100"),
        BadCase((torch.zeros(2, 3), t([[0], [1]])), r"target must have shape \[2\]"),
        BadCase((torch.zeros(2, 3), torch.zeros(2)), r"target must be an int64 tensor"),
        BadCase(
            (torch.zeros(2, 3), t([0, 1])),
            r"alpha has 2 values but the logits have 3 classes",
            config={"alpha": [0.5, 0.5]},
        ),
        BadCase(
            (torch.zeros(2, 3), t([0, 1])),
            r"alpha must hold finite values >= 0",
            config={"alpha": [0.5, -0.5, 1.0]},
            error=ConfigError,
        ),
    ],
    "mtp": [
        BadCase(
            (torch.zeros(2, 4, 5), torch.zeros(2, 2, 4, 5), t([[0] * 4] * 2)),
            r"mtp_logits must have shape \[3, 2, 4, 5\]",
        ),
        BadCase(
            (torch.zeros(2, 4, 5), [torch.zeros(2, 4, 5)] * 2, t([[0] * 4] * 2)),
            r"mtp_logits must hold mtp_depth = 3 heads, got a list of 2",
        ),
        BadCase(
            (torch.zeros(2, 4, 5), [torch.zeros(2, 4, 5)] * 2 + [torch.zeros(2, 4, 6)], t([[0] * 4] * 2)),
            r"mtp_logits\[2\] must have the same shape as logits",
        ),
        BadCase(
            (torch.zeros(2, 4, 5), torch.zeros(3, 2, 4, 5), t([[0] * 4] * 3)),
            r"labels must have shape \[2, 4\]",
        ),
        BadCase(
            (torch.zeros(2, 4, 5), torch.zeros(3, 2, 4, 5), t([[0, 1, 2, 5]] * 2)),
            r"labels holds class index 5; expected \[0, 5\) or -100",
        ),
        BadCase((torch.zeros(8, 5), torch.zeros(3, 8, 5), t([0] * 8)), r"logits must have shape \[B, T, V\]"),
        BadCase(
            (torch.zeros(2, 4, 5), torch.zeros(3, 2, 4, 5), t([[0] * 4] * 2)),
            r"mtp_depth must be >= 1",
            config={"mtp_depth": 0},
            error=ConfigError,
        ),
    ],
}


def _torch_ce(config, inputs):
    logits, target = inputs
    loss = F.cross_entropy(
        logits, target, ignore_index=config["ignore_index"], label_smoothing=config["label_smoothing"]
    )
    # documented difference: all ignored gives 0 here, NaN in torch
    return {"loss": torch.nan_to_num(loss, nan=0.0)}


def _kornia_binary_focal(config, inputs):
    from kornia.losses import binary_focal_loss_with_logits

    logits, target = inputs
    alpha = None if config["alpha"] < 0 else config["alpha"]
    return {
        "loss": binary_focal_loss_with_logits(
            logits, target, alpha=alpha, gamma=config["gamma"], reduction=config["reduction"]
        )
    }


def _kornia_softmax_focal(config, inputs):
    from kornia.losses import focal_loss

    logits, target = inputs
    total = focal_loss(
        logits,
        target,
        alpha=None,
        gamma=config["gamma"],
        reduction="sum",
        ignore_index=config["ignore_index"],
    )
    # kornia's "mean" divides by C * all elements; ours by the non-ignored count
    count = (target != config["ignore_index"]).sum().clamp(min=1)
    return {"loss": total / count}


def _mtp_reference(config, inputs):
    """Head k scored with torch's cross_entropy on explicit slices: logits[:, :T-k] vs
    labels[:, k:]."""
    logits, heads, labels = inputs
    ignore, smoothing = config["ignore_index"], config["label_smoothing"]

    def ce(x, y):
        if y.numel() == 0 or bool((y == ignore).all()):
            return x.new_zeros(())
        return F.cross_entropy(
            x.reshape(-1, x.shape[-1]), y.reshape(-1), ignore_index=ignore, label_smoothing=smoothing
        )

    depth, length = heads.shape[0], labels.shape[1]
    extra = sum(ce(heads[k - 1][:, : length - k], labels[:, k:]) for k in range(1, depth + 1))
    return {"loss": ce(logits, labels) + config["mtp_lambda"] / depth * extra}


PEERS = {
    "cross_entropy": Peer(
        "torch", _torch_ce, configs=({}, {"label_smoothing": 0.1}, {"label_smoothing": 1.0})
    ),
    "focal": Peer(
        "kornia",
        _kornia_binary_focal,
        configs=({}, {"alpha": -1.0}, {"gamma": 0.0}, {"gamma": 1.5, "alpha": 0.6}, {"reduction": "sum"}),
    ),
    "softmax_focal": Peer("kornia", _kornia_softmax_focal, configs=({}, {"gamma": 0.5}, {"gamma": 0.0})),
    "mtp": Peer("torch", _mtp_reference, configs=({}, {"mtp_lambda": 1.0, "label_smoothing": 0.1})),
}
