"""Audio losses beyond the catalog: the conv1d STFT against torch.stft, the mel filterbank
against librosa, multi-resolution mel (eager, TorchScript, ONNX), SNR/SI-SDR edges."""

import warnings

import numpy as np
import pytest
import torch

from lossport.losses import MelSpectrogramLoss, SISDRLoss, SNRLoss, mel_filterbank, stft_basis, stft_conv


def _waves(rows=3, length=3001, seed=0, dtype=torch.float64):
    return torch.randn(rows, length, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize(
    "n_fft, hop, win",
    [(1024, 256, None), (512, 128, 300), (256, 100, 255), (2048, 512, 1200), (64, 16, None)],
)
def test_conv_stft_matches_torch_stft(n_fft, hop, win):
    wave = _waves()
    real, imag = stft_conv(wave, stft_basis(n_fft, win), hop)
    window = torch.hann_window(win or n_fft, dtype=torch.float64)
    expected = torch.stft(
        wave,
        n_fft,
        hop,
        win_length=win or n_fft,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    assert real.shape == expected.shape
    scale = expected.abs().max()
    assert (real - expected.real).abs().max() <= 1e-12 * scale
    assert (imag - expected.imag).abs().max() <= 1e-12 * scale


def test_conv_stft_float32_error_is_round_off():
    wave = _waves(dtype=torch.float32)
    real, imag = stft_conv(wave, stft_basis(1024), 256)
    expected = torch.stft(
        wave.double(),
        1024,
        256,
        window=torch.hann_window(1024, dtype=torch.float64),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    error = torch.maximum((real.double() - expected.real).abs(), (imag.double() - expected.imag).abs())
    assert error.max() <= 2e-6 * expected.abs().max()


@pytest.mark.parametrize(
    "mel_scale, norm", [("slaney", "slaney"), ("htk", "none"), ("htk", "slaney"), ("slaney", "none")]
)
@pytest.mark.parametrize(
    "sr, n_fft, n_mels, f_min, f_max",
    [(22050, 1024, 80, 0.0, None), (16000, 512, 40, 20.0, 7600.0), (44100, 2048, 128, 0.0, None)],
)
def test_mel_filterbank_matches_librosa(mel_scale, norm, sr, n_fft, n_mels, f_min, f_max):
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(sr, n_fft, n_mels, f_min, f_max, mel_scale, norm).numpy()
    theirs = librosa.filters.mel(
        sr=sr,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=f_min,
        fmax=f_max,
        htk=mel_scale == "htk",
        norm="slaney" if norm == "slaney" else None,
        dtype=np.float64,
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-13)


def test_htk_unnormalised_filterbank_is_torchaudio_default():
    # torchaudio.functional.melscale_fbanks(n_freqs, f_min, f_max, n_mels, sr) (mel_scale="htk",
    # norm=None), written out: triangles between HTK-mel-spaced points, peak 1, evaluated at
    # linspace(0, sr // 2, n_freqs)
    sr, n_fft, n_mels = 16000, 400, 23
    freqs = torch.linspace(0, sr // 2, n_fft // 2 + 1, dtype=torch.float64)
    m_max = 2595.0 * np.log10(1.0 + (sr / 2) / 700.0)
    points = 700.0 * (10 ** (torch.linspace(0, m_max, n_mels + 2, dtype=torch.float64) / 2595.0) - 1.0)
    slopes = points[None, :] - freqs[:, None]
    down = -slopes[:, :-2] / points.diff()[:-1]
    up = slopes[:, 2:] / points.diff()[1:]
    expected = torch.clamp(torch.minimum(down, up), min=0.0).T
    torch.testing.assert_close(
        mel_filterbank(sr, n_fft, n_mels, mel_scale="htk", norm="none"), expected, atol=1e-12, rtol=1e-10
    )


def test_multi_resolution_is_the_mean_of_single_resolutions():
    prediction, target = _waves(2, 4000, seed=1), _waves(2, 4000, seed=2)
    resolutions = [[512, 128, 40], [1024, 256, 80, 600], [2048, 512, 128]]
    multi = MelSpectrogramLoss(resolutions=resolutions, reduction="none")(prediction, target)
    singles = [
        MelSpectrogramLoss(
            n_fft=r[0],
            hop_length=r[1],
            n_mels=r[2],
            win_length=r[3] if len(r) > 3 else None,
            reduction="none",
        )(prediction, target)
        for r in resolutions
    ]
    torch.testing.assert_close(multi, torch.stack(singles).mean(0), atol=1e-12, rtol=1e-10)


def _multi_resolution():
    module = MelSpectrogramLoss(resolutions=[[512, 128, 40], [1024, 256, 80]], mel_scale="htk")
    prediction = _waves(2, 2000, seed=3, dtype=torch.float32)
    target = _waves(2, 2000, seed=4, dtype=torch.float32)
    return module, prediction, target


def test_multi_resolution_scripts():
    module, prediction, target = _multi_resolution()
    torch.testing.assert_close(torch.jit.script(module)(prediction, target), module(prediction, target))


@pytest.mark.slow
def test_multi_resolution_exports_to_onnx():
    onnxruntime = pytest.importorskip("onnxruntime")
    module, prediction, target = _multi_resolution()
    batch, time = torch.export.Dim("batch", min=1), torch.export.Dim("time", min=1025)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            (prediction, target),
            dynamo=True,
            verbose=False,
            dynamic_shapes=({0: batch, 1: time}, {0: batch, 1: time}),
        )
    session = onnxruntime.InferenceSession(
        program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for rows, length in [(2, 2000), (3, 1500)]:
        p, t = (
            _waves(rows, length, seed=5, dtype=torch.float32),
            _waves(rows, length, seed=6, dtype=torch.float32),
        )
        names = [i.name for i in session.get_inputs()]
        (got,) = session.run(None, dict(zip(names, (p.numpy(), t.numpy()))))
        np.testing.assert_allclose(got, module(p, t).numpy(), rtol=1e-4, atol=1e-5)


def test_mel_float32_and_float64_agree_and_buffers_stay_float64():
    module = MelSpectrogramLoss()
    assert module.resolutions[0].basis.dtype == torch.float64
    prediction, target = _waves(2, 3000, seed=7), _waves(2, 3000, seed=8)
    loss64 = module(prediction, target)
    loss32 = module(prediction.float(), target.float())
    assert loss32.dtype == torch.float32
    assert abs(loss32.double() - loss64) <= 1e-5 * loss64


def test_mel_silent_and_identical_inputs_have_finite_gradients():
    target = _waves(2, 1500, seed=9)
    for prediction, reference in [
        (torch.zeros_like(target), target),
        (target.clone(), target),
        (target.clone(), torch.zeros_like(target)),
    ]:
        prediction.requires_grad_(True)
        loss = MelSpectrogramLoss(power=1.0)(prediction, reference)
        (grad,) = torch.autograd.grad(loss, prediction)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


@pytest.mark.parametrize("loss_class", [SNRLoss, SISDRLoss])
def test_ratio_losses_edges_are_finite_with_finite_gradient(loss_class):
    target = _waves(2, 64, seed=10, dtype=torch.float32)
    cases = [
        (target.clone(), target),
        (target.clone(), torch.zeros_like(target)),
        (torch.zeros_like(target), target),
        (torch.zeros_like(target), torch.zeros_like(target)),
        (3 * target, target),
        (target.clone(), torch.ones_like(target)),
    ]
    for prediction, reference in cases:
        prediction.requires_grad_(True)
        loss = loss_class()(prediction, reference)
        (grad,) = torch.autograd.grad(loss, prediction)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_ratio_losses_accept_any_leading_shape_and_match_torchmetrics_in_float32():
    audio = pytest.importorskip("torchmetrics.functional.audio")
    eps = float(torch.finfo(torch.float32).eps)
    prediction, target = (
        _waves(6, 40, seed=11, dtype=torch.float32),
        _waves(6, 40, seed=12, dtype=torch.float32),
    )
    prediction, target = prediction.reshape(2, 3, 40), target.reshape(2, 3, 40)
    snr = SNRLoss(eps=eps, reduction="none")(prediction, target)
    torch.testing.assert_close(snr, -audio.signal_noise_ratio(prediction, target))
    si_sdr = SISDRLoss(eps=eps, zero_mean=False, reduction="none")(prediction, target)
    torch.testing.assert_close(si_sdr, -audio.scale_invariant_signal_distortion_ratio(prediction, target))
