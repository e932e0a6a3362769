"""TIGAS as a generator loss: ``1 - mean(score)`` of generated images (seed 001)."""

from __future__ import annotations

import torch
from torch import nn

from lossport.models.tigas.model import TIGASModel


class TIGASGeneratorLoss(nn.Module):
    """``loss(images) = 1 - mean(TIGAS score)``, differentiable w.r.t. ``images``.

    ``images``: ``[B, 3, H, W]`` generated images in the model's input range (``[0, 1]`` for
    the default ``input_range``), ``H, W >= 32``. Returns a scalar in ``[0, 1]``; minimising it
    pushes the generator towards images TIGAS scores as real. The wrapped model is frozen
    (no parameter gradients) and stays in eval mode even when the loss module is put in
    train mode with its parent.
    """

    def __init__(self, model: TIGASModel) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "TIGASGeneratorLoss":
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        score, _ = self.model(images)
        return 1.0 - score.mean()
