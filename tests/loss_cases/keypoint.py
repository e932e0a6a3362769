"""Cases for the keypoint family (see loss_cases/__init__.py for the contract)."""

import math

import torch
import torch.nn.functional as F

from loss_cases import BadCase, HandCase, Peer
from lossport.errors import ConfigError

t = torch.tensor
SIGMAS = [0.5, 0.25]


def _oks_term(d2, sigma, area):
    return 1 - math.exp(-d2 / ((2 * sigma) ** 2 * area * 2))


HAND = {
    "keypoint": [
        # keypoint 0 one pixel off (d^2 = 1), keypoint 1 exact; both visible: factor 2/2
        HandCase(
            (t([[[1.0, 0.0], [3.0, 4.0]]]), t([[[0.0, 0.0], [3.0, 4.0]]]), t([[1.0, 1.0]]), t([[1.0]])),
            {"loss": _oks_term(1.0, 0.5, 1.0) / 2},
            config={"sigmas": SIGMAS},
        ),
        # keypoint 1 invisible (far off, masked): factor 2/1, mean over N*K = 2 entries
        HandCase(
            (t([[[0.0, 2.0], [90.0, 90.0]]]), t([[[0.0, 0.0], [0.0, 0.0]]]), t([[1.0, 0.0]]), t([[2.0]])),
            {"loss": 2 * _oks_term(4.0, 0.5, 2.0) / 2},
            config={"sigmas": SIGMAS},
        ),
        # two objects; the second has nothing visible and contributes 0
        HandCase(
            (
                t([[[1.0, 1.0], [0.0, 0.0]], [[5.0, 5.0], [5.0, 5.0]]]),
                torch.zeros(2, 2, 2),
                t([[1.0, 1.0], [0.0, 0.0]]),
                t([[4.0], [4.0]]),
            ),
            {"loss": (_oks_term(2.0, 0.5, 4.0) + 0.0) / 4},
            config={"sigmas": SIGMAS},
        ),
        HandCase(
            (t([[[1.0, 0.0], [0.0, 1.0]]]), torch.zeros(1, 2, 2), t([[True, True]]), t([1.0])),
            {"loss": (_oks_term(1.0, 0.5, 1.0) + _oks_term(1.0, 0.25, 1.0)) / 2},
            config={"sigmas": SIGMAS},
            note="bool mask, area [N]",
        ),
    ],
    "heatmap": [
        HandCase(
            (torch.ones(1, 1, 1, 2), torch.zeros(1, 1, 1, 2), t([[2.0]])),
            {"loss": 4.0},
            note="weight multiplies both heatmaps: (2 * 1)^2",
        ),
        HandCase(
            (torch.ones(1, 1, 1, 2), torch.zeros(1, 1, 1, 2), t([[2.0]])),
            {"loss": 1.0},
            config={"use_target_weight": False},
        ),
        HandCase(
            (t([[[[1.0, 3.0]], [[0.5, 0.5]]]]), t([[[[0.0, 1.0]], [[0.5, 0.0]]]]), t([[1.0, 0.0]])),
            {"loss": (1 + 4 + 0 + 0) / 4},
            note="a zero-weight joint counts in the mean",
        ),
        HandCase(
            (t([[[[1.0, 3.0]]]]), t([[[[0.0, 1.0]]]])),
            {"loss": 5.0},
            config={"reduction": "sum"},
            note="no weights given",
        ),
    ],
}

BAD = {
    "keypoint": [
        BadCase(
            (torch.zeros(2, 3, 2), torch.zeros(2, 3, 2), torch.ones(2, 3), torch.ones(2, 1)),
            r"pred_kpts must have shape \[N, 2, 2\] or \[N, 2, 3\] \(K = 2 sigmas\), got \[2, 3, 2\]",
            config={"sigmas": SIGMAS},
        ),
        BadCase(
            (torch.zeros(2, 2, 2), torch.zeros(3, 2, 2), torch.ones(2, 2), torch.ones(2, 1)),
            r"gt_kpts must have shape \[2, 2, 2\] matching pred_kpts",
            config={"sigmas": SIGMAS},
        ),
        BadCase(
            (torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), torch.ones(2, 3), torch.ones(2, 1)),
            r"kpt_mask must have shape \[2, 2\]",
            config={"sigmas": SIGMAS},
        ),
        BadCase(
            (torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), torch.ones(2, 2), torch.ones(2, 2)),
            r"area must have shape \[2, 1\]",
            config={"sigmas": SIGMAS},
        ),
        BadCase(
            (torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), torch.ones(2, 2), -torch.ones(2, 1)),
            r"area must hold object areas in \[0, inf\], found -1.0",
            config={"sigmas": SIGMAS},
        ),
        BadCase(
            (
                torch.zeros(2, 2, 2),
                torch.zeros(2, 2, 2),
                torch.ones(2, 2, dtype=torch.long),
                torch.ones(2, 1),
            ),
            r"kpt_mask must be a floating-point tensor",
            config={"sigmas": SIGMAS},
        ),
        BadCase(
            (torch.zeros(2, 2), torch.zeros(2, 2), torch.ones(2, 2), torch.ones(2, 1)),
            r"pred_kpts must have shape \[N, 2, 2\] \(3-D\)",
            config={"sigmas": SIGMAS},
        ),
        BadCase(
            (torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), torch.ones(2, 2), torch.ones(2, 1)),
            r"sigmas must be finite and > 0",
            config={"sigmas": [0.5, 0.0]},
            error=ConfigError,
        ),
    ],
    "heatmap": [
        BadCase(
            (torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 5)),
            r"target must have the same shape as pred \[2, 3, 4, 4\]",
        ),
        BadCase((torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)), r"pred must have shape \[B, K, H, W\]"),
        BadCase(
            (torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4), torch.ones(2, 4)),
            r"target_weight must have shape \[2, 3\]",
        ),
        BadCase(
            (torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4, dtype=torch.long)),
            r"target must be a floating-point tensor",
        ),
        BadCase(
            (torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)),
            r"reduction must be one of",
            config={"reduction": "max"},
            error=ConfigError,
        ),
    ],
}


def _ultralytics_oks(config, inputs):
    """ultralytics.utils.loss.KeypointLoss.forward, transcribed (ultralytics needs torchvision,
    which cannot be installed next to the CPU torch here)."""
    pred_kpts, gt_kpts, kpt_mask, area = inputs
    sigmas = torch.tensor(config["sigmas"], dtype=pred_kpts.dtype)
    d = (pred_kpts[..., 0] - gt_kpts[..., 0]).pow(2) + (pred_kpts[..., 1] - gt_kpts[..., 1]).pow(2)
    kpt_loss_factor = kpt_mask.shape[1] / (torch.sum(kpt_mask != 0, dim=1) + 1e-9)
    e = d / ((2 * sigmas).pow(2) * (area + 1e-9) * 2)
    return {"loss": (kpt_loss_factor.view(-1, 1) * ((1 - torch.exp(-e)) * kpt_mask)).mean()}


def _mmpose_mse(config, inputs):
    pred, target, weight = inputs
    if config["use_target_weight"]:
        w = weight[:, :, None, None]
        pred, target = pred * w, target * w
    return {"loss": F.mse_loss(pred, target)}


PEERS = {
    "keypoint": Peer("torch", _ultralytics_oks),
    "heatmap": Peer("torch", _mmpose_mse, configs=({}, {"use_target_weight": False})),
}
