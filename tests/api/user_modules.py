"""User-style modules for the any-module tests (ordinary PyTorch, nothing lossport-specific)."""

import torch
import torch.nn.functional as F
from torch import nn


class PerceptualLoss(nn.Module):
    """A conv feature distance: two inputs, one scalar."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.Tanh())

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.features(prediction), self.features(target))


class Classifier(nn.Module):
    """Float features and int64 labels in, a dict of outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor, labels: torch.Tensor):
        logits = self.linear(x)
        return {"loss": F.cross_entropy(logits, labels), "logits": logits}


class Unscriptable(nn.Module):
    """TorchScript cannot compile this forward (a **kwargs call), but it traces validly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        options = {"dim": -1}
        return torch.softmax(x, **options).pow(2).sum()


class ShapeBaked(nn.Module):
    """Neither scripts nor traces validly: the trace bakes in the example's batch size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        options = {"dim": 0}
        return x.reshape(int(x.shape[0]) * 0 + 2, -1).sum(**options)


def make_classifier() -> nn.Module:
    return Classifier()


class OptionalArgument(nn.Module):
    """Scripts, but its None default is typed as a Tensor: the scripted module cannot be saved."""

    def forward(self, x: torch.Tensor, mask=None):
        y = x * 2
        return y.sum(), y.mean(dim=1)
