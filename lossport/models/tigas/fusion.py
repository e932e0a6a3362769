"""Full-mode fusion of TIGAS: cross-attention, weighted stream fusion, self-attention.

Upstream attends over sequences of length 1 (one feature vector per image). A softmax over a
single key is exactly 1 (upstream clamps scores to +-1e4 and maps NaN weights to uniform,
which is also 1), so every attention here reduces to its value path:
``cross_attention(query, context) = out_proj(v_proj(context))`` and
``self_attention(x) = proj(v(x))``. The query, key and head split do not influence the
result; their weights stay in the state_dict. A consequence, faithful to upstream: the
cross-attention outputs, hence score and logits, do not depend on the branch feature used as
the query.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class CrossAttention(nn.Module):
    """Multi-head cross-attention of a length-1 query over a length-1 context, ``[B, D]``.

    Keys ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``: ``Linear(D, D)`` each.
    ``forward(context) = out_proj(v_proj(context))`` (see the module docstring).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.v_proj(context))


class SelfAttention(nn.Module):
    """Multi-head self-attention over a length-1 sequence, ``[B, D] -> [B, D]``.

    ``qkv`` is ``Linear(D, 3D)`` laid out as ``(3, heads, head_dim)``, so the value
    projection is rows ``2D:3D``; ``forward(x) = proj(x @ W_v^T + b_v)``.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.dim = dim
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = F.linear(x, self.qkv.weight[2 * self.dim :], self.qkv.bias[2 * self.dim :])
        return self.proj(value)


class FeatureFusion(nn.Module):
    """Weighted fusion of three ``[B, D]`` streams (perceptual, spectral, statistical).

    ``post_fusion(sum_i softmax(fusion_weights)_i * transforms[i](stream_i))`` with
    ``transforms[i]`` = Linear(D, D) -> LN -> ReLU and ``post_fusion`` = Linear(D, D) -> LN ->
    ReLU -> Dropout.
    """

    def __init__(self, dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.fusion_weights = nn.Parameter(torch.ones(3) / 3)
        self.transforms = nn.ModuleList(
            [nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim), nn.ReLU(inplace=True)) for _ in range(3)]
        )
        self.post_fusion = nn.Sequential(
            nn.Linear(dim, dim), nn.LayerNorm(dim), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )

    def forward(
        self, perceptual: torch.Tensor, spectral: torch.Tensor, statistical: torch.Tensor
    ) -> torch.Tensor:
        weights = torch.softmax(self.fusion_weights, dim=0)
        fused = (
            weights[0] * self.transforms[0](perceptual)
            + weights[1] * self.transforms[1](spectral)
            + weights[2] * self.transforms[2](statistical)
        )
        return self.post_fusion(fused)
