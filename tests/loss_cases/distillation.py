"""Cases for the distillation family (see loss_cases/__init__.py for the contract)."""

import math

import torch
import torch.nn.functional as F

from loss_cases import BadCase, HandCase, Peer
from lossport.errors import ConfigError

t = torch.tensor
LN3 = math.log(3.0)
LN2 = math.log(2.0)
# teacher softmax [3/4, 1/4] against a uniform student [1/2, 1/2]
KL = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)

HAND = {
    "distillation": [
        # T = 2: teacher logits [2 ln 3, 0] / 2 give [3/4, 1/4]; T^2 = 4; CE of [0, 0] = ln 2
        HandCase(
            (t([[0.0, 0.0]]), t([[2 * LN3, 0.0]]), t([0])),
            {"loss": 0.5 * 4 * KL + 0.5 * LN2},
            config={"temperature": 2.0},
        ),
        HandCase(
            (t([[0.0, 0.0]]), t([[2 * LN3, 0.0]])),
            {"loss": 4 * KL},
            config={"temperature": 2.0},
            note="no hard targets: the T^2-scaled KL alone",
        ),
        HandCase(
            (t([[0.0, 0.0], [1.0, 1.0]]), t([[LN3, 0.0], [5.0, 5.0]]), t([1, 0])),
            {"loss": 0.8 * KL / 2 + 0.2 * LN2},
            config={"temperature": 1.0, "alpha": 0.8},
            note="batchmean over 2 rows",
        ),
        HandCase(
            (t([[3.0, -1.0]]), t([[3.0, -1.0]]), t([1])),
            {"loss": 0.5 * (math.log(math.exp(3) + math.exp(-1)) + 1)},
            note="identical logits: KD term 0",
        ),
    ],
    "lwf": [
        # KD on the first two new logits [0, 0] vs old [2 ln 3, 0] (T = 2); CE of all three
        HandCase(
            (t([[0.0, 0.0, 5.0]]), t([[2 * LN3, 0.0]]), t([2])),
            {"loss": 0.5 * 4 * KL + 0.5 * (math.log(2 + math.exp(5)) - 5)},
        ),
        HandCase(
            (t([[0.0, 0.0, 5.0], [1.0, 1.0, 0.0]]), t([[LN3, 0.0], [7.0, 7.0]]), t([0, 2])),
            {"loss": 0.3 * KL / 2 + 0.7 * ((math.log(2 + math.exp(5))) + (math.log(2 * math.e + 1))) / 2},
            config={"temperature": 1.0, "alpha": 0.3},
        ),
    ],
}

BAD = {
    "distillation": [
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 4)),
            r"teacher_logits must have the same shape as student_logits \[2, 3\]",
        ),
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 3), t([0, 3])),
            r"hard_targets holds class index 3; expected \[0, 3\)",
        ),
        BadCase((torch.zeros(2, 3), torch.zeros(2, 3), t([0, 1, 2])), r"hard_targets must have shape \[2\]"),
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 3), t([0.0, 1.0])), r"hard_targets must be an int64 tensor"
        ),
        BadCase((torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)), r"student_logits must have shape \[N, C\]"),
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 3)),
            r"temperature must be > 0",
            config={"temperature": 0.0},
            error=ConfigError,
        ),
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 3)),
            r"alpha must be in \[0, 1\]",
            config={"alpha": 1.5},
            error=ConfigError,
        ),
    ],
    "lwf": [
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 4), t([0, 1])),
            r"old_logits must have shape \[N, C_old\] with N = 2 and C_old <= 3",
        ),
        BadCase(
            (torch.zeros(2, 3), torch.zeros(3, 2), t([0, 1])),
            r"old_logits must have shape \[N, C_old\] with N = 2",
        ),
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 2), t([0, 3])),
            r"targets holds class index 3; expected \[0, 3\)",
        ),
        BadCase((torch.zeros(2, 3), torch.zeros(2, 2), t([[0], [1]])), r"targets must have shape \[2\]"),
        BadCase(
            (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 2), t([0, 1])),
            r"new_logits must be a floating-point tensor",
        ),
    ],
}


def _torch_kd(config, inputs):
    student, teacher, hard = inputs
    T, alpha = config["temperature"], config["alpha"]
    kd = (
        torch.nn.KLDivLoss(reduction="batchmean")(
            F.log_softmax(student / T, dim=1), F.softmax(teacher / T, dim=1)
        )
        * T
        * T
    )
    return {"loss": alpha * kd + (1 - alpha) * F.cross_entropy(student, hard)}


PEERS = {
    "distillation": Peer(
        "torch",
        _torch_kd,
        configs=({}, {"temperature": 1.0, "alpha": 0.9}, {"temperature": 7.5, "alpha": 0.0}),
    ),
    "lwf": Peer.none(
        "LOSSES.md names no public LwF implementation; the formula (Li and Hoiem "
        "2016, KL form with T^2) is covered by the hand cases"
    ),
}
