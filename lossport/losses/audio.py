"""Audio and signal losses: RMSE, SNR, SI-SDR, multi-resolution log-mel L1.

Waveforms are float tensors ``[B, T]`` (batch, samples); any leading shape ``[..., T]`` is
accepted where stated. Losses with a per-waveform value (SNR, SI-SDR, mel) reduce over the
waveforms: ``"mean"`` (default), ``"sum"``, or ``"none"`` (one value per waveform).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from lossport.errors import ConfigError, InvalidInputError
from lossport.losses._reduce import REDUCTIONS, reduce_loss, safe_mean
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import Real

__all__ = [
    "MelSpectrogramLoss",
    "RMSELoss",
    "SISDRLoss",
    "SNRLoss",
    "log_mel_distance",
    "log_mel_spectrogram",
    "mel_filterbank",
    "rmse_loss",
    "si_sdr_loss",
    "snr_loss",
    "stft_basis",
    "stft_conv",
]


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


_WAVE_INPUTS = (
    TensorSpec("prediction", ("batch", "time"), Real(), differentiable=True),
    TensorSpec("target", ("batch", "time"), Real()),
)
_WAVE_SHAPES = ({"batch": 3, "time": 50}, {"batch": 5, "time": 17}, {"batch": 1, "time": 64})


def _wave_spec(name: str, build, summary: str, peer: str, edge_cases) -> Spec:
    """Spec of a loss between two waveforms ``[batch, time]`` with one output, at the shared test
    shapes, from the loss-library catalog."""
    return Spec(
        name=name,
        build=build,
        inputs=_WAVE_INPUTS,
        outputs=("loss",),
        shapes=_WAVE_SHAPES,
        source="loss-library catalog",
        summary=summary,
        peer=peer,
        edge_cases=edge_cases,
    )


register(
    _wave_spec(
        "rmse",
        RMSELoss,
        "sqrt(mean((p - t)^2) + eps) over all elements; eps keeps the gradient finite at p == t",
        "torchmetrics.functional.mean_squared_error(squared=False)",
        _rmse_edges,
    )
)


# -- SNR and SI-SDR ------------------------------------------------------------------------


def _eps_ratio(numerator: torch.Tensor, denominator: torch.Tensor, eps: float) -> torch.Tensor:
    """``(numerator + eps) / (denominator + eps)``, evaluated as ``(n / eps + 1) / (d / eps + 1)``.

    The same number; written so that no tiny constant is *added*: ONNX graph optimisers
    (onnxscript's ``x + 0`` rule matches constants within 1e-8 of zero) would drop ``+ eps``.
    """
    return (numerator / eps + 1) / (denominator / eps + 1)


def _energy_ratio_db(signal: torch.Tensor, noise: torch.Tensor, eps: float) -> torch.Tensor:
    """``10 log10((sum(signal^2) + eps) / (sum(noise^2) + eps))`` over the last dimension."""
    return 10 * torch.log10(_eps_ratio(signal.pow(2).sum(dim=-1), noise.pow(2).sum(dim=-1), eps))


def _center(wave: torch.Tensor) -> torch.Tensor:
    return wave - wave.mean(dim=-1, keepdim=True)


def snr_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    eps: float = 1e-8,
    zero_mean: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative signal-to-noise ratio in dB.

    ``loss = -10 log10((||t||^2 + eps) / (||t - p||^2 + eps))`` per waveform, norms over the
    last dimension of ``[..., T]`` float inputs (``zero_mean`` first removes each waveform's
    mean from ``p`` and ``t``). ``reduction`` over the waveforms: ``"mean"``, ``"sum"`` or
    ``"none"`` (shape ``[...]``).

    ``eps`` enters numerator and denominator, as in
    ``torchmetrics.functional.audio.signal_noise_ratio`` (which fixes ``eps`` to the dtype's
    machine epsilon; ``eps=torch.finfo(dtype).eps`` reproduces it exactly). It keeps the loss
    and its gradient finite at the edges: identical signals give ``-10 log10((||t||^2 + eps) /
    eps)`` (large but finite, zero gradient), a silent target gives
    ``-10 log10(eps / (||p||^2 + eps))``, both silent give 0.
    """
    if zero_mean:
        prediction = _center(prediction)
        target = _center(target)
    return reduce_loss(-_energy_ratio_db(target, target - prediction, eps), reduction)


def si_sdr_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    eps: float = 1e-8,
    zero_mean: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019).

    Per waveform (last dimension of ``[..., T]``), after optional mean removal:
    ``a = (<p, t> + eps) / (||t||^2 + eps)``, ``s = a t``, ``loss = -10 log10((||s||^2 + eps) /
    (||s - p||^2 + eps))``. ``eps`` enters exactly where
    ``torchmetrics.functional.audio.scale_invariant_signal_distortion_ratio`` puts its machine
    epsilon (``eps=torch.finfo(dtype).eps`` reproduces it). Default ``zero_mean=True``
    (the SI-SDR definition; torchmetrics defaults to ``False``).
    Edges: a silent (or, with ``zero_mean``, constant) target gives ``a = 1``, ``s = 0`` and
    ``-10 log10(eps / (||p||^2 + eps))``; ``p = c t`` gives ``-10 log10((||s||^2 + eps) / eps)``
    up to round-off; loss and gradient stay finite. Reduction as :func:`snr_loss`.
    """
    if zero_mean:
        prediction = _center(prediction)
        target = _center(target)
    scale = _eps_ratio(
        (prediction * target).sum(dim=-1, keepdim=True), target.pow(2).sum(dim=-1, keepdim=True), eps
    )
    scaled = scale * target
    return reduce_loss(-_energy_ratio_db(scaled, scaled - prediction, eps), reduction)


class _RatioLoss(nn.Module):
    """Shared constructor, eager checks and ``forward`` of the SNR-type losses.

    A subclass says only what differs: its ``zero_mean`` default and its loss, in ``_loss``.
    """

    def __init__(self, eps: float, zero_mean: bool, reduction: str) -> None:
        super().__init__()
        if eps <= 0:
            raise ConfigError(f"eps must be > 0, got {eps}")
        checks.check_choice(reduction, "reduction", REDUCTIONS)
        self.eps = float(eps)
        self.zero_mean = bool(zero_mean)
        self.reduction = reduction

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(prediction, target)
        return self._loss(prediction, target)

    def _check(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        checks.check_float(prediction, "prediction")
        checks.check_min_rank(prediction, "prediction", 1, "[..., T]")
        checks.check_same_shape(prediction, "prediction", target, "target")
        checks.check_float(target, "target")

    def _loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SNRLoss(_RatioLoss):
    """Module form of :func:`snr_loss`."""

    def __init__(self, eps: float = 1e-8, zero_mean: bool = False, reduction: str = "mean") -> None:
        super().__init__(eps, zero_mean, reduction)

    def _loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return snr_loss(prediction, target, self.eps, self.zero_mean, self.reduction)


class SISDRLoss(_RatioLoss):
    """Module form of :func:`si_sdr_loss`."""

    def __init__(self, eps: float = 1e-8, zero_mean: bool = True, reduction: str = "mean") -> None:
        super().__init__(eps, zero_mean, reduction)

    def _loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return si_sdr_loss(prediction, target, self.eps, self.zero_mean, self.reduction)


# -- log-mel spectrogram L1 ----------------------------------------------------------------

_MEL_SCALES = ("slaney", "htk")
_MEL_NORMS = ("slaney", "none")
_SLANEY_HZ_PER_MEL = 200.0 / 3
_SLANEY_LOG_HZ = 1000.0
_SLANEY_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(freq: torch.Tensor, mel_scale: str) -> torch.Tensor:
    if mel_scale == "htk":
        return 2595.0 * torch.log10(1.0 + freq / 700.0)
    linear = freq / _SLANEY_HZ_PER_MEL
    log_part = (
        _SLANEY_LOG_HZ / _SLANEY_HZ_PER_MEL
        + torch.log(torch.clamp(freq, min=_SLANEY_LOG_HZ) / _SLANEY_LOG_HZ) / _SLANEY_LOG_STEP
    )
    return torch.where(freq >= _SLANEY_LOG_HZ, log_part, linear)


def _mel_to_hz(mel: torch.Tensor, mel_scale: str) -> torch.Tensor:
    if mel_scale == "htk":
        return 700.0 * (torch.pow(10.0, mel / 2595.0) - 1.0)
    log_mel = _SLANEY_LOG_HZ / _SLANEY_HZ_PER_MEL
    linear = mel * _SLANEY_HZ_PER_MEL
    log_part = _SLANEY_LOG_HZ * torch.exp(_SLANEY_LOG_STEP * (mel - log_mel))
    return torch.where(mel >= log_mel, log_part, linear)


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: Optional[float] = None,
    mel_scale: str = "slaney",
    norm: str = "slaney",
) -> torch.Tensor:
    """Triangular mel filterbank ``[n_mels, n_fft // 2 + 1]`` in float64.

    ``n_mels + 2`` points equally spaced on the mel scale between ``f_min`` and ``f_max``
    (default ``sample_rate / 2``) are the filters' edges and centres; filter ``m`` rises
    linearly (in Hz) from point ``m`` to ``m + 1`` and falls to point ``m + 2``, evaluated at
    the FFT bin frequencies ``k * sample_rate / n_fft``. ``mel_scale="slaney"`` is the Auditory
    Toolbox scale (linear below 1 kHz, logarithmic above), ``"htk"`` is
    ``2595 log10(1 + f / 700)``. ``norm="slaney"`` scales filter ``m`` by
    ``2 / (f[m + 2] - f[m])`` (constant energy per band); ``"none"`` leaves peaks at 1.
    Equals ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min,
    fmax=f_max, htk=mel_scale == "htk", norm="slaney" if norm == "slaney" else None)``;
    ``mel_scale="htk", norm="none"`` is ``torchaudio.functional.melscale_fbanks``' default
    (transposed).
    """
    f_max = sample_rate / 2.0 if f_max is None else float(f_max)
    bin_freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (sample_rate / n_fft)
    limits = _hz_to_mel(torch.tensor([float(f_min), f_max], dtype=torch.float64), mel_scale)
    points = _mel_to_hz(
        torch.linspace(float(limits[0]), float(limits[1]), n_mels + 2, dtype=torch.float64), mel_scale
    )
    widths = points.diff()
    rising = (bin_freqs[None, :] - points[:-2, None]) / widths[:-1, None]
    falling = (points[2:, None] - bin_freqs[None, :]) / widths[1:, None]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    if norm == "slaney":
        weights = weights * (2.0 / (points[2:] - points[:-2]))[:, None]
    return weights


def stft_basis(n_fft: int, win_length: Optional[int] = None) -> torch.Tensor:
    """Windowed one-sided DFT basis ``[2 F, 1, n_fft]`` (float64), ``F = n_fft // 2 + 1``.

    Rows ``0..F-1`` are ``w[n] cos(2 pi k n / n_fft)``, rows ``F..2F-1`` are
    ``-w[n] sin(2 pi k n / n_fft)``: a strided ``conv1d`` with it gives the real and imaginary
    parts of ``torch.stft``. ``w`` is the periodic Hann window of ``win_length`` (default
    ``n_fft``) samples, zero-padded on both sides to ``n_fft`` as ``torch.stft`` does.
    """
    win_length = n_fft if win_length is None else win_length
    window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    left = (n_fft - win_length) // 2
    window = F.pad(window, (left, n_fft - win_length - left))
    k = torch.arange(n_fft // 2 + 1, dtype=torch.int64)[:, None]
    n = torch.arange(n_fft, dtype=torch.int64)[None, :]
    angle = (2 * math.pi / n_fft) * ((k * n) % n_fft).to(torch.float64)
    basis = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window], dim=0)
    return basis.unsqueeze(1)


def stft_conv(wave: torch.Tensor, basis: torch.Tensor, hop_length: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """STFT of ``[B, T]`` waveforms as a strided ``conv1d``: ``(real, imag)``, ``[B, F, frames]``.

    Matches ``torch.stft(wave, n_fft, hop_length, window=hann, center=True,
    pad_mode="reflect", return_complex=True)``: the signal is reflect-padded by ``n_fft // 2``
    on both sides (``T > n_fft // 2`` is required), ``frames = 1 + T // hop_length``.
    ``basis`` comes from :func:`stft_basis` and is cast to the wave's dtype. Real-valued
    throughout, so it scripts, exports to ONNX (forward and gradient) and runs on any runtime.
    """
    n_fft = basis.shape[-1]
    padded = F.pad(wave.unsqueeze(1), (n_fft // 2, n_fft // 2), mode="reflect")
    spectrum = F.conv1d(padded, basis.to(wave.dtype), stride=hop_length)
    bins = basis.shape[0] // 2
    return spectrum[:, :bins], spectrum[:, bins:]


def log_mel_spectrogram(
    wave: torch.Tensor,
    basis: torch.Tensor,
    filterbank: torch.Tensor,
    hop_length: int,
    power: float = 1.0,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Natural-log mel spectrogram ``[B, n_mels, frames]`` of ``[B, T]`` waveforms.

    ``S = |STFT|^power`` (:func:`stft_conv`; ``power`` 1 = magnitude, 2 = power), ``M = fb @ S``
    (``filterbank`` ``[n_mels, F]``), ``log(clamp(M, min=eps))``. Below the floor ``eps`` the
    log is constant and its gradient 0. For ``power=1`` the squared magnitude is floored at
    1e-20 before the square root, so the gradient stays finite at silent frames; this changes
    nothing above the log floor.
    """
    real, imag = stft_conv(wave, basis, hop_length)
    squared = real.pow(2) + imag.pow(2)
    if power == 2.0:
        spectrum = squared
    else:
        spectrum = torch.clamp(squared, min=1e-20).pow(power / 2.0)
    mel = torch.matmul(filterbank.to(wave.dtype), spectrum)
    return torch.log(torch.clamp(mel, min=eps))


def log_mel_distance(
    prediction: torch.Tensor,
    target: torch.Tensor,
    basis: torch.Tensor,
    filterbank: torch.Tensor,
    hop_length: int,
    power: float = 1.0,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Mean absolute log-mel difference per waveform, ``[B]``, at one STFT resolution.

    ``mean_{m, f} |L(p)[b, m, f] - L(t)[b, m, f]|`` with ``L`` the
    :func:`log_mel_spectrogram` of ``basis``, ``filterbank``, ``hop_length``.
    """
    difference = log_mel_spectrogram(
        prediction, basis, filterbank, hop_length, power, eps
    ) - log_mel_spectrogram(target, basis, filterbank, hop_length, power, eps)
    return difference.abs().mean(dim=(1, 2))


class _LogMel(nn.Module):
    """One STFT resolution: DFT basis and mel filterbank as float64 buffers (not saved)."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        win_length: Optional[int],
        f_min: float,
        f_max: Optional[float],
        mel_scale: str,
        norm: str,
    ) -> None:
        super().__init__()
        self.register_buffer("basis", stft_basis(n_fft, win_length), persistent=False)
        self.register_buffer(
            "filterbank",
            mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, mel_scale, norm),
            persistent=False,
        )
        self.hop_length = hop_length

    def forward(
        self, prediction: torch.Tensor, target: torch.Tensor, power: float, eps: float
    ) -> torch.Tensor:
        return log_mel_distance(prediction, target, self.basis, self.filterbank, self.hop_length, power, eps)


class MelSpectrogramLoss(nn.Module):
    """L1 distance between log-mel spectrograms of prediction and target waveforms ``[B, T]``.

    Per resolution ``(n_fft, hop_length, n_mels)``: STFT with a periodic Hann window of
    ``win_length`` (default ``n_fft``), ``center=True`` with reflect padding (as
    ``torch.stft`` / ``librosa.stft(pad_mode="reflect")``), magnitude raised to ``power``,
    mel filterbank (:func:`mel_filterbank`; default ``mel_scale="slaney", mel_norm="slaney"``,
    librosa's default and the HiFi-GAN family's; ``"htk", "none"`` is torchaudio's), natural
    log of ``clamp(mel, min=eps)``, then the mean absolute difference over mel bands and frames
    (:func:`log_mel_distance`). ``resolutions``, a list of ``(n_fft, hop_length, n_mels)``
    (optionally a 4th entry ``win_length``), replaces the single resolution; the loss is then
    the mean over resolutions. ``reduction`` over the batch: ``"mean"``, ``"sum"``,
    ``"none"`` (``[B]``).

    The STFT is a strided ``conv1d`` with a windowed DFT basis built in the constructor
    (see :func:`stft_conv`); ``torch.stft`` is not used because its gradient graph is complex
    and does not export to ONNX. Basis and filterbank are float64 buffers (``.to(dtype)``
    changes that), cast to the input dtype in ``forward``. Inputs need
    ``T > max(n_fft) // 2`` samples (reflect padding).
    Edges: silent or identical waveforms give finite loss and gradient (log floor ``eps``,
    squared-magnitude floor 1e-20).
    Precision: in float32 the STFT carries round-off of about 1e-7 of a frame's largest
    magnitude; mel bands 5-6 decades below a frame's loudest band (pure tones, DC, near-silent
    frames with a loud neighbour) are resolved only to that round-off, and so are their log
    and its gradient. Use float64, or a larger ``eps``, where such bands matter.
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        n_fft: int = 1024,
        hop_length: int = 256,
        n_mels: int = 80,
        win_length: Optional[int] = None,
        f_min: float = 0.0,
        f_max: Optional[float] = None,
        power: float = 1.0,
        eps: float = 1e-5,
        mel_scale: str = "slaney",
        mel_norm: str = "slaney",
        resolutions: Optional[Sequence[Sequence[int]]] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        checks.check_choice(mel_scale, "mel_scale", _MEL_SCALES)
        checks.check_choice(mel_norm, "mel_norm", _MEL_NORMS)
        checks.check_choice(reduction, "reduction", REDUCTIONS)
        if eps <= 0:
            raise ConfigError(f"eps must be > 0, got {eps}")
        if power <= 0:
            raise ConfigError(f"power must be > 0, got {power}")
        f_max = sample_rate / 2.0 if f_max is None else float(f_max)
        if not 0 <= f_min < f_max <= sample_rate / 2.0:
            raise ConfigError(
                f"need 0 <= f_min < f_max <= sample_rate / 2 = {sample_rate / 2:g}, "
                f"got f_min={f_min}, f_max={f_max}"
            )
        single = [n_fft, hop_length, n_mels] + ([] if win_length is None else [win_length])
        entries = [single] if resolutions is None else resolutions
        triples = [_resolution(entry) for entry in entries]
        if not triples:
            raise ConfigError("resolutions must name at least one (n_fft, hop_length, n_mels)")
        self.resolutions = nn.ModuleList(
            _LogMel(sample_rate, n, hop, mels, win, f_min, f_max, mel_scale, mel_norm)
            for n, hop, mels, win in triples
        )
        self.min_length = max(n for n, _, _, _ in triples) // 2 + 1
        self.power = float(power)
        self.eps = float(eps)
        self.reduction = reduction

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            checks.check_float(prediction, "prediction")
            checks.check_rank(prediction, "prediction", [2], "[B, T]")
            checks.check_same_shape(prediction, "prediction", target, "target")
            checks.check_float(target, "target")
            if prediction.shape[1] < self.min_length:
                raise InvalidInputError(
                    f"prediction and target must have at least {self.min_length} samples "
                    f"(more than n_fft // 2, for reflect padding), got shape "
                    f"{list(prediction.shape)}"
                )
        total = torch.zeros(prediction.shape[0], dtype=prediction.dtype, device=prediction.device)
        for resolution in self.resolutions:
            total = total + resolution(prediction, target, self.power, self.eps)
        return reduce_loss(total / len(self.resolutions), self.reduction)


def _resolution(entry: Sequence[int]) -> Tuple[int, int, int, Optional[int]]:
    values = [int(v) for v in entry]
    if len(values) not in (3, 4) or min(values) < 1 or (len(values) == 4 and values[3] > values[0]):
        raise ConfigError(
            f"each resolution is (n_fft, hop_length, n_mels[, win_length <= n_fft]) "
            f"of positive ints, got {list(entry)}"
        )
    return values[0], values[1], values[2], values[3] if len(values) == 4 else None


def _ratio_edges(dtype: torch.dtype):
    """Edge cases of the SNR-type losses: identical, silent, constant and scaled waveforms."""
    time = torch.arange(40, dtype=dtype)
    wave = torch.stack([torch.sin(0.05 * time), torch.sign(torch.sin(0.013 * time)) * 0.5])
    return {
        "identical": (wave.clone(), wave.clone()),
        "silent_target": (wave.clone(), torch.zeros_like(wave)),
        "silent_prediction": (torch.zeros_like(wave), wave.clone()),
        "both_silent": (torch.zeros_like(wave), torch.zeros_like(wave)),
        "scaled_copy": (0.5 * wave, wave.clone()),
        "constant_target": (wave.clone(), torch.ones_like(wave)),
        "batch_of_one": (wave[:1].clone(), wave[:1].flip(-1)),
    }


def _mel_edges(dtype: torch.dtype):
    """Broadband waves (noise plus a tone): every mel band sits far above the log floor, where
    float32 resolves the log-mel; only the silent waves touch the floor, and exactly."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(2, 1200, generator=generator, dtype=torch.float64)
    tone = torch.sin(0.05 * torch.arange(1200, dtype=torch.float64))
    wave = (0.3 * noise + tone).to(dtype)
    other = (0.3 * torch.randn(2, 1200, generator=generator, dtype=torch.float64)).to(dtype)
    return {
        "identical": (wave.clone(), wave.clone()),
        "silent_target": (wave.clone(), torch.zeros_like(wave)),
        "silent_prediction": (torch.zeros_like(wave), wave.clone()),
        "both_silent": (torch.zeros_like(wave), torch.zeros_like(wave)),
        "scaled_copy": (0.5 * wave, wave.clone()),
        "clipped": (torch.clamp(wave, -0.5, 0.5), wave.clone()),
        "batch_of_one": (wave[:1].clone(), other[:1].clone()),
        "shortest_input": (wave[:, :513].clone(), other[:, :513].clone()),
    }


register(
    _wave_spec(
        "snr",
        SNRLoss,
        "-10 log10((|t|^2 + eps) / (|t - p|^2 + eps)) per waveform (eps as torchmetrics' "
        "machine epsilon), batch mean",
        "torchmetrics.functional.audio.signal_noise_ratio (negated)",
        _ratio_edges,
    )
)
register(
    _wave_spec(
        "si_sdr",
        SISDRLoss,
        "negative scale-invariant SDR in dB, zero-mean by default, eps as torchmetrics' "
        "machine epsilon, batch mean",
        "torchmetrics.functional.audio.scale_invariant_signal_distortion_ratio (negated)",
        _ratio_edges,
    )
)
register(
    Spec(
        name="mel",
        build=MelSpectrogramLoss,
        inputs=_WAVE_INPUTS,
        outputs=("loss",),
        shapes=({"batch": 2, "time": 2048}, {"batch": 3, "time": 1500}, {"batch": 1, "time": 4000}),
        source="loss-library catalog",
        summary="mean |log(clamp(mel(p), eps)) - log(clamp(mel(t), eps))| over bands and frames "
        "(Hann STFT, center/reflect, Slaney mel as librosa), optional multi-resolution, "
        "batch mean",
        peer="librosa.stft(pad_mode='reflect') + librosa.filters.mel",
        edge_cases=_mel_edges,
        tolerance="loose",
    )
)
