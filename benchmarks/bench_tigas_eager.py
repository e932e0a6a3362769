"""Eager CPU throughput of lossport's TIGAS model against a straightforward implementation.

    python benchmarks/bench_tigas_eager.py                  # batch 8, 256x256, 2 threads
    python benchmarks/bench_tigas_eager.py --modes fast --repeats 5 --channels-last

``NaiveTIGAS`` below is a plain re-statement of the architecture as TIGAS.md describes it,
written the way upstream is: unfused conv/BN/ReLU, real length-1 attention (projections,
softmax, NaN check), and in full mode the spectral branch with ``torch.fft.rfft2``,
``torch.angle``, ``fftfreq`` grids and per-bin masks, and the statistical branch with
``torch.median``. It has upstream's module names, so both models load one state_dict (random
weights with randomised normalisation statistics, so that every parameter matters) and the
script asserts that they give the same score and logits before timing anything.

Both run under ``torch.inference_mode()``, alternately, batch after batch; the median time of
each is reported. What lossport's model does differently:

- full mode: the spectral and statistical branches are not computed in ``forward``. Their
  features only enter length-1 attentions as queries, whose softmax weight is exactly 1, so
  they cannot change the outputs (upstream computes and discards them). ``--with-branches``
  also times ``TIGASModel.features``, which computes them (real-DFT matmuls, ``kthvalue``
  median), to show the gain apart from this skip;
- eval-mode BatchNorm folded into the preceding 3x3 convolution (stem, stage entries,
  residual blocks): one pass less over each activation;
- residual tail ``relu(x + v * gate)`` as one ``addcmul`` plus an in-place ReLU; in-place
  ReLUs elsewhere;
- channels-last memory format: not used; on a 2-core AVX2 CPU it measured within the noise
  of NCHW (from 12% slower to 5% faster across runs), ``--channels-last`` times it.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from typing import Dict, List, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from lossport.models.tigas import TIGASModel

STAGE_BLOCKS = (2, 3, 4, 3)


# -- the straightforward implementation ----------------------------------------------------


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> List[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU()]


class NaiveGatedBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1), nn.Sigmoid())

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out * self.gate(out)
        return F.relu(out + x)


class NaiveChannelAttention(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        h = max(c // 16, 1)
        self.fc = nn.Sequential(nn.Linear(c, h, bias=False), nn.ReLU(), nn.Linear(h, c, bias=False))

    def forward(self, x):
        avg = F.adaptive_avg_pool2d(x, 1).flatten(1)
        mx = F.adaptive_max_pool2d(x, 1).flatten(1)
        return x * torch.sigmoid(self.fc(avg) + self.fc(mx)).unsqueeze(-1).unsqueeze(-1)


class NaiveSpatialAttention(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        h = max(c // 16, 1)
        self.conv1, self.conv2, self.conv3 = nn.Conv2d(c, h, 1), nn.Conv2d(h, h, 3, 1, 1), nn.Conv2d(h, 1, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv3(F.relu(self.conv2(F.relu(self.conv1(x))))))


class NaiveCBAM(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.channel_attn = NaiveChannelAttention(c)
        self.spatial_attn = NaiveSpatialAttention(c)

    def forward(self, x):
        return self.spatial_attn(self.channel_attn(x))


class NaiveExtractor(nn.Module):
    def __init__(self, b: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn_relu(3, b))
        channels = b
        for i, blocks in enumerate(STAGE_BLOCKS, start=1):
            out = channels * 2
            layers = [nn.Sequential(*_conv_bn_relu(channels, out, 2))]
            layers += [NaiveGatedBlock(out) for _ in range(blocks - 1)] + [NaiveCBAM(out)]
            setattr(self, f"stage{i}", nn.ModuleList(layers))
            channels = out

    def forward(self, x):
        x = self.stem(x)
        pooled = []
        for stage in (self.stage1, self.stage2, self.stage3, self.stage4):
            for layer in stage:
                x = layer(x)
            pooled.append(F.adaptive_avg_pool2d(x, 1).flatten(1))
        return torch.cat(pooled, 1)


class NaiveSpectral(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.mag_encoder = nn.Sequential(*_conv_bn_relu(3, d // 2), *_conv_bn_relu(d // 2, d // 2))
        self.phase_encoder = nn.Sequential(*_conv_bn_relu(3, d // 4), *_conv_bn_relu(d // 4, d // 4))
        q = d // 4
        self.radial_analyzer = nn.Sequential(
            nn.Conv1d(3, q, 3, 1, 1),
            nn.BatchNorm1d(q),
            nn.ReLU(),
            nn.Conv1d(q, q, 3, 1, 1),
            nn.BatchNorm1d(q),
            nn.ReLU(),
        )
        self.projection = nn.Sequential(
            nn.Linear(d + 48, 2 * d), nn.LayerNorm(2 * d), nn.ReLU(), nn.Dropout(0.1), nn.Linear(2 * d, d)
        )

    def forward(self, x):
        b, _, h, w = x.shape
        spectrum = torch.fft.rfft2(torch.clamp(x, -10, 10).float())
        mag = torch.clamp(spectrum.abs(), 1e-8, 1e6)
        maglog = torch.clamp(torch.log1p(mag), -20, 20)
        phase = torch.clamp(torch.angle(spectrum) / math.pi, -1, 1)
        fy, fx = torch.meshgrid(torch.fft.fftfreq(h), torch.fft.rfftfreq(w), indexing="ij")
        r = torch.sqrt(fx**2 + fy**2)
        radial_bin = (r / (r.max() + 1e-8) * 31).long().clamp(0, 31)
        angle_bin = ((torch.atan2(fy, fx + 1e-8) + math.pi) / (2 * math.pi) * 8).long().clamp(0, 7)
        radial = torch.zeros(b, 3, 32)
        for k in range(32):
            mask = radial_bin == k
            if mask.sum() > 0:
                radial[:, :, k] = mag[:, :, mask].mean(-1)
        radial = torch.clamp(radial, 0, 1e6)
        stats = []
        for k in range(8):
            mask = angle_bin == k
            if mask.sum() > 0:
                values = mag[:, :, mask]
                stats += [values.mean(-1), values.std(-1)]
            else:
                stats += [torch.zeros(b, 3), torch.zeros(b, 3)]
        azimuthal = torch.nan_to_num(torch.cat(stats, 1), nan=0.0, posinf=1e4, neginf=-1e4)
        maglog = F.interpolate(maglog, size=(h, w), mode="bilinear", align_corners=False)
        phase = F.interpolate(phase, size=(h, w), mode="bilinear", align_corners=False)
        features = torch.cat(
            [
                F.adaptive_avg_pool2d(self.mag_encoder(maglog), 1).flatten(1),
                F.adaptive_avg_pool2d(self.phase_encoder(phase), 1).flatten(1),
                self.radial_analyzer(radial).mean(-1),
                azimuthal,
            ],
            1,
        )
        features = torch.nan_to_num(features, nan=0.0, posinf=1e4, neginf=-1e4)
        out = torch.clamp(self.projection(features), -100, 100)
        return torch.nan_to_num(out, nan=0.0, posinf=100.0, neginf=-100.0)


class NaiveStatistical(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.prototype_scale = nn.Parameter(torch.ones(1))
        self.register_buffer("natural_prototypes", torch.zeros(2 * d))
        self.register_buffer("prototypes_initialized", torch.tensor(False))
        self.register_buffer("prototype_update_count", torch.tensor(0))
        self.feature_extractor = nn.Sequential(*_conv_bn_relu(3, d // 2), *_conv_bn_relu(d // 2, d // 2))
        self.comparison_net = nn.Sequential(
            nn.Linear(6 * d, d),
            nn.LayerNorm(d),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(d, d),
            nn.LayerNorm(d),
            nn.ReLU(),
            nn.Linear(d, d),
        )

    def forward(self, x):
        flat = self.feature_extractor(x).flatten(2)
        mean = flat.mean(-1)
        std = flat.std(-1) + 1e-6
        median = torch.median(flat, dim=-1).values
        skew = torch.clamp((mean - median) / std, -10, 10)
        stats = torch.nan_to_num(
            torch.cat([mean, std, flat.amax(-1), skew], 1), nan=0.0, posinf=1e4, neginf=-1e4
        )
        p = self.natural_prototypes
        compared = torch.cat([stats, (stats - p) * self.prototype_scale, stats * p], 1)
        compared = torch.nan_to_num(compared, nan=0.0, posinf=1e4, neginf=-1e4)
        out = torch.clamp(self.comparison_net(compared), -100, 100)
        return torch.nan_to_num(out, nan=0.0, posinf=100.0, neginf=-100.0)


class NaiveCrossAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, query, context):
        b = query.shape[0]
        q = self.q_proj(query).view(b, 1, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(context).view(b, 1, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(context).view(b, 1, self.heads, self.head_dim).transpose(1, 2)
        attn = torch.clamp(q @ k.transpose(-2, -1) * self.head_dim**-0.5, -1e4, 1e4).softmax(-1)
        if torch.isnan(attn).any():
            attn = torch.where(torch.isnan(attn), torch.full_like(attn, 1.0 / attn.shape[-1]), attn)
        return self.out_proj((attn @ v).transpose(1, 2).reshape(b, -1))


class NaiveSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x):
        b, n = x.shape[0], 1
        qkv = self.qkv(x.unsqueeze(1)).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.clamp(q @ k.transpose(-2, -1) * self.head_dim**-0.5, -1e4, 1e4).softmax(-1)
        if torch.isnan(attn).any():
            attn = torch.where(torch.isnan(attn), torch.full_like(attn, 1.0 / n), attn)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, -1)).squeeze(1)


class NaiveFusion(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.fusion_weights = nn.Parameter(torch.ones(3) / 3)
        self.transforms = nn.ModuleList(
            [nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d), nn.ReLU()) for _ in range(3)]
        )
        self.post_fusion = nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d), nn.ReLU(), nn.Dropout(0.1))

    def forward(self, streams):
        weights = F.softmax(self.fusion_weights, 0)
        return self.post_fusion(sum(w * t(s) for w, t, s in zip(weights, self.transforms, streams)))


class NaiveTIGAS(nn.Module):
    """TIGAS.md re-stated plainly; same state_dict keys as upstream and ``TIGASModel``."""

    def __init__(
        self, mode: str = "fast", base_channels: int = 32, feature_dim: int = 256, heads: int = 8
    ) -> None:
        super().__init__()
        d = feature_dim
        self.fast = mode == "fast"
        self.perceptual_extractor = NaiveExtractor(base_channels)
        self.perceptual_aggregator = nn.Sequential(
            nn.Linear(30 * base_channels, d), nn.LayerNorm(d), nn.ReLU(), nn.Dropout(0.1)
        )
        if self.fast:
            self.aux_branch = nn.Sequential(
                *_conv_bn_relu(3, 32, 2),
                *_conv_bn_relu(32, 64, 2),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(64, d // 2),
            )
            self.fast_fusion = nn.Sequential(
                nn.Linear(d + d // 2, d), nn.LayerNorm(d), nn.ReLU(), nn.Dropout(0.1)
            )
        else:
            self.spectral_analyzer = NaiveSpectral(d)
            self.statistical_estimator = NaiveStatistical(d)
            self.spectral_to_perceptual_attn = NaiveCrossAttention(d, heads)
            self.stat_to_perceptual_attn = NaiveCrossAttention(d, heads)
            self.self_attention = NaiveSelfAttention(d, heads)
            self.feature_fusion = NaiveFusion(d)
        self.regression_head = nn.Sequential(
            nn.Linear(d, d // 2),
            nn.LayerNorm(d // 2),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(d // 2, d // 4),
            nn.LayerNorm(d // 4),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(d // 4, 1),
            nn.Sigmoid(),
        )
        self.binary_classifier = nn.Sequential(
            nn.Linear(d, d // 2), nn.ReLU(), nn.Dropout(0.1), nn.Linear(d // 2, 2)
        )

    def forward(self, x) -> Tuple[torch.Tensor, torch.Tensor]:
        x = torch.clamp(2 * x - 1, -1, 1)
        perceptual = self.perceptual_aggregator(self.perceptual_extractor(x))
        if self.fast:
            fused = self.fast_fusion(torch.cat([perceptual, self.aux_branch(x)], 1))
        else:
            spectral = self.spectral_analyzer(x)
            statistical = self.statistical_estimator(x)
            fused = self.feature_fusion(
                [
                    perceptual,
                    self.spectral_to_perceptual_attn(spectral, perceptual),
                    self.stat_to_perceptual_attn(statistical, perceptual),
                ]
            )
            fused = self.self_attention(fused)
        score = torch.clamp(self.regression_head(fused), 0, 1)
        return score, torch.clamp(self.binary_classifier(fused), -10, 10)


# -- shared weights and timing --------------------------------------------------------------


def randomized_state(model: nn.Module, seed: int) -> Dict[str, torch.Tensor]:
    """``model``'s state_dict with every float entry perturbed (seeded), so that normalisation
    statistics, prototypes and fusion weights all matter."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            noise = torch.rand(value.shape, generator=generator)
            if key.endswith("running_var"):
                value = 0.5 + noise
            elif key.endswith(("running_mean", "bias", "natural_prototypes", "fusion_weights")):
                value = value + 0.2 * (noise - 0.5)
            else:
                value = value * (0.75 + 0.5 * noise)
        state[key] = value.clone()
    return state


def time_once(fn, images) -> float:
    start = time.perf_counter()
    fn(images)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="fast,full")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--with-branches",
        action="store_true",
        help="full mode: also time TIGASModel.features (computes the branches)",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="also time lossport's model in channels-last memory format",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = torch.rand(
        args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(args.seed)
    )
    print(
        f"TIGAS eager CPU, batch {args.batch}, {args.size}x{args.size}, {args.threads} threads, "
        f"torch {torch.__version__}, median of {args.repeats} after 1 warm-up, seed {args.seed}"
    )
    for mode in args.modes.split(","):
        ours = TIGASModel(mode=mode).eval()
        naive = NaiveTIGAS(mode=mode).eval()
        state = randomized_state(ours, args.seed)
        ours.load_state_dict(state)
        naive.load_state_dict(state)
        contenders = {"naive": naive, "lossport": ours}
        if args.with_branches and mode == "full":
            contenders["lossport+branches"] = lambda x, model=ours: model.features(x)["score"]
        if args.channels_last:
            contenders["lossport channels-last"] = _channels_last(ours)
        with torch.inference_mode():
            expected, got = naive(images), ours(images)
            for name, a, b in (("score", expected[0], got[0]), ("logits", expected[1], got[1])):
                error = (a - b).abs().max().item()
                assert error < 1e-4, f"{mode}: {name} differs from the naive model by {error:.2e}"
            print(
                f"{mode}: outputs agree (max |score diff| "
                f"{(expected[0] - got[0]).abs().max().item():.1e}, max |logit diff| "
                f"{(expected[1] - got[1]).abs().max().item():.1e})",
                flush=True,
            )
            times = {name: [] for name in contenders}
            for name, fn in contenders.items():
                fn(images)  # warm-up
            for _ in range(args.repeats):
                for name, fn in contenders.items():
                    times[name].append(time_once(fn, images))
        base = statistics.median(times["naive"])
        for name, samples in times.items():
            seconds = statistics.median(samples)
            print(
                f"  {mode:<4} {name:<24} {args.batch / seconds:7.3f} img/s  "
                f"({seconds:6.2f} s/batch)  speed-up x{base / seconds:.2f}",
                flush=True,
            )


def _channels_last(model: TIGASModel):
    converted = copy.deepcopy(model).to(memory_format=torch.channels_last)
    return lambda x: converted(x.contiguous(memory_format=torch.channels_last))


if __name__ == "__main__":
    main()
