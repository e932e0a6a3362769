"""Keypoint losses: OKS-based keypoint regression (YOLO-pose) and heatmap regression.

Keypoints are float ``[N, K, 2]`` ``(x, y)`` per object and keypoint (a third, visibility
column ``[N, K, 3]`` is accepted and not used); heatmaps are float ``[B, K, H, W]``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from lossport.errors import ConfigError, InvalidInputError
from lossport.losses._reduce import REDUCTIONS, reduce_loss, safe_mean
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import Binary, Interval, Real

__all__ = ["COCO_KEYPOINT_SIGMAS", "HeatmapLoss", "KeypointLoss", "heatmap_loss", "keypoint_loss"]

COCO_KEYPOINT_SIGMAS = (
    0.026,
    0.025,
    0.025,
    0.035,
    0.035,
    0.079,
    0.079,
    0.072,
    0.072,
    0.062,
    0.062,
    0.107,
    0.107,
    0.087,
    0.087,
    0.089,
    0.089,
)
"""Per-keypoint OKS sigmas of the 17 COCO person keypoints (COCO eval / ``pycocotools``)."""


def keypoint_loss(
    pred_kpts: torch.Tensor,
    gt_kpts: torch.Tensor,
    kpt_mask: torch.Tensor,
    area: torch.Tensor,
    sigmas: torch.Tensor,
) -> torch.Tensor:
    """OKS-based keypoint loss, as ``ultralytics.utils.loss.KeypointLoss`` (YOLO-pose).

    Per object ``n`` and keypoint ``k``: squared distance ``d = (x - x*)^2 + (y - y*)^2``,
    ``e = d / ((2 sigma_k)^2 * max(area_n, 1e-9) * 2)`` (the COCO-eval scaling), term
    ``(1 - exp(-e)) * mask_nk``, scaled per object by ``K / max(visible_n, 1e-9)`` where
    ``visible_n`` counts the non-zero mask entries of the object. The loss is the mean of the
    scaled terms over all ``N * K`` entries.

    Ultralytics writes the two floors as ``+ 1e-9``; ``max(., 1e-9)`` is the same at 0 and
    differs by at most ``1e-9`` elsewhere (relative ``1e-9`` for a count >= 1). It is used
    because the ONNX exporter's graph optimiser removes an added constant of magnitude
    <= 1e-8 as a no-op ``x + 0``, which would turn the 0 / 0 of an object with no visible
    keypoint into NaN in ONNX Runtime; a clamp is kept.

    Shapes: ``pred_kpts`` and ``gt_kpts`` float ``[N, K, 2]`` (or ``[N, K, 3]``, third
    column unused), ``kpt_mask`` float ``[N, K]`` (1 = visible; any non-negative weight
    counts as visible when non-zero), ``area`` float ``[N, 1]`` (or ``[N]``) object areas in
    squared pixels, ``sigmas`` float ``[K]``. Returns a scalar.

    Edge behaviour: an object with no visible keypoint contributes 0 (its huge scale factor
    multiplies a zero mask); a zero area is finite thanks to the ``1e-9`` floor. ``N = 0``
    gives 0 where ultralytics returns NaN (mean of an empty tensor).
    """
    diff = pred_kpts[..., :2] - gt_kpts[..., :2]
    distance = diff.pow(2).sum(-1)
    mask = kpt_mask.to(distance.dtype)
    scale = (2 * sigmas.to(distance.dtype)).pow(2) * torch.clamp(area.reshape(-1, 1), min=1e-9) * 2
    factor = mask.shape[1] / torch.clamp((mask != 0).sum(1).to(distance.dtype), min=1e-9)
    return safe_mean(factor.unsqueeze(1) * ((1 - torch.exp(-distance / scale)) * mask))


class KeypointLoss(nn.Module):
    """Module form of :func:`keypoint_loss`; ``sigmas`` (list or tensor ``[K]``, e.g.
    :data:`COCO_KEYPOINT_SIGMAS`) is a buffer, so it moves with ``.to()``."""

    def __init__(self, sigmas: Union[torch.Tensor, Sequence[float]]) -> None:
        super().__init__()
        tensor = torch.as_tensor(sigmas).detach().clone()
        if not tensor.is_floating_point():
            tensor = tensor.to(torch.get_default_dtype())
        if tensor.dim() != 1 or tensor.numel() == 0:
            raise ConfigError(
                f"sigmas must be a non-empty 1-D list or tensor [K], got shape {list(tensor.shape)}"
            )
        if not bool(torch.isfinite(tensor).all()) or bool((tensor <= 0).any()):
            raise ConfigError(f"sigmas must be finite and > 0, got {tensor.tolist()}")
        self.register_buffer("sigmas", tensor)

    def forward(
        self, pred_kpts: torch.Tensor, gt_kpts: torch.Tensor, kpt_mask: torch.Tensor, area: torch.Tensor
    ) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(pred_kpts, gt_kpts, kpt_mask, area)
        return keypoint_loss(pred_kpts, gt_kpts, kpt_mask, area, self.sigmas)

    @torch.jit.unused
    def _check(
        self, pred_kpts: torch.Tensor, gt_kpts: torch.Tensor, kpt_mask: torch.Tensor, area: torch.Tensor
    ) -> None:
        num = self.sigmas.numel()
        checks.check_float(pred_kpts, "pred_kpts")
        checks.check_rank(pred_kpts, "pred_kpts", [3], f"[N, {num}, 2]")
        if pred_kpts.shape[1] != num or pred_kpts.shape[2] not in (2, 3):
            raise InvalidInputError(
                f"pred_kpts must have shape [N, {num}, 2] or [N, {num}, 3] "
                f"(K = {num} sigmas), got {list(pred_kpts.shape)}"
            )
        checks.check_float(gt_kpts, "gt_kpts")
        checks.check_shape(
            gt_kpts,
            "gt_kpts",
            [pred_kpts.shape[0], num, None],
            f"[{pred_kpts.shape[0]}, {num}, 2] matching pred_kpts",
        )
        if kpt_mask.dtype != torch.bool:
            checks.check_float(kpt_mask, "kpt_mask")
        checks.check_shape(
            kpt_mask,
            "kpt_mask",
            [pred_kpts.shape[0], num],
            f"[{pred_kpts.shape[0]}, {num}] ([N, K] matching pred_kpts)",
        )
        if kpt_mask.dtype != torch.bool:
            checks.check_range(kpt_mask, "kpt_mask", 0.0, float("inf"), "visibility weights")
        checks.check_float(area, "area")
        if area.shape not in ((pred_kpts.shape[0], 1), (pred_kpts.shape[0],)):
            raise InvalidInputError(
                f"area must have shape [{pred_kpts.shape[0]}, 1] ([N, 1] "
                f"matching pred_kpts), got {list(area.shape)}"
            )
        checks.check_range(area, "area", 0.0, float("inf"), "object areas")


def heatmap_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    target_weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Heatmap regression MSE: ``(w_bk (pred - target))^2`` per pixel.

    Shapes: ``pred`` and ``target`` float ``[B, K, H, W]``; ``target_weight`` optional float
    ``[B, K]`` per-joint weights (usually visibility 0/1; None = 1). Both heatmaps are
    multiplied by the weight before the squared error, as mmpose's ``KeypointMSELoss`` with
    ``use_target_weight=True`` (``F.mse_loss(pred * w, target * w)``), so a weight ``w``
    scales the error by ``w^2``. ``"mean"`` averages over all ``B * K * H * W`` pixels
    (weighted-out joints included, as mmpose), ``"sum"`` sums, ``"none"`` returns
    ``[B, K, H, W]``. HRNet's ``JointsMSELoss`` is this mean times 0.5. Empty input gives 0.
    """
    error = pred - target
    if target_weight is not None:
        error = error * target_weight.to(error.dtype).unsqueeze(-1).unsqueeze(-1)
    return reduce_loss(error.pow(2), reduction)


class HeatmapLoss(nn.Module):
    """Module form of :func:`heatmap_loss`. With ``use_target_weight=False`` a given
    ``target_weight`` is not used (the flag's purpose, as in HRNet and mmpose)."""

    def __init__(self, use_target_weight: bool = True, reduction: str = "mean") -> None:
        super().__init__()
        checks.check_choice(reduction, "reduction", REDUCTIONS)
        self.use_target_weight = use_target_weight
        self.reduction = reduction

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, target_weight: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            checks.check_float(pred, "pred")
            checks.check_rank(pred, "pred", [4], "[B, K, H, W]")
            checks.check_float(target, "target")
            checks.check_same_shape(pred, "pred", target, "target")
            if target_weight is not None:
                checks.check_float(target_weight, "target_weight")
                checks.check_shape(
                    target_weight,
                    "target_weight",
                    list(pred.shape[:2]),
                    f"{list(pred.shape[:2])} ([B, K] matching pred [B, K, H, W])",
                )
        weight = target_weight if self.use_target_weight else None
        return heatmap_loss(pred, target, weight, self.reduction)


def _keypoint_edges(dtype: torch.dtype):
    gt = torch.arange(2 * 17 * 2, dtype=dtype).reshape(2, 17, 2)
    visible = torch.ones(2, 17, dtype=dtype)
    area = torch.tensor([[50.0], [8.0]], dtype=dtype)
    return {
        "identical": (gt.clone(), gt.clone(), visible, area),
        "none_visible": (gt + 1, gt.clone(), torch.zeros_like(visible), area),
        "zero_area": (gt + 1, gt.clone(), visible, torch.zeros_like(area)),
        "far_away": (gt + 1e4, gt.clone(), visible, area),
        "batch_of_one": (gt[:1] + 0.5, gt[:1].clone(), visible[:1], area[:1]),
    }


register(
    Spec(
        name="keypoint",
        build=KeypointLoss,
        inputs=(
            TensorSpec("pred_kpts", ("objects", 17, 2), Real(scale=3.0), differentiable=True),
            TensorSpec("gt_kpts", ("objects", 17, 2), Real(scale=3.0)),
            TensorSpec("kpt_mask", ("objects", 17), Binary(p=0.7)),
            TensorSpec("area", ("objects", 1), Interval(0.5, 20.0, "object area")),
        ),
        outputs=("loss",),
        shapes=({"objects": 3}, {"objects": 5}, {"objects": 1}),
        config={"sigmas": list(COCO_KEYPOINT_SIGMAS)},
        source="loss-library catalog",
        summary="YOLO-pose OKS loss: mean of K/max(visible, 1e-9) * (1 - exp(-d^2 / ((2 sigma)^2 "
        "max(area, 1e-9) 2))) * mask; 17 COCO sigmas (K follows the sigmas)",
        peer="ultralytics.utils.loss.KeypointLoss (formula transcribed in the tests)",
        edge_cases=_keypoint_edges,
    )
)


def _heatmap_edges(dtype: torch.dtype):
    peak = torch.zeros(2, 3, 4, 4, dtype=dtype)
    peak[:, :, 1, 2] = 1.0
    return {
        "identical": (peak.clone(), peak.clone(), torch.ones(2, 3, dtype=dtype)),
        "all_weights_zero": (torch.zeros_like(peak), peak.clone(), torch.zeros(2, 3, dtype=dtype)),
        "empty_target": (peak.clone(), torch.zeros_like(peak), torch.ones(2, 3, dtype=dtype)),
        "batch_of_one": (peak[:1].clone(), torch.zeros_like(peak[:1]), torch.ones(1, 3, dtype=dtype)),
    }


register(
    Spec(
        name="heatmap",
        build=HeatmapLoss,
        inputs=(
            TensorSpec("pred", ("batch", "joints", "height", "width"), Real(scale=0.5), differentiable=True),
            TensorSpec("target", ("batch", "joints", "height", "width"), Interval(0.0, 1.0, "heat")),
            TensorSpec("target_weight", ("batch", "joints"), Binary(p=0.8)),
        ),
        outputs=("loss",),
        shapes=(
            {"batch": 2, "joints": 3, "height": 5, "width": 4},
            {"batch": 3, "joints": 2, "height": 3, "width": 6},
            {"batch": 1, "joints": 4, "height": 2, "width": 2},
        ),
        source="loss-library catalog",
        summary="MSE of [B, K, H, W] heatmaps, both multiplied by per-joint weights [B, K] "
        "(mmpose KeypointMSELoss), mean over all pixels",
        peer="torch.nn.functional.mse_loss(pred * w, target * w) (mmpose's formula)",
        edge_cases=_heatmap_edges,
    )
)
