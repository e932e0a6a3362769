"""CenterNet loss (Zhou et al., "Objects as Points"): heatmap focal + masked L1 of sizes and offsets.

Dense maps ``[B, K, H, W]``: class-heatmap logits (``K = C``), box sizes ``wh`` and sub-pixel
centre offsets ``reg`` (``K = 2``). Per-object targets ``[B, M, 2]`` are compared with the
maps read at the flat centre locations ``indices [B, M]`` (``y * W + x``); ``mask [B, M]``
marks the real objects among the ``M`` slots. Returns a dict ``hm_loss``, ``wh_loss``,
``reg_loss``, ``total_loss`` (components already weighted, their sum last). Spec ``centernet``.
"""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from lossport.errors import InvalidInputError
from lossport.losses._reduce import masked_mean
from lossport.losses.detection.common import _check_options, _truncated
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import Binary, Domain, Interval, Real


def centernet_heatmap_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """Penalty-reduced pixel-wise focal loss of CenterNet (Zhou et al., "Objects as Points").

    ``p = sigmoid(logits)``, ``Y = target`` (Gaussian-splatted heatmap in [0, 1], exactly 1 at
    object centres); ``-(1/N) sum [Y = 1] (1 - p)^alpha log p
    + [Y < 1] (1 - Y)^beta p^alpha log(1 - p)``, ``N = max(#{Y = 1}, 1)`` (the number of
    centres, as the reference code counts them). ``-log p`` and ``-log(1 - p)`` are
    ``softplus(-+logits)``: exact and finite for any finite logit, where the reference code
    clamps ``p`` to ``[1e-4, 1 - 1e-4]`` (which changes values beyond ``|logit| > 9.2`` and
    zeroes their gradient). Shapes: any equal shapes, ``[B, C, H, W]`` usually. Returns a scalar.
    """
    positive = (target == 1).to(logits.dtype)
    p = torch.sigmoid(logits)
    positive_term = torch.sigmoid(-logits).pow(alpha) * F.softplus(-logits)
    negative_term = (1 - target).pow(beta) * p.pow(alpha) * F.softplus(logits)
    total = (positive * positive_term + (1 - positive) * negative_term).sum()
    return total / torch.clamp(positive.sum(), min=1.0)


def _gather_locations(maps: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``maps [B, K, H, W]`` read at flat locations ``indices [B, M]`` (into ``H*W``):
    ``[B, M, K]``."""
    index = indices.unsqueeze(1).expand(-1, maps.shape[1], -1)
    return maps.flatten(2).gather(2, index).transpose(1, 2)


def _masked_l1(
    maps: torch.Tensor, indices: torch.Tensor, mask: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    pred = _gather_locations(maps, indices)
    return masked_mean((pred - target).abs(), mask.unsqueeze(-1).expand_as(pred))


def centernet_loss(
    heatmap: torch.Tensor,
    wh: torch.Tensor,
    reg: torch.Tensor,
    heatmap_target: torch.Tensor,
    indices: torch.Tensor,
    mask: torch.Tensor,
    wh_target: torch.Tensor,
    reg_target: torch.Tensor,
    hm_weight: float = 1.0,
    wh_weight: float = 0.1,
    reg_weight: float = 1.0,
) -> Dict[str, torch.Tensor]:
    """CenterNet loss: heatmap focal + masked L1 on sizes and centre offsets.

    Layout: ``heatmap`` float ``[B, C, H, W]`` class-heatmap logits; ``wh`` float
    ``[B, 2, H, W]`` predicted box sizes; ``reg`` float ``[B, 2, H, W]`` predicted sub-pixel
    centre offsets; ``heatmap_target`` float ``[B, C, H, W]`` in [0, 1] (1 at centres);
    ``indices`` int64 ``[B, M]`` flat centre locations ``y * W + x`` in ``[0, H*W)`` (up to
    ``M`` objects per image, padding rows included); ``mask`` float (0/1) or bool ``[B, M]``,
    1 for real objects; ``wh_target`` and ``reg_target`` float ``[B, M, 2]``.

    - ``hm_loss = hm_weight *`` :func:`centernet_heatmap_loss` (alpha 2, beta 4);
    - ``wh_loss = wh_weight * sum_obj |wh[b, :, idx] - wh_target| / max(2 #objects, 1)``;
    - ``reg_loss = reg_weight *`` the same L1 for the offsets;
    - ``total_loss`` = their sum.

    The L1 terms are means over the masked coordinates, as CenterNet's ``RegL1Loss``, with
    ``max(·, 1)`` in place of its ``+ 1e-4`` denominator; no objects gives 0.
    """
    hm = hm_weight * centernet_heatmap_loss(heatmap, heatmap_target)
    size = wh_weight * _masked_l1(wh, indices, mask, wh_target)
    offset = reg_weight * _masked_l1(reg, indices, mask, reg_target)
    return {"hm_loss": hm, "wh_loss": size, "reg_loss": offset, "total_loss": hm + size + offset}


class CenterNetLoss(nn.Module):
    """Module form of :func:`centernet_loss`: ``forward(heatmap, wh, reg, heatmap_target,
    indices, mask, wh_target, reg_target)``."""

    def __init__(self, hm_weight: float = 1.0, wh_weight: float = 0.1, reg_weight: float = 1.0) -> None:
        super().__init__()
        _check_options(hm_weight=hm_weight, wh_weight=wh_weight, reg_weight=reg_weight)
        self.hm_weight = float(hm_weight)
        self.wh_weight = float(wh_weight)
        self.reg_weight = float(reg_weight)

    def forward(
        self,
        heatmap: torch.Tensor,
        wh: torch.Tensor,
        reg: torch.Tensor,
        heatmap_target: torch.Tensor,
        indices: torch.Tensor,
        mask: torch.Tensor,
        wh_target: torch.Tensor,
        reg_target: torch.Tensor,
    ) -> Dict[str, torch.Tensor]:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(heatmap, wh, reg, heatmap_target, indices, mask, wh_target, reg_target)
        return centernet_loss(
            heatmap,
            wh,
            reg,
            heatmap_target,
            indices,
            mask,
            wh_target,
            reg_target,
            self.hm_weight,
            self.wh_weight,
            self.reg_weight,
        )

    @torch.jit.unused
    def _check(self, heatmap, wh, reg, heatmap_target, indices, mask, wh_target, reg_target) -> None:
        checks.check_float(heatmap, "heatmap")
        checks.check_rank(heatmap, "heatmap", [4], "[B, C, H, W]")
        checks.check_float(heatmap_target, "heatmap_target")
        checks.check_same_shape(heatmap, "heatmap", heatmap_target, "heatmap_target")
        checks.check_range(heatmap_target, "heatmap_target", 0.0, 1.0, "heatmap values")
        b, _, h, w = heatmap.shape
        for value, name in ((wh, "wh"), (reg, "reg")):
            checks.check_float(value, name)
            checks.check_shape(
                value, name, [b, 2, h, w], f"{[b, 2, h, w]} ([B, 2, H, W] of heatmap {list(heatmap.shape)})"
            )
        checks.check_index(indices, "indices")
        checks.check_rank(indices, "indices", [2], "[B, M]")
        checks.check_dim(indices, "indices", 0, b, "batch size of heatmap")
        checks.check_class_index(indices, "indices", h * w)
        m = indices.shape[1]
        checks.check_tensor(mask, "mask")
        checks.check_shape(mask, "mask", [b, m], f"{[b, m]} (matching indices [B, M])")
        if mask.is_floating_point():
            checks.check_range(mask, "mask", 0.0, 1.0, "object mask values")
        elif mask.dtype != torch.bool:
            raise InvalidInputError(f"mask must be a float (0/1) or bool tensor, got {mask.dtype}")
        for value, name in ((wh_target, "wh_target"), (reg_target, "reg_target")):
            checks.check_float(value, name)
            checks.check_shape(value, name, [b, m, 2], f"{[b, m, 2]} ([B, M, 2] of indices)")


# -- spec ------------------------------------------------------------------------------------


class _FlatLocation(Domain):
    """int64 flat locations ``y * W + x`` in ``[0, sizes[height] * sizes[width])``."""

    @property
    def is_float(self) -> bool:
        return False

    def describe(self) -> str:
        return "int64 flat location y * width + x in [0, height * width)"

    def sample(self, shape, sizes, generator, dtype):
        return torch.randint(0, int(sizes["height"]) * int(sizes["width"]), shape, generator=generator)


def _centernet_sampler(spec: Spec, sizes, generator: torch.Generator, dtype: torch.dtype):
    b, c, h, w, m = (int(sizes[k]) for k in ("batch", "classes", "height", "width", "objects"))
    heatmap = 2 * torch.randn(b, c, h, w, generator=generator, dtype=dtype)
    wh = 1 + 4 * torch.rand(b, 2, h, w, generator=generator, dtype=dtype)
    reg = torch.rand(b, 2, h, w, generator=generator, dtype=dtype)
    indices = torch.randint(0, h * w, (b, m), generator=generator)
    mask = (torch.rand(b, m, generator=generator) < 0.7).to(dtype)
    classes = torch.randint(0, c, (b, m), generator=generator)
    centre = (
        (classes.unsqueeze(-1) == torch.arange(c)).unsqueeze(-1)
        & (indices.unsqueeze(-1) == torch.arange(h * w)).unsqueeze(-2)
        & (mask > 0).view(b, m, 1, 1)
    ).any(1)
    background = 0.9 * torch.rand(b, c, h * w, generator=generator, dtype=dtype)
    target = torch.where(centre, torch.ones_like(background), background).view(b, c, h, w)
    wh_target = 1 + 4 * torch.rand(b, m, 2, generator=generator, dtype=dtype)
    reg_target = torch.rand(b, m, 2, generator=generator, dtype=dtype)
    return heatmap, wh, reg, target, indices, mask, wh_target, reg_target


def _centernet_edges(dtype: torch.dtype):
    heatmap = torch.full((1, 2, 2, 3), -30.0, dtype=dtype)
    heatmap[0, 1, 0, 2] = 30.0
    target = torch.zeros(1, 2, 2, 3, dtype=dtype)
    target[0, 1, 0, 2] = 1.0
    target[0, 1, 0, 1] = 0.5
    wh = torch.ones(1, 2, 2, 3, dtype=dtype)
    reg = torch.full((1, 2, 2, 3), 0.5, dtype=dtype)
    indices = torch.tensor([[2, 0]])
    mask = torch.tensor([[1.0, 0.0]], dtype=dtype)
    wh_t = torch.tensor([[[1.0, 2.0], [0.0, 0.0]]], dtype=dtype)
    reg_t = torch.tensor([[[0.5, 0.25], [0.0, 0.0]]], dtype=dtype)
    return {
        "extreme_logits_right": (heatmap, wh, reg, target, indices, mask, wh_t, reg_t),
        "extreme_logits_wrong": (-heatmap, wh, reg, target, indices, mask, wh_t, reg_t),
        "no_objects": (heatmap, wh, reg, target * 0.5, indices, mask * 0, wh_t, reg_t),
        "saturated_target": (heatmap, wh, reg, torch.ones_like(target), indices, mask, wh_t, reg_t),
        "zero_object_slots": (heatmap, wh, reg, target) + _truncated((indices, mask, wh_t, reg_t), 0),
    }


register(
    Spec(
        name="centernet",
        build=CenterNetLoss,
        inputs=(
            TensorSpec(
                "heatmap", ("batch", "classes", "height", "width"), Real(scale=2.0), differentiable=True
            ),
            TensorSpec("wh", ("batch", 2, "height", "width"), Real(scale=2.0), differentiable=True),
            TensorSpec("reg", ("batch", 2, "height", "width"), Real(), differentiable=True),
            TensorSpec(
                "heatmap_target",
                ("batch", "classes", "height", "width"),
                Interval(0.0, 1.0, "Gaussian heatmap, 1 at object centres"),
            ),
            TensorSpec("indices", ("batch", "objects"), _FlatLocation()),
            TensorSpec("mask", ("batch", "objects"), Binary(p=0.7)),
            TensorSpec("wh_target", ("batch", "objects", 2), Interval(1.0, 5.0, "box size")),
            TensorSpec("reg_target", ("batch", "objects", 2), Interval(0.0, 1.0, "centre offset")),
        ),
        outputs=("hm_loss", "wh_loss", "reg_loss", "total_loss"),
        shapes=(
            {"batch": 3, "classes": 4, "height": 5, "width": 6, "objects": 7},
            {"batch": 1, "classes": 2, "height": 3, "width": 3, "objects": 2},
            {"batch": 3, "classes": 1, "height": 2, "width": 6, "objects": 1},
        ),
        source="loss-library catalog",
        summary="CenterNet: penalty-reduced focal on sigmoid heatmap (alpha 2, beta 4, / max(#centres,"
        " 1)) + masked L1 of wh and offsets gathered at object indices",
        sampler=_centernet_sampler,
        edge_cases=_centernet_edges,
        grad_output="total_loss",
    )
)
