"""Classification losses: cross-entropy, sigmoid focal, softmax focal, multi-token prediction.

Logits are float ``[N, C]`` or ``[N, C, d1, ...]`` (class dimension 1) unless stated;
class-index targets are int64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["sigmoid_focal_loss"]


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0) -> torch.Tensor:
    """Element-wise sigmoid focal loss (Lin et al., "Focal Loss for Dense Object Detection").

    ``FL = -alpha_t (1 - p_t)^gamma log(p_t)`` with ``p = sigmoid(logits)``,
    ``p_t = p t + (1 - p)(1 - t)``, ``alpha_t = alpha t + (1 - alpha)(1 - t)``; ``alpha < 0``
    disables the alpha weighting. ``targets`` are floats in [0, 1] of the logits' shape.
    The log term is computed as BCE-with-logits, so it is finite for any finite logit.
    Returns the unreduced loss, same shape as ``logits``.
    """
    probability = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = probability * targets + (1 - probability) * (1 - targets)
    loss = ce * (1 - p_t).pow(gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss
