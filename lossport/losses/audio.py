"""Audio and signal losses: RMSE, SNR, SI-SDR, multi-resolution log-mel L1.

Waveforms are float tensors ``[B, T]`` (batch, samples); any leading shape ``[..., T]`` is
accepted where stated.
"""

from __future__ import annotations

import torch
from torch import nn

from lossport import checks
from lossport.domains import Real
from lossport.errors import ConfigError
from lossport.losses._reduce import safe_mean
from lossport.registry import Spec, TensorSpec, register

__all__ = ["RMSELoss", "rmse_loss"]


def rmse_loss(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Root mean squared error with a floor: ``sqrt(mean((p - t)^2) + eps)``.

    Shapes: ``prediction`` and ``target`` any equal shape (float). Returns a scalar.
    ``eps > 0`` keeps the gradient finite when ``p == t`` (where plain RMSE has an infinite
    derivative); the loss is then ``sqrt(eps)``, not 0. Empty input gives ``sqrt(eps)``.
    """
    return torch.sqrt(safe_mean((prediction - target).pow(2)) + eps)


class RMSELoss(nn.Module):
    """Module form of :func:`rmse_loss`."""

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        if eps <= 0:
            raise ConfigError(f"eps must be > 0, got {eps}")
        self.eps = eps

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            checks.check_float(prediction, "prediction")
            checks.check_same_shape(prediction, "prediction", target, "target")
        return rmse_loss(prediction, target, self.eps)


def _rmse_edges(dtype: torch.dtype):
    wave = torch.linspace(-1, 1, 16, dtype=dtype).reshape(2, 8)
    return {
        "identical": (wave.clone(), wave.clone()),
        "silent_target": (wave.clone(), torch.zeros_like(wave)),
        "batch_of_one": (wave[:1].clone(), wave[:1].flip(-1)),
    }


register(Spec(
    name="rmse",
    build=RMSELoss,
    inputs=(
        TensorSpec("prediction", ("batch", "time"), Real(), differentiable=True),
        TensorSpec("target", ("batch", "time"), Real()),
    ),
    outputs=("loss",),
    shapes=({"batch": 3, "time": 50}, {"batch": 5, "time": 17}, {"batch": 1, "time": 64}),
    seed="003",
    summary="sqrt(mean((p - t)^2) + eps) over all elements; eps keeps the gradient finite at p == t",
    peer="torchmetrics.functional.mean_squared_error(squared=False)",
    edge_cases=_rmse_edges,
))
