"""FCOS loss (Tian et al., ICCV 2019): sigmoid focal classification, GIoU regression, centerness.

Works on locations flattened over the pyramid levels, ``[B, L, ...]`` with ``L`` the locations
of all levels in row-major ``(h, w)`` order, level after level (:func:`flatten_levels`);
:class:`FCOSLoss` also takes per-level lists of maps ``[B, K, H, W]`` / ``[B, H, W]``. Boxes
are regressed as distances ``(l, t, r, b)`` from the location to the box sides
(:func:`ltrb_to_boxes`). Class targets are int64, -1 (any negative) for background; each term
is divided by ``max(#positives, 1)``, as torchvision's FCOS. Returns a dict ``cls_loss``,
``reg_loss``, ``centerness_loss``, ``total_loss`` (components already weighted, their sum
last). Spec ``fcos``.
"""

from __future__ import annotations

from typing import Dict, List, Union

import torch
from torch import nn

from lossport.errors import ConfigError, InvalidInputError
from lossport.losses._reduce import masked_mean
from lossport.losses.classification import binary_cross_entropy_with_logits
from lossport.losses.detection.common import (
    _check_dense_targets,
    _check_focal,
    _check_options,
    _dense_terms,
    _truncated,
)
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import ClassIndex, Interval, Real


def flatten_levels(levels: List[torch.Tensor]) -> torch.Tensor:
    """Concatenate per-level maps into one tensor of locations.

    Each level ``[B, K, H, W]`` becomes ``[B, H*W, K]`` and each ``[B, H, W]`` becomes
    ``[B, H*W]`` (locations in row-major ``(h, w)`` order); levels are concatenated along the
    location dimension in list order, giving ``[B, L, K]`` or ``[B, L]``.
    """
    rows = [level.flatten(2).transpose(1, 2) if level.dim() == 4 else level.flatten(1) for level in levels]
    return torch.cat(rows, dim=1)


def ltrb_to_boxes(distances: torch.Tensor) -> torch.Tensor:
    """FCOS distances ``(l, t, r, b) [..., 4]`` as xyxy boxes ``(-l, -t, r, b)`` around the
    location (the location is the origin; IoU-family losses do not depend on it)."""
    return torch.cat([-distances[..., :2], distances[..., 2:]], dim=-1)


def fcos_loss(
    cls_preds: torch.Tensor,
    reg_preds: torch.Tensor,
    centerness_preds: torch.Tensor,
    cls_targets: torch.Tensor,
    reg_targets: torch.Tensor,
    centerness_targets: torch.Tensor,
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
    cls_weight: float = 1.0,
    reg_weight: float = 1.0,
    centerness_weight: float = 1.0,
) -> Dict[str, torch.Tensor]:
    """FCOS loss (Tian et al., ICCV 2019) on locations flattened over the levels.

    Shapes (``L`` locations of all levels, see :func:`flatten_levels`): ``cls_preds`` float
    ``[B, L, C]`` logits; ``reg_preds`` float ``[B, L, 4]`` predicted distances ``(l, t, r, b)``
    from the location to the box sides (>= 0, e.g. after ``exp`` or ReLU in the head);
    ``centerness_preds`` float ``[B, L]`` logits; ``cls_targets`` int64 ``[B, L]``, class in
    ``[0, C)`` or -1 (any negative) for background; ``reg_targets`` float ``[B, L, 4]``
    target distances; ``centerness_targets`` float ``[B, L]`` in [0, 1]. The regression and
    centerness targets of background locations are not used (any finite values).

    With ``num_pos = max(#{cls_targets >= 0}, 1)``:

    - ``cls_loss = cls_weight * sum(focal) / num_pos``, sigmoid focal (``focal_alpha``,
      ``focal_gamma``) over *all* locations and classes, background rows all-negative;
    - ``reg_loss = reg_weight * sum_pos(1 - GIoU) / num_pos``, distances turned into boxes
      around the location (:func:`ltrb_to_boxes`);
    - ``centerness_loss = centerness_weight * sum_pos(BCE_with_logits) / num_pos``;
    - ``total_loss`` = the sum of the three.

    This is torchvision's FCOS normalisation (the paper weights GIoU by the centerness target;
    we do not). Seed 004's code differs and we do not follow it: its focal term drops the
    background locations entirely and averages per level, it uses ``-log(IoU)`` instead of
    GIoU, and divides the per-level centerness *mean* by ``num_pos`` again. With no positive
    location ``reg_loss`` and ``centerness_loss`` are 0 and ``cls_loss`` is the plain focal sum.
    """
    positive = cls_targets >= 0
    cls, reg = _dense_terms(
        cls_preds,
        cls_targets,
        ltrb_to_boxes(reg_preds),
        ltrb_to_boxes(reg_targets),
        focal_alpha,
        focal_gamma,
        "giou",
    )
    bce = binary_cross_entropy_with_logits(centerness_preds, centerness_targets)
    cls = cls_weight * cls
    reg = reg_weight * reg
    centerness = centerness_weight * masked_mean(bce, positive)
    return {
        "cls_loss": cls,
        "reg_loss": reg,
        "centerness_loss": centerness,
        "total_loss": cls + reg + centerness,
    }


def _fcos_rows(value: Union[torch.Tensor, List[torch.Tensor]], squeeze: bool) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    rows = flatten_levels(value)
    return rows.squeeze(-1) if squeeze else rows


class FCOSLoss(nn.Module):
    """Module form of :func:`fcos_loss`.

    ``forward(cls_preds, reg_preds, centerness_preds, cls_targets, reg_targets,
    centerness_targets)`` takes, for each argument, either the flattened tensor of
    :func:`fcos_loss` or a list with one map per pyramid level, flattened with
    :func:`flatten_levels`: ``cls_preds [B, C, H, W]``, ``reg_preds [B, 4, H, W]``,
    ``centerness_preds [B, 1, H, W]``, ``cls_targets [B, H, W]``, ``reg_targets [B, 4, H, W]``,
    ``centerness_targets [B, H, W]``. Both forms give the same numbers.
    """

    def __init__(
        self,
        num_classes: int,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        cls_weight: float = 1.0,
        reg_weight: float = 1.0,
        centerness_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
        _check_focal(focal_alpha, focal_gamma, "focal_")
        _check_options(cls_weight=cls_weight, reg_weight=reg_weight, centerness_weight=centerness_weight)
        self.num_classes = num_classes
        self.focal_alpha = float(focal_alpha)
        self.focal_gamma = float(focal_gamma)
        self.cls_weight = float(cls_weight)
        self.reg_weight = float(reg_weight)
        self.centerness_weight = float(centerness_weight)

    def forward(
        self,
        cls_preds: Union[torch.Tensor, List[torch.Tensor]],
        reg_preds: Union[torch.Tensor, List[torch.Tensor]],
        centerness_preds: Union[torch.Tensor, List[torch.Tensor]],
        cls_targets: Union[torch.Tensor, List[torch.Tensor]],
        reg_targets: Union[torch.Tensor, List[torch.Tensor]],
        centerness_targets: Union[torch.Tensor, List[torch.Tensor]],
    ) -> Dict[str, torch.Tensor]:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check_levels(
                cls_preds, reg_preds, centerness_preds, cls_targets, reg_targets, centerness_targets
            )
        cls = _fcos_rows(cls_preds, False)
        reg = _fcos_rows(reg_preds, False)
        centerness = _fcos_rows(centerness_preds, True)
        cls_t = _fcos_rows(cls_targets, False)
        reg_t = _fcos_rows(reg_targets, False)
        centerness_t = _fcos_rows(centerness_targets, False)
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(cls, reg, centerness, cls_t, reg_t, centerness_t)
        return fcos_loss(
            cls,
            reg,
            centerness,
            cls_t,
            reg_t,
            centerness_t,
            self.focal_alpha,
            self.focal_gamma,
            self.cls_weight,
            self.reg_weight,
            self.centerness_weight,
        )

    @torch.jit.unused
    def _check_levels(
        self,
        cls_preds: Union[torch.Tensor, List[torch.Tensor]],
        reg_preds: Union[torch.Tensor, List[torch.Tensor]],
        centerness_preds: Union[torch.Tensor, List[torch.Tensor]],
        cls_targets: Union[torch.Tensor, List[torch.Tensor]],
        reg_targets: Union[torch.Tensor, List[torch.Tensor]],
        centerness_targets: Union[torch.Tensor, List[torch.Tensor]],
    ) -> None:
        arguments = {
            "cls_preds": (cls_preds, "[B, C, H, W]"),
            "reg_preds": (reg_preds, "[B, 4, H, W]"),
            "centerness_preds": (centerness_preds, "[B, 1, H, W]"),
            "cls_targets": (cls_targets, "[B, H, W]"),
            "reg_targets": (reg_targets, "[B, 4, H, W]"),
            "centerness_targets": (centerness_targets, "[B, H, W]"),
        }
        lists = {name: value for name, value in arguments.items() if not isinstance(value[0], torch.Tensor)}
        if len({len(levels) for levels, _ in lists.values()}) > 1:
            counts = ", ".join(f"{name}: {len(levels)}" for name, (levels, _) in lists.items())
            raise InvalidInputError(f"per-level lists must all have the same number of levels, got {counts}")
        for name, (levels, layout) in lists.items():
            if not isinstance(levels, (list, tuple)) or len(levels) == 0:
                raise InvalidInputError(
                    f"{name} must be a tensor or a non-empty list of per-level tensors {layout}"
                )
            rank = layout.count(",") + 1
            for k, level in enumerate(levels):
                checks.check_rank(level, f"{name}[{k}]", [rank], layout)
                if name == "centerness_preds":
                    checks.check_dim(level, f"{name}[{k}]", 1, 1, "one centerness channel")

    @torch.jit.unused
    def _check(
        self,
        cls: torch.Tensor,
        reg: torch.Tensor,
        centerness: torch.Tensor,
        cls_t: torch.Tensor,
        reg_t: torch.Tensor,
        centerness_t: torch.Tensor,
    ) -> None:
        checks.check_float(cls, "cls_preds")
        checks.check_rank(cls, "cls_preds", [3], "[B, L, C] (or per-level [B, C, H, W])")
        checks.check_dim(cls, "cls_preds", 2, self.num_classes, f"num_classes = {self.num_classes}")
        batch, locations = cls.shape[0], cls.shape[1]
        for value, name, shape in (
            (reg, "reg_preds", [batch, locations, 4]),
            (centerness, "centerness_preds", [batch, locations]),
            (reg_t, "reg_targets", [batch, locations, 4]),
            (centerness_t, "centerness_targets", [batch, locations]),
        ):
            checks.check_float(value, name)
            checks.check_shape(value, name, shape, f"{shape} (locations of cls_preds {list(cls.shape)})")
        _check_dense_targets(cls, "cls_preds", cls_t, self.num_classes)
        positive_t = torch.where(cls_t >= 0, centerness_t, torch.zeros_like(centerness_t))
        checks.check_range(
            positive_t, "centerness_targets", 0.0, 1.0, "centerness targets (at positive locations)"
        )


# -- spec ------------------------------------------------------------------------------------


def _fcos_edges(dtype: torch.dtype):
    def f(rows):
        return torch.tensor(rows, dtype=dtype)

    cls = f([[[30.0, -30.0, -30.0], [-30.0, 30.0, -30.0], [-30.0, -30.0, -30.0]]])
    reg = f([[[1.0, 2.0, 3.0, 1.0], [0.5, 0.5, 0.5, 0.5], [2.0, 2.0, 2.0, 2.0]]])
    centerness = f([[30.0, -30.0, 0.0]])
    centerness_t = f([[1.0, 0.0, 0.5]])
    labels = torch.tensor([[0, 2, -1]])
    background = torch.full((1, 3), -1)
    return {
        "extreme_logits": (cls, reg, centerness, labels, reg.clone(), centerness_t),
        "extreme_logits_wrong": (-cls, reg, -centerness, labels, reg + 1.0, centerness_t),
        "no_positives": (cls, reg, centerness, background, reg.clone(), centerness_t),
        "all_positive": (cls, reg, centerness, torch.tensor([[1, 1, 0]]), reg * 2.0, centerness_t),
        "zero_size_pred": (cls, torch.zeros_like(reg), centerness, labels, reg.clone(), centerness_t),
        "batch_of_one": _truncated((cls, reg, centerness, labels, reg + 0.5, centerness_t), 1),
        "no_locations": _truncated((cls, reg, centerness, labels, reg, centerness_t), 0),
    }


register(
    Spec(
        name="fcos",
        build=FCOSLoss,
        inputs=(
            TensorSpec(
                "cls_preds", ("batch", "locations", "num_classes"), Real(scale=2.0), differentiable=True
            ),
            TensorSpec(
                "reg_preds", ("batch", "locations", 4), Interval(0.5, 8.0, "distance"), differentiable=True
            ),
            TensorSpec("centerness_preds", ("batch", "locations"), Real(scale=2.0), differentiable=True),
            TensorSpec(
                "cls_targets",
                ("batch", "locations"),
                ClassIndex("num_classes", ignore_index=-1, ignore_fraction=0.5),
            ),
            TensorSpec("reg_targets", ("batch", "locations", 4), Interval(0.5, 8.0, "distance")),
            TensorSpec("centerness_targets", ("batch", "locations"), Interval(0.0, 1.0, "centerness")),
        ),
        outputs=("cls_loss", "reg_loss", "centerness_loss", "total_loss"),
        shapes=({"batch": 2, "locations": 6}, {"batch": 1, "locations": 9}, {"batch": 3, "locations": 1}),
        source="AutoTimm loss guide",
        summary="FCOS on locations flattened over levels (or per-level lists): focal over all / "
        "num_pos, GIoU of LTRB boxes on positives / num_pos, centerness BCE on positives / "
        "num_pos; -1 = background",
        config={"num_classes": 3},
        edge_cases=_fcos_edges,
        grad_output="total_loss",
    )
)
