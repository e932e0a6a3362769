"""A tiny convolutional scorer registered as a test-only model spec: parameters, batch norm,
strided convolution, pooling and interpolation, so gradient graphs and weight tampering can
be tested without the TIGAS model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lossport.spec import Spec, TensorSpec
from lossport.spec.domains import Interval


class TinyScorer(nn.Module):
    def __init__(self, channels: int = 4, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, channels, 3, stride=2, padding=1)
        self.norm = nn.BatchNorm2d(channels)
        self.head = nn.Linear(channels, 1)
        with torch.no_grad():
            self.norm.running_mean.uniform_(-0.1, 0.1)
            self.norm.running_var.uniform_(0.5, 1.5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm(self.conv(images)))
        x = F.interpolate(x, size=(images.shape[2], images.shape[3]), mode="bilinear", align_corners=False)
        return torch.sigmoid(self.head(x.mean(dim=(2, 3))))


def one_minus_mean(score: torch.Tensor) -> torch.Tensor:
    return 1.0 - score.mean()


TINY = Spec(
    name="tiny_scorer",
    build=TinyScorer,
    kind="model",
    inputs=(TensorSpec("images", ("batch", 3, "height", "width"), Interval(0, 1), differentiable=True),),
    outputs=("score",),
    shapes=({"batch": 2, "height": 16, "width": 16}, {"batch": 3, "height": 20, "width": 13}),
    source="test",
    summary="test-only tiny scorer",
    objective=one_minus_mean,
)
