"""Statistical branch of full-mode TIGAS: per-channel moments compared with prototypes."""

from __future__ import annotations

import torch
from torch import nn

from lossport.models.tigas.blocks import conv_bn_relu
from lossport.models.tigas.numerics import clean, lower_median, safe_sqrt


class StatisticalEstimator(nn.Module):
    """Feature statistics compared with "natural" prototypes, ``[B, 3, H, W] -> [B, D]``.

    1. ``feature_extractor``: two conv-BN-ReLU, ``3 -> D/2 -> D/2`` channels, full resolution.
    2. Per channel over the ``H*W`` positions: ``mean``, ``std = unbiased std + 1e-6``,
       ``max`` and ``clamp((mean - median) / std, -10, 10)`` with the lower median;
       concatenated to ``s`` ``[B, 2D]`` and cleaned (NaN -> 0, +-inf -> +-1e4).
    3. With the prototypes ``p`` (buffer ``natural_prototypes`` ``[2D]``) and the parameter
       ``prototype_scale`` ``[1]``: ``comparison_net(clean(cat[s, (s - p) * scale, s * p]))``
       = Linear(6D, D) -> LN -> ReLU -> Dropout -> Linear(D, D) -> LN -> ReLU ->
       Linear(D, D), clamped to +-100.

    ``prototypes_initialized`` and ``prototype_update_count`` are upstream's bookkeeping for a
    training-time EMA of the prototypes; they are kept for the state_dict and not used here.
    """

    def __init__(self, feature_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        half = feature_dim // 2
        self.prototype_scale = nn.Parameter(torch.ones(1))
        self.register_buffer("natural_prototypes", torch.zeros(2 * feature_dim))
        self.register_buffer("prototypes_initialized", torch.tensor(False))
        self.register_buffer("prototype_update_count", torch.tensor(0, dtype=torch.int64))
        self.feature_extractor = nn.Sequential(*conv_bn_relu(3, half), *conv_bn_relu(half, half))
        self.comparison_net = nn.Sequential(
            nn.Linear(6 * feature_dim, feature_dim),
            nn.LayerNorm(feature_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(feature_dim, feature_dim),
            nn.LayerNorm(feature_dim),
            nn.ReLU(inplace=True),
            nn.Linear(feature_dim, feature_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = self.feature_extractor(x).flatten(2)
        mean = flat.mean(dim=2)
        std = safe_sqrt(flat.var(dim=2, correction=1)) + 1e-6
        skew = torch.clamp((mean - lower_median(flat)) / std, -10.0, 10.0)
        stats = clean(torch.cat([mean, std, flat.amax(dim=2), skew], dim=1), 1e4)
        prototypes = self.natural_prototypes
        compared = torch.cat([stats, (stats - prototypes) * self.prototype_scale, stats * prototypes], dim=1)
        out = self.comparison_net(clean(compared, 1e4))
        return clean(torch.clamp(out, -100.0, 100.0), 100.0)
