"""Convolutional building blocks of TIGAS: conv-BN-ReLU units, the gated residual block, CBAM.

All tensors are ``[B, C, H, W]`` (NCHW, any memory format). Every convolution has a bias,
every BatchNorm uses PyTorch's defaults (eps 1e-5). Module attribute names and
``nn.Sequential`` indices reproduce upstream's state_dict keys exactly; the key each block
produces is given in its docstring.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn
from torch.nn import functional as F


class FoldableBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters, buffers and keys) that can run fused with the 3x3
    convolution before it."""

    def after_conv3x3(
        self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: int
    ) -> torch.Tensor:
        """``self(conv2d(x, weight, bias, stride, padding=1))``.

        In eval mode this is one convolution with the normalisation folded in,
        ``w' = w * s``, ``b' = beta - running_mean * s + b * s`` with
        ``s = gamma / sqrt(running_var + eps)``: the same numbers up to float round-off,
        without a separate pass over the activations. Train mode normalises with batch
        statistics as usual.
        """
        if self.training:
            return self(F.conv2d(x, weight, bias, stride, 1))
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        if bias is not None:
            shift = shift + bias * scale
        return F.conv2d(x, weight * scale[:, None, None, None], shift, stride, 1)


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> List[nn.Module]:
    """``Conv3x3(stride, pad 1) -> BatchNorm2d -> ReLU`` as three modules (keys ``i``, ``i+1``).

    Returned as a list so that callers can splice it into a flat ``nn.Sequential`` whose
    indices must match upstream's (``aux_branch.0/1/2/3/4/5``, ``mag_encoder.0/1/...``).
    Output ``[B, out, ceil(H / stride), ceil(W / stride)]``.
    """
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
        FoldableBatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class ConvBNReLU(nn.Sequential):
    """:func:`conv_bn_relu` as one module (keys ``0.*`` conv, ``1.*`` BN), BN folded in eval."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(*conv_bn_relu(in_channels, out_channels, stride))
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self[0]
        return torch.relu_(self[1].after_conv3x3(x, conv.weight, conv.bias, self.stride))


class GatedResidualBlock(nn.Module):
    """Residual block with a squeeze-style channel gate; ``[B, C, H, W] -> [B, C, H, W]``.

    ``u = relu(bn1(conv1(x)))``; ``v = bn2(conv2(u))``; ``v = v * sigmoid(gate(v))`` with
    ``gate = avgpool(1) -> Conv1x1(C, C)`` (keys ``gate.1.*``); output ``relu(v + x)``.
    Convolutions are 3x3, pad 1, with bias; BN is folded into them in eval mode.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = FoldableBatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = FoldableBatchNorm2d(channels)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu_(self.bn1.after_conv3x3(x, self.conv1.weight, self.conv1.bias, 1))
        out = self.bn2.after_conv3x3(out, self.conv2.weight, self.conv2.bias, 1)
        return torch.relu_(torch.addcmul(x, out, self.gate(out)))


def cbam_hidden(channels: int) -> int:
    """Hidden width of CBAM's MLP and spatial convs: ``C // 16`` (at least 1)."""
    return max(channels // 16, 1)


class ChannelAttention(nn.Module):
    """``x * sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))`` with a shared bias-free MLP
    ``fc = Linear(C, C/16) -> ReLU -> Linear(C/16, C)`` (keys ``fc.0``, ``fc.2``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = cbam_hidden(channels)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(x.mean(dim=(2, 3))) + self.fc(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(logits)[:, :, None, None]


class SpatialAttention(nn.Module):
    """``x * sigmoid(conv3(relu(conv2(relu(conv1(x))))))``: a one-channel ``[B, 1, H, W]`` map.

    ``conv1`` 1x1 ``C -> C/16``, ``conv2`` 3x3 pad 1 ``C/16 -> C/16``, ``conv3`` 1x1 ``-> 1``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = cbam_hidden(channels)
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.conv3 = nn.Conv2d(hidden, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return x * torch.sigmoid(self.conv3(attention))


class CBAM(nn.Module):
    """Convolutional block attention (reduction 16): channel attention, then spatial."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channel_attn = ChannelAttention(channels)
        self.spatial_attn = SpatialAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial_attn(self.channel_attn(x))
