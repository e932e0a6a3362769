"""Cases for the TIGAS training loss (see loss_cases/__init__.py for the contract)."""

import math

import torch
import torch.nn.functional as F

from loss_cases import BadCase, HandCase, Peer
from lossport.errors import ConfigError

t = torch.tensor
LN2, LN3 = math.log(2.0), math.log(3.0)


def _expected(regression, classification, ranking, weights=(1.0, 0.3, 0.2)):
    total = weights[0] * regression + weights[1] * classification + weights[2] * ranking
    return {
        "loss": total,
        "regression": regression,
        "classification": classification,
        "ranking": ranking,
        "total": total,
    }


# Two real (labels 1.0 and a soft 0.8), two fake (0.0 and a soft 0.2).
SCORES = t([0.6, 0.4, 0.7, 0.3])
LOGITS = t([[LN3, 0.0], [0.0, 0.0], [0.0, LN3], [0.0, 0.0]])
LABELS = t([1.0, 0.0, 0.8, 0.2])
REG_MSE = (0.4**2 + 0.4**2 + 0.1**2 + 0.1**2) / 4
REG_SMOOTH = 0.5 * REG_MSE
CLS = (math.log(4.0) + LN2 - math.log(0.75) + LN2) / 4  # p_real = 1/4, 1/2, 3/4, 1/2
# pairs (real, fake): 0.6-0.4, 0.6-0.3, 0.7-0.4, 0.7-0.3 -> hinge 0.3, 0.2, 0.2, 0.1
RANK = (0.3 + 0.2 + 0.2 + 0.1) / 4

HAND = {
    "tigas_combined": [
        HandCase((SCORES, LOGITS, LABELS), _expected(REG_MSE, CLS, RANK)),
        HandCase(
            (SCORES, LOGITS, LABELS), _expected(REG_SMOOTH, CLS, RANK), config={"regression_type": "smoothl1"}
        ),
        HandCase(
            (SCORES, LOGITS, LABELS),
            _expected(REG_MSE, CLS, (0.1 + 0.0 + 0.0 + 0.0) / 4, weights=(0.5, 1.0, 0.2)),
            config={"regression_weight": 0.5, "classification_weight": 1.0, "margin": 0.3},
        ),
        HandCase(
            (t([0.9, 0.2]), torch.zeros(2, 2), t([1.0, 0.0])),
            _expected((0.1**2 + 0.2**2) / 2, LN2, 0.0),
            note="well separated pair: hinge 0",
        ),
        HandCase(
            (t([0.9, 0.2, 0.5]), torch.zeros(3, 2), t([1.0, 1.0, 0.7])),
            _expected((0.1**2 + 0.8**2 + 0.2**2) / 3, LN2, 0.0),
            note="no fake sample: ranking 0",
        ),
        HandCase(
            (t([0.5, 0.5]), torch.zeros(2, 2), t([0.5, 0.5])),
            _expected(0.0, LN2, 0.0),
            note="label 0.5 is fake (labels > 0.5 is real)",
        ),
        HandCase(
            (t([0.2, 0.3]), t([[0.0, 0.0], [0.0, 0.0]]), t([0.7, 0.0])),
            _expected((0.5**2 + 0.3**2) / 2, LN2, 0.5 - (0.2 - 0.3)),
            note="soft label 0.7 is real (upstream's .long() would make it fake)",
        ),
        HandCase(
            (t([0.5]), t([[30.0, -30.0]]), t([1.0])),
            _expected(0.25, 60.0 + math.log1p(math.exp(-60.0)), 0.0),
            note="batch of one, confidently wrong logits",
        ),
    ],
}

_B = 4
_OK = (torch.rand(_B), torch.randn(_B, 2), t([1.0, 0.0, 1.0, 0.0]))


def _replace(index, value):
    inputs = list(_OK)
    inputs[index] = value
    return tuple(inputs)


def _with_nan(index, position, value=float("nan")):
    tensor = _OK[index].clone()
    tensor.view(-1)[position] = value
    return _replace(index, tensor)


BAD = {
    "tigas_combined": [
        BadCase(
            _replace(0, torch.rand(_B, 1)),
            r"scores must have shape \[B\] \(squeeze the model's \[B, 1\] score\)",
        ),
        BadCase(
            _replace(1, torch.randn(_B, 3)),
            r"logits must have shape \[B, 2\] = \[4, 2\] matching scores \[4\], got \[4, 3\]",
        ),
        BadCase(
            _replace(2, torch.ones(_B + 1)),
            r"labels must have shape \[B\] = \[4\] matching scores \[4\], got \[5\]",
        ),
        BadCase(
            _replace(2, t([1.0, 0.0, 1.5, 0.0])),
            r"labels must hold soft labels \(1 = real\) in \[0, 1\], found 1.5",
        ),
        BadCase(_replace(2, t([1, 0, 1, 0])), r"labels must be a floating-point tensor"),
        BadCase(_replace(0, torch.ones(_B, dtype=torch.long)), r"scores must be a floating-point tensor"),
        BadCase(_with_nan(0, 1), r"NaN/Inf detected in scores", error=RuntimeError),
        BadCase(_with_nan(1, 3, float("inf")), r"NaN/Inf detected in logits", error=RuntimeError),
        BadCase(_with_nan(2, 0), r"NaN/Inf detected in labels", error=RuntimeError),
        BadCase(
            _replace(0, t([1e30, 0.0, 0.0, 0.0])),
            r"NaN/Inf detected in total loss",
            error=RuntimeError,
            note="finite inputs, overflowing total",
        ),
        BadCase(
            (),
            r"regression_type must be one of 'mse', 'smoothl1', got 'l1'",
            config={"regression_type": "l1"},
            error=ConfigError,
        ),
        BadCase((), r"loss weights must be >= 0", config={"ranking_weight": -0.1}, error=ConfigError),
    ],
}


def _explicit_pairs(config, inputs):
    scores, logits, labels = inputs
    real = labels > 0.5
    if config["regression_type"] == "mse":
        regression = F.mse_loss(scores, labels)
    else:
        regression = F.smooth_l1_loss(scores, labels)
    classification = F.cross_entropy(logits, real.long())
    pairs = [(i, j) for i in range(len(scores)) for j in range(len(scores)) if real[i] and not real[j]]
    if pairs:
        first = torch.stack([scores[i] for i, _ in pairs])
        second = torch.stack([scores[j] for _, j in pairs])
        ranking = F.margin_ranking_loss(first, second, torch.ones_like(first), margin=config["margin"])
    else:
        ranking = scores.new_zeros(())
    total = (
        config["regression_weight"] * regression
        + config["classification_weight"] * classification
        + config["ranking_weight"] * ranking
    )
    return {
        "loss": total,
        "regression": regression,
        "classification": classification,
        "ranking": ranking,
        "total": total,
    }


PEERS = {
    "tigas_combined": Peer(
        "torch",
        _explicit_pairs,
        configs=({}, {"regression_type": "smoothl1", "margin": 0.1, "ranking_weight": 1.0}),
    ),
}
