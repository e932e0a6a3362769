"""Ordinary PyTorch modules, as a user would write them: the README's `validate module` /
`export module` example runs on these."""

import torch
import torch.nn.functional as F
from torch import nn


class PerceptualLoss(nn.Module):
    """Mean squared distance of small conv features: ``prediction``, ``target`` [B, 3, H, W]."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.GELU(), nn.Conv2d(channels, channels, 3, padding=1)
        )

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.features(prediction), self.features(target))
