"""Spectral branch of full-mode TIGAS: 2-D real DFT, frequency grids, spectral statistics.

Everything is derived from the input's shape inside the graph (no cached grids, no Python
state), so one exported graph serves every ``H, W``:

- the real 2-D DFT (``torch.fft.rfft2`` semantics, unnormalised, ``[B, C, H, W//2 + 1]``) is
  two matrix products with cosine/sine bases. ONNX's DFT op does export, but its phases and
  the exporter's ``atan2`` disagree with PyTorch on exactly-real and zero coefficients, and
  complex tensors complicate gradient graphs; real matmuls behave the same everywhere.
- the radial grid reproduces ``torch.fft.fftfreq``/``rfftfreq`` bit for bit and upstream's
  float32 binning; the azimuthal grid reproduces upstream's float32
  ``atan2(fy, fx + 1e-8)`` binning through exact tangent thresholds (ONNX Runtime has no
  float64 Atan, and float32 atan rounds differently per runtime). The thresholds assume a
  correctly rounded float32 angle; PyTorch's vectorised float32 atan2 is one ulp off at a
  few grid points (one of the 33,024 at 256x256), where the bin can differ from upstream's.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lossport.models.tigas.blocks import conv_bn_relu
from lossport.models.tigas.numerics import atan2, clean, safe_sqrt

RADIAL_BINS = 32
AZIMUTHAL_BINS = 8
# A coefficient whose magnitude is below this fraction of sum(|x|) over its image plane is
# float32 round-off of an exact zero (constant or periodic images give <= 6e-8 up to 256x256);
# its phase is set to 0 (what PyTorch's FFT gives for an exact +0 coefficient) instead of
# noise that differs per runtime.
PHASE_FLOOR = 1e-6


def fft_frequencies(n: int, device: torch.device) -> torch.Tensor:
    """``torch.fft.fftfreq(n)`` bit for bit: ``[0, 1, ..., -(n//2), ..., -1] * float32(1/n)``."""
    k = torch.arange(n, device=device, dtype=torch.float32)
    k = torch.where(k < (n + 1) // 2, k, k - n)
    return k * (torch.ones((), device=device) / n)


def rfft_frequencies(n: int, device: torch.device) -> torch.Tensor:
    """``torch.fft.rfftfreq(n)`` bit for bit: ``[0, 1, ..., n//2] * float32(1/n)``."""
    k = torch.arange(n // 2 + 1, device=device, dtype=torch.float32)
    return k * (torch.ones((), device=device) / n)


def _azimuth_thresholds() -> Tuple[int, Tuple[float, ...]]:
    """Upstream's azimuthal bin is ``long((theta + pi) / (2 pi) * 8)`` in float32 with
    ``theta = atan2(fy, fx + 1e-8)`` in ``(-pi/2, pi/2)``. For each bin edge ``b`` find the
    smallest float32 ``theta`` that reaches it; a correctly rounded ``theta`` reaches it iff
    the exact angle is at least the midpoint below, i.e. iff ``fy >= (fx + 1e-8) * tan(mid)``.

    Returns ``(base, tangents)``: edges below ``-pi/2`` always count (``base``), edges
    above ``pi/2`` never do.
    """

    def reaches(theta: np.float32, edge: int) -> bool:
        t = torch.tensor([float(theta)], dtype=torch.float32)
        return bool(((t + math.pi) / (2 * math.pi) * AZIMUTHAL_BINS)[0] >= edge)

    base, tangents = 0, []
    for edge in range(1, AZIMUTHAL_BINS):
        exact = edge / AZIMUTHAL_BINS * 2 * math.pi - math.pi
        low, high = np.float32(exact - 1e-3), np.float32(exact + 1e-3)
        while np.nextafter(low, high) != high:  # bisection over float32 values
            mid = np.float32((float(low) + float(high)) / 2)
            if mid in (low, high):
                mid = np.nextafter(low, high)
            low, high = (low, mid) if reaches(mid, edge) else (mid, high)
        midpoint = (float(low) + float(high)) / 2
        if midpoint <= -math.pi / 2:
            base += 1
        elif midpoint < math.pi / 2:
            tangents.append(math.tan(midpoint))
    return base, tuple(tangents)


AZIMUTH_BASE, AZIMUTH_TANGENTS = _azimuth_thresholds()


def frequency_bins(
    height: int, width: int, device: torch.device, azimuth_base: int, azimuth_tangents: List[float]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Radial and azimuthal bin of every rfft2 coefficient, both int64 ``[H, W//2 + 1]``.

    ``r = sqrt(fx^2 + fy^2)``; radial bin ``long(r / (max(r) + 1e-8) * 31)`` in ``[0, 31]``;
    azimuthal bin ``long((atan2(fy, fx + 1e-8) + pi) / (2 pi) * 8)`` in ``[0, 7]`` (only 2..6
    occur), computed as explained in the module docstring: pass ``AZIMUTH_BASE`` and
    ``list(AZIMUTH_TANGENTS)`` (TorchScript cannot read module globals).
    """
    fy = fft_frequencies(height, device)[:, None]
    fx = rfft_frequencies(width, device)[None, :]
    radius = torch.sqrt(fx * fx + fy * fy)
    radial = (radius / (radius.max() + 1e-8) * 31).to(torch.int64)
    radial = radial.clamp(0, 31)
    tangents = torch.tensor(list(azimuth_tangents), dtype=torch.float64, device=device)
    above = fy.double()[..., None] >= (fx + 1e-8).double()[..., None] * tangents
    azimuthal = above.to(torch.int64).sum(-1) + azimuth_base
    return radial, azimuthal.clamp(0, 7)


def dft_basis(n: int, m: int, device: torch.device, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of ``2 pi (i j mod n) / n`` for ``i < n, j < m``, each ``[n, m]``.

    The angle index is reduced exactly in int64 and evaluated in float64 before the cast; the
    sine is exactly 0 where the angle is 0 or pi, so exactly-real coefficients (DC, Nyquist)
    get an imaginary part of exactly zero.
    """
    # a tensor modulus: the ONNX exporter cannot lower `tensor % symbolic_int`
    modulus = torch.full((), n, dtype=torch.int64, device=device)
    index = torch.remainder(
        torch.arange(n, device=device)[:, None] * torch.arange(m, device=device)[None, :], modulus
    )
    angle = index.to(torch.float64) * (2 * math.pi) / n
    sin = torch.where(torch.remainder(2 * index, modulus) == 0, torch.zeros_like(angle), torch.sin(angle))
    return torch.cos(angle).to(dtype), sin.to(dtype)


def real_dft2(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary part of ``torch.fft.rfft2(x)`` (unnormalised), each
    ``[..., H, W//2 + 1]``, as two matrix products.

    Rows: ``[a | b] = x @ [cos_W | sin_W]``, so the row transform is ``a - i b``. Columns:
    ``[cos_H; sin_H] @ [a | b]`` gives ``C a, C b, S a, S b``, and
    ``re = C a - S b``, ``im = -(C b + S a)``.
    """
    height, width = x.shape[-2], x.shape[-1]
    bins = width // 2 + 1
    cos_w, sin_w = dft_basis(width, bins, x.device, x.dtype)
    cos_h, sin_h = dft_basis(height, height, x.device, x.dtype)
    rows = torch.matmul(x, torch.cat([cos_w, sin_w], dim=1))
    both = torch.matmul(torch.cat([cos_h, sin_h], dim=0), rows)
    ca, cb = both[..., :height, :bins], both[..., :height, bins:]
    sa, sb = both[..., height:, :bins], both[..., height:, bins:]
    return ca - sb, -(cb + sa)


def one_hot(bins: torch.Tensor, count: int, dtype: torch.dtype) -> torch.Tensor:
    """``[N]`` bin indices -> ``[N, count]`` indicator matrix in ``dtype``."""
    return (bins[:, None] == torch.arange(count, device=bins.device)).to(dtype)


def _bin_mean(values: torch.Tensor, onehot: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per-bin mean ``[..., N] x [N, K] -> [..., K]``; an empty bin gives 0."""
    return torch.matmul(values, onehot) / counts.clamp(min=1)


class SpectralAnalyzer(nn.Module):
    """Frequency-domain descriptor ``[B, 3, H, W] -> [B, D]`` (``D = feature_dim``).

    1. ``F = rfft2(clamp(x, -10, 10))``; ``mag = clamp(|F|, 1e-8, 1e6)``;
       ``maglog = clamp(log1p(mag), -20, 20)``; ``phase = clamp(angle(F) / pi, -1, 1)``
       (0 where ``|F|`` is round-off, see ``PHASE_FLOOR``).
    2. radial spectrum ``[B, 3, 32]`` = per-radial-bin mean of ``mag``, clamped to
       ``[0, 1e6]``; azimuthal statistics ``[B, 48]`` = per angular bin and channel the mean
       and unbiased std of ``mag`` (0 for bins with fewer than two coefficients), ordered
       ``[mean_bin0 (3), std_bin0 (3), mean_bin1, ...]``.
    3. ``maglog`` and ``phase`` resized bilinearly to ``(H, W)``; ``mag_encoder`` (D/2
       channels) and ``phase_encoder`` (D/4) = two conv-BN-ReLU then global average pool;
       ``radial_analyzer`` (D/4) = two Conv1d(k3)-BN-ReLU then average pool.
    4. ``projection(clean(cat[mag D/2, phase D/4, radial D/4, azimuthal 48]))`` =
       Linear(D+48, 2D) -> LN -> ReLU -> Dropout -> Linear(2D, D), clamped to +-100.
    """

    __constants__ = ["radial_bins", "azimuthal_bins", "phase_floor", "azimuth_base"]

    def __init__(self, feature_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.radial_bins = RADIAL_BINS
        self.azimuthal_bins = AZIMUTHAL_BINS
        self.phase_floor = PHASE_FLOOR
        self.azimuth_base = AZIMUTH_BASE
        self.azimuth_tangents: List[float] = list(AZIMUTH_TANGENTS)
        half, quarter = feature_dim // 2, feature_dim // 4
        self.mag_encoder = nn.Sequential(
            *conv_bn_relu(3, half), *conv_bn_relu(half, half), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.phase_encoder = nn.Sequential(
            *conv_bn_relu(3, quarter), *conv_bn_relu(quarter, quarter), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.radial_analyzer = nn.Sequential(
            nn.Conv1d(3, quarter, 3, padding=1),
            nn.BatchNorm1d(quarter),
            nn.ReLU(inplace=True),
            nn.Conv1d(quarter, quarter, 3, padding=1),
            nn.BatchNorm1d(quarter),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )
        self.projection = nn.Sequential(
            nn.Linear(feature_dim + 2 * 3 * AZIMUTHAL_BINS, 2 * feature_dim),
            nn.LayerNorm(2 * feature_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(2 * feature_dim, feature_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        x = torch.clamp(x, -10.0, 10.0)
        re, im = real_dft2(x)
        modulus = safe_sqrt(re * re + im * im)
        mag = torch.clamp(modulus, 1e-8, 1e6)
        maglog = torch.clamp(torch.log1p(mag), -20.0, 20.0)
        floor = self.phase_floor * x.abs().sum(dim=(2, 3), keepdim=True)
        coherent = modulus > floor
        angle = atan2(
            torch.where(coherent, im, torch.zeros_like(im)), torch.where(coherent, re, torch.ones_like(re))
        )
        phase = torch.clamp(angle / math.pi, -1.0, 1.0)

        radial_bins, azimuthal_bins = frequency_bins(
            height, width, x.device, self.azimuth_base, self.azimuth_tangents
        )
        flat = mag.flatten(2)
        radial_onehot = one_hot(radial_bins.flatten(), self.radial_bins, flat.dtype)
        radial = _bin_mean(flat, radial_onehot, radial_onehot.sum(0))
        radial = torch.clamp(radial, 0.0, 1e6)
        azimuthal = self._azimuthal_stats(flat, azimuthal_bins.flatten())

        size = [height, width]
        maglog = F.interpolate(maglog, size=size, mode="bilinear", align_corners=False)
        phase = F.interpolate(phase, size=size, mode="bilinear", align_corners=False)
        features = torch.cat(
            [self.mag_encoder(maglog), self.phase_encoder(phase), self.radial_analyzer(radial), azimuthal],
            dim=1,
        )
        out = self.projection(clean(features, 1e4))
        return clean(torch.clamp(out, -100.0, 100.0), 100.0)

    def _azimuthal_stats(self, flat: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
        """``[B, 3, N]`` magnitudes, ``[N]`` bins -> ``[B, 48]`` (means and stds per bin)."""
        onehot = one_hot(bins, self.azimuthal_bins, flat.dtype)
        counts = onehot.sum(0)
        mean = _bin_mean(flat, onehot, counts)
        deviation = flat - torch.matmul(mean, onehot.t())
        variance = torch.matmul(deviation * deviation, onehot) / (counts - 1).clamp(min=1)
        stats = torch.stack([mean, safe_sqrt(variance)], dim=-1)  # [B, 3, 8, 2]
        return clean(stats.permute(0, 2, 3, 1).flatten(1), 1e4)
