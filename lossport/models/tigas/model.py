"""The TIGAS model: assembly of the branches, the two modes, the heads.

``TIGASModel(x)`` maps images ``[B, 3, H, W]`` (float, any ``H, W >= 32``) to
``(score [B, 1] in [0, 1], logits [B, 2] in [-10, 10])``; score 1 means natural/real,
logit class 1 is "real". The state_dict layout is upstream's, key for key, in both modes.

Input range (a static option, never decided from the data):
``"[0,1]"`` (upstream head): ``x -> clamp(2x - 1, -1, 1)``;
``"[-1,1]"`` (older upstream, data pre-normalised): ``x -> clamp(x, -1, 1)``.

Modes:
- ``"fast"``: perceptual descriptor ``p`` and a small auxiliary CNN ``a`` on the image,
  ``fused = fast_fusion(cat[p, a])``.
- ``"full"``: ``fused = self_attention(feature_fusion(p, xattn_s(s, p), xattn_t(t, p)))``
  with the spectral ``s`` and statistical ``t`` branch features as length-1 attention queries.
  A length-1 attention weight is exactly 1, so ``xattn(query, p)`` does not depend on the
  query (see :mod:`.fusion`): score and logits depend on ``p`` alone, exactly as upstream's
  do. ``forward`` therefore skips the two full-resolution branches, which upstream computes
  and then discards; :meth:`TIGASModel.features` still computes them.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn

from lossport.errors import ConfigError, InvalidInputError
from lossport.models.tigas.blocks import conv_bn_relu
from lossport.models.tigas.fusion import CrossAttention, FeatureFusion, SelfAttention
from lossport.models.tigas.perceptual import PerceptualExtractor
from lossport.models.tigas.spectral import SpectralAnalyzer
from lossport.models.tigas.statistical import StatisticalEstimator
from lossport.spec import checks
from lossport.spec.limits import MAX_IMAGE_SIDE

MODES = ("fast", "full")
INPUT_RANGES = ("[0,1]", "[-1,1]")
MIN_SIDE = 32
# Bounds on the sizes a config or a checkpoint's shapes may ask for (upstream's default model is
# base_channels 32, feature_dim 256, 8 heads): within them a model stays below about 1 GiB.
MAX_BASE_CHANNELS = 256
MAX_FEATURE_DIM = 4096
MAX_HEADS = 64
# Channels of the stage outputs, 2b + 4b + 8b + 16b, pooled and concatenated.
POOLED_PER_BASE = 30


def check_images(images: torch.Tensor, name: str = "images") -> None:
    """``images`` is a float tensor ``[B, 3, H, W]`` with ``H, W >= 32``."""
    checks.check_float(images, name)
    checks.check_rank(images, name, (4,), "[batch, 3, height, width]")
    checks.check_dim(images, name, 1, 3, "RGB channels")
    if min(images.shape[2], images.shape[3]) < MIN_SIDE:
        raise InvalidInputError(
            f"{name} must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got "
            f"{images.shape[2]}x{images.shape[3]}; resize or pad the image"
        )


def _mlp_block(in_features: int, out_features: int, dropout: float) -> Tuple[nn.Module, ...]:
    """``Linear -> LayerNorm -> ReLU -> Dropout`` (four state_dict indices)."""
    return (
        nn.Linear(in_features, out_features),
        nn.LayerNorm(out_features),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
    )


class TIGASModel(nn.Module):
    """TIGAS image-authenticity scorer (upstream ``TIGASModel``), see the module docstring.

    Args:
        mode: ``"fast"`` or ``"full"``.
        base_channels: ``b``, width of the stem; stages have ``2b .. 16b`` channels.
        feature_dim: ``D``, width of the fused descriptor; divisible by 4 and by the heads.
        num_attention_heads: heads of the full-mode attention blocks (no effect on the
            numbers, which use sequences of length 1; kept for upstream parity).
        dropout: dropout probability (active in train mode only).
        img_size: side the scorer resizes images to (the model itself takes any size).
        input_range: ``"[0,1]"`` or ``"[-1,1]"``, the range the input is expected in.
    """

    __constants__ = ["fast", "unit_input"]  # static for TorchScript: no data-dependent branch

    def __init__(
        self,
        mode: str = "fast",
        base_channels: int = 32,
        feature_dim: int = 256,
        num_attention_heads: int = 8,
        dropout: float = 0.1,
        img_size: int = 256,
        input_range: str = "[0,1]",
    ) -> None:
        super().__init__()
        checks.check_choice(mode, "mode", MODES)
        checks.check_choice(input_range, "input_range", INPUT_RANGES)
        if not 1 <= base_channels <= MAX_BASE_CHANNELS:
            raise ConfigError(f"base_channels must be from 1 to {MAX_BASE_CHANNELS}, got {base_channels}")
        if not 4 <= feature_dim <= MAX_FEATURE_DIM or feature_dim % 4:
            raise ConfigError(
                f"feature_dim must be a multiple of 4 from 4 to {MAX_FEATURE_DIM}, got {feature_dim}"
            )
        if not 1 <= num_attention_heads <= MAX_HEADS or feature_dim % num_attention_heads:
            raise ConfigError(
                f"num_attention_heads must divide feature_dim ({feature_dim}), got {num_attention_heads}"
            )
        if not MIN_SIDE <= img_size <= MAX_IMAGE_SIDE:
            raise ConfigError(f"img_size must be from {MIN_SIDE} to {MAX_IMAGE_SIDE}, got {img_size}")
        self.mode = mode
        self.fast = mode == "fast"
        self.unit_input = input_range == "[0,1]"
        self.config = {
            "mode": mode,
            "base_channels": base_channels,
            "feature_dim": feature_dim,
            "num_attention_heads": num_attention_heads,
            "dropout": dropout,
            "img_size": img_size,
            "input_range": input_range,
        }
        d = feature_dim

        self.perceptual_extractor = PerceptualExtractor(base_channels)
        self.perceptual_aggregator = nn.Sequential(*_mlp_block(POOLED_PER_BASE * base_channels, d, dropout))
        if self.fast:
            self.aux_branch = nn.Sequential(
                *conv_bn_relu(3, 32, stride=2),
                *conv_bn_relu(32, 64, stride=2),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(64, d // 2),
            )
            self.fast_fusion = nn.Sequential(*_mlp_block(d + d // 2, d, dropout))
        else:
            self.spectral_analyzer = SpectralAnalyzer(d, dropout)
            self.statistical_estimator = StatisticalEstimator(d, dropout)
            self.spectral_to_perceptual_attn = CrossAttention(d, num_attention_heads)
            self.stat_to_perceptual_attn = CrossAttention(d, num_attention_heads)
            self.self_attention = SelfAttention(d, num_attention_heads)
            self.feature_fusion = FeatureFusion(d, dropout)
        self.regression_head = nn.Sequential(
            *_mlp_block(d, d // 2, dropout),
            *_mlp_block(d // 2, d // 4, dropout),
            nn.Linear(d // 4, 1),
            nn.Sigmoid(),
        )
        self.binary_classifier = nn.Sequential(
            nn.Linear(d, d // 2), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(d // 2, 2)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Upstream's fresh-model init: conv kaiming-normal (fan_out, relu) with zero bias,
        norm layers weight 1 / bias 0, linear N(0, 0.02) with zero bias; Conv1d default."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Map the input range to ``[-1, 1]`` (see the module docstring)."""
        if self.unit_input:
            images = images * 2.0 - 1.0
        return torch.clamp(images, -1.0, 1.0)

    def fuse(self, x: torch.Tensor, perceptual: torch.Tensor) -> torch.Tensor:
        """Normalised images ``[B, 3, H, W]`` and their perceptual descriptor ``[B, D]`` ->
        the fused descriptor ``[B, D]``."""
        if self.fast:
            return self.fast_fusion(torch.cat([perceptual, self.aux_branch(x)], dim=1))
        fused = self.feature_fusion(
            perceptual, self.spectral_to_perceptual_attn(perceptual), self.stat_to_perceptual_attn(perceptual)
        )
        return self.self_attention(fused)

    def perceptual(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images -> perceptual descriptor ``[B, D]``."""
        return self.perceptual_aggregator(self.perceptual_extractor(x))

    def heads(self, fused: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        score = torch.clamp(self.regression_head(fused), 0.0, 1.0)
        logits = torch.clamp(self.binary_classifier(fused), -10.0, 10.0)
        return score, logits

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``images [B, 3, H, W]`` -> ``(score [B, 1], logits [B, 2])``."""
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            check_images(images)
        x = self.normalize(images)
        return self.heads(self.fuse(x, self.perceptual(x)))

    @torch.jit.unused
    def features(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Eager-only: every intermediate descriptor, as upstream's ``return_features``.

        Keys: ``perceptual`` ``[B, D]``; fast mode ``aux`` ``[B, D/2]``; full mode
        ``spectral`` and ``statistical`` ``[B, D]`` (computed here although they do not
        influence the outputs); then ``fused`` ``[B, D]``, ``score``, ``logits``.
        """
        check_images(images)
        x = self.normalize(images)
        out = {"perceptual": self.perceptual(x)}
        if self.fast:
            out["aux"] = self.aux_branch(x)
        else:
            out["spectral"] = self.spectral_analyzer(x)
            out["statistical"] = self.statistical_estimator(x)
        out["fused"] = self.fuse(x, out["perceptual"])
        out["score"], out["logits"] = self.heads(out["fused"])
        return out
