"""Perceptual branch of TIGAS: a four-stage multi-scale CNN and its pooled descriptor."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from lossport.models.tigas.blocks import CBAM, ConvBNReLU, GatedResidualBlock

# Blocks per stage (the strided conv counts as one); stage i has 2^i * base_channels channels.
STAGE_BLOCKS = (2, 3, 4, 3)


def _stage(in_channels: int, out_channels: int, blocks: int) -> nn.Sequential:
    """``[0]`` strided conv-BN-ReLU, ``blocks - 1`` gated residual blocks, CBAM last.

    Upstream stores a stage as an ``nn.ModuleList``; an ``nn.Sequential`` has the same
    state_dict keys (``stage1.0.0.weight``, ``stage1.1.conv1.weight``, ``stage1.2....``).
    """
    return nn.Sequential(
        ConvBNReLU(in_channels, out_channels, stride=2),
        *[GatedResidualBlock(out_channels) for _ in range(blocks - 1)],
        CBAM(out_channels),
    )


class PerceptualExtractor(nn.Module):
    """Multi-scale CNN, ``[B, 3, H, W] -> [B, 30b]`` (``b = base_channels``).

    ``stem`` conv-BN-ReLU ``3 -> b``; ``stage1..4`` give ``2b, 4b, 8b, 16b`` channels at
    ``H/2 .. H/16``; each stage's map is global-average-pooled and the four vectors are
    concatenated.
    """

    def __init__(self, base_channels: int) -> None:
        super().__init__()
        b = base_channels
        self.stem = ConvBNReLU(3, b)
        self.stage1 = _stage(b, 2 * b, STAGE_BLOCKS[0])
        self.stage2 = _stage(2 * b, 4 * b, STAGE_BLOCKS[1])
        self.stage3 = _stage(4 * b, 8 * b, STAGE_BLOCKS[2])
        self.stage4 = _stage(8 * b, 16 * b, STAGE_BLOCKS[3])

    def feature_maps(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The four stage outputs ``[B, 2^i b, ~H/2^i, ~W/2^i]``, ``i = 1..4``."""
        s1 = self.stage1(self.stem(x))
        s2 = self.stage2(s1)
        s3 = self.stage3(s2)
        s4 = self.stage4(s3)
        return s1, s2, s3, s4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1, s2, s3, s4 = self.feature_maps(x)
        return torch.cat(
            [s1.mean(dim=(2, 3)), s2.mean(dim=(2, 3)), s3.mean(dim=(2, 3)), s4.mean(dim=(2, 3))], dim=1
        )
