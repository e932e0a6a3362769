"""Cases for the audio family (see loss_cases/__init__.py for the contract)."""

import math

import numpy as np
import torch

from loss_cases import BadCase, HandCase, Peer
from lossport.errors import ConfigError

t = torch.tensor
EPS64 = float(torch.finfo(torch.float64).eps)


def _snr_db(p, y, eps=1e-8, zero_mean=False):
    """10 log10((|y|^2 + eps) / (|y - p|^2 + eps)) of two lists of floats."""
    if zero_mean:
        p = [v - sum(p) / len(p) for v in p]
        y = [v - sum(y) / len(y) for v in y]
    signal = sum(v * v for v in y)
    noise = sum((a - b) ** 2 for a, b in zip(y, p))
    return 10 * math.log10((signal + eps) / (noise + eps))


def _si_sdr_db(p, y, eps=1e-8, zero_mean=True):
    if zero_mean:
        p = [v - sum(p) / len(p) for v in p]
        y = [v - sum(y) / len(y) for v in y]
    a = (sum(u * v for u, v in zip(p, y)) + eps) / (sum(v * v for v in y) + eps)
    return _snr_db(p, [a * v for v in y], eps)


def _noise(rows, length, seed=0):
    return torch.randn(rows, length, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


TM_P, TM_T = [2.5, 0.0, 2.0, 8.0], [3.0, -0.5, 2.0, 7.0]  # torchmetrics' doc example
WAVE = _noise(2, 2048)

HAND = {
    "rmse": [
        # errors 1, -1, 2, 0 -> mse 6/4 = 1.5
        HandCase((t([[1.0, 2.0], [3.0, 4.0]]), t([[0.0, 3.0], [1.0, 4.0]])), {"loss": math.sqrt(1.5 + 1e-6)}),
        HandCase((t([1.0, 1.0]), t([1.0, 1.0])), {"loss": math.sqrt(1e-6)}, note="identical: the eps floor"),
        HandCase((t([3.0]), t([0.0])), {"loss": math.sqrt(9.0 + 0.5)}, config={"eps": 0.5}),
    ],
}

HAND.update(
    {
        "snr": [
            HandCase(
                (t([TM_P]), t([TM_T])),
                {"loss": -10 * math.log10((62.25 + 1e-8) / (1.5 + 1e-8))},
                note="|t|^2 = 62.25, |t - p|^2 = 1.5",
            ),
            HandCase(
                (t([TM_P, [1.0, 2.0, 3.0, 4.0]]), t([TM_T, [1.0, 1.0, 1.0, 1.0]])),
                {"loss": -(_snr_db(TM_P, TM_T) + _snr_db([1, 2, 3, 4], [1, 1, 1, 1])) / 2},
            ),
            HandCase(
                (t([TM_P]), t([TM_T])),
                {"loss": -_snr_db(TM_P, TM_T, zero_mean=True)},
                config={"zero_mean": True},
            ),
            HandCase(
                (t([[1.0, 1.0]]), t([[0.0, 0.0]])),
                {"loss": -10 * math.log10(1e-8 / (2 + 1e-8))},
                note="silent target: finite",
            ),
            HandCase(
                (t([[0.5, -0.5]]), t([[0.5, -0.5]])),
                {"loss": -10 * math.log10((0.5 + 1e-8) / 1e-8)},
                atol=1e-4,
                note="identical: finite",
            ),
            HandCase((t([[0.0, 0.0]]), t([[0.0, 0.0]])), {"loss": 0.0}, note="both silent: 0 dB"),
            HandCase(
                (t([TM_P, TM_P]), t([TM_T, TM_T])),
                {"loss": [-_snr_db(TM_P, TM_T)] * 2},
                config={"reduction": "none"},
            ),
            HandCase(
                (t(TM_P), t(TM_T)),
                {"loss": -_snr_db(TM_P, TM_T, eps=0.5)},
                config={"eps": 0.5},
                note="1-D waveform, eps in numerator and denominator",
            ),
        ],
        "si_sdr": [
            HandCase((t([TM_P]), t([TM_T])), {"loss": -_si_sdr_db(TM_P, TM_T)}),
            HandCase(
                (t([TM_P]), t([TM_T])),
                {"loss": -_si_sdr_db(TM_P, TM_T, zero_mean=False)},
                config={"zero_mean": False},
            ),
            HandCase(
                (t([[1.0, 0.0, -1.0, 0.0]]), t([[0.0, 1.0, 0.0, -1.0]])),
                {
                    "loss": -10
                    * math.log10(
                        ((1e-8 / (2 + 1e-8)) ** 2 * 2 + 1e-8) / ((1e-8 / (2 + 1e-8)) ** 2 * 2 + 2 + 1e-8)
                    )
                },
                note="orthogonal: scale eps/(2+eps), distortion = the whole prediction",
            ),
            HandCase(
                (t([[3.0, -3.0]]), t([[1.0, -1.0]])),
                {"loss": -_si_sdr_db([3, -3], [1, -1])},
                atol=1e-3,
                note="scaled copy: ~ -95 dB, finite",
            ),
            HandCase(
                (t([[1.0, -1.0]]), t([[2.0, 2.0]])),
                {"loss": -10 * math.log10(1e-8 / (2 + 1e-8))},
                note="constant target is silent after mean removal",
            ),
            HandCase(
                (t([TM_P, TM_T]), t([TM_T, TM_T])),
                {"loss": -(_si_sdr_db(TM_P, TM_T) + _si_sdr_db(TM_T, TM_T))},
                config={"reduction": "sum"},
                atol=1e-4,
            ),
        ],
        "mel": [
            HandCase(
                (2 * WAVE, WAVE),
                {"loss": math.log(2.0)},
                note="mel is linear in |STFT|: log-mel differs by ln 2 in every band",
            ),
            HandCase((0.5 * WAVE, WAVE), {"loss": math.log(4.0)}, config={"power": 2.0}),
            HandCase(
                (2 * WAVE, WAVE),
                {"loss": math.log(2.0)},
                config={"resolutions": [[512, 128, 40], [1024, 256, 80, 600], [2048, 512, 100]]},
                note="multi-resolution mean",
            ),
            HandCase(
                (3 * WAVE, WAVE),
                {"loss": math.log(3.0)},
                config={"mel_scale": "htk", "mel_norm": "none", "sample_rate": 16000},
            ),
            HandCase((WAVE, WAVE), {"loss": 0.0}, note="identical"),
            HandCase((torch.zeros(1, 600), torch.zeros(1, 600)), {"loss": 0.0}, note="both silent"),
            HandCase(
                (torch.cat([2 * WAVE[:1], WAVE[1:]]), WAVE),
                {"loss": [math.log(2.0), 0.0]},
                config={"reduction": "none"},
            ),
        ],
    }
)

BAD = {
    "rmse": [
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 4)), r"target must have the same shape as prediction \[2, 3\]"
        ),
        BadCase(
            (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)), r"prediction must be a floating-point"
        ),
        BadCase((torch.zeros(2), torch.zeros(2)), r"eps must be > 0", config={"eps": 0.0}, error=ConfigError),
    ],
}
for _name in ("snr", "si_sdr"):
    BAD[_name] = [
        BadCase(
            (torch.zeros(2, 3), torch.zeros(2, 4)),
            r"target must have the same shape as prediction \[2, 3\], got \[2, 4\]",
        ),
        BadCase(
            (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)), r"prediction must be a floating-point"
        ),
        BadCase((torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long)), r"target must be a floating-point"),
        BadCase(
            (torch.tensor(1.0), torch.tensor(1.0)), r"prediction must have shape \[..., T\] \(at least 1-D\)"
        ),
        BadCase((), r"eps must be > 0", config={"eps": -1.0}, error=ConfigError),
        BadCase((), r"reduction must be one of", config={"reduction": "batchmean"}, error=ConfigError),
    ]
BAD["mel"] = [
    BadCase(
        (torch.zeros(2, 1000), torch.zeros(2, 999)),
        r"target must have the same shape as prediction \[2, 1000\], got \[2, 999\]",
    ),
    BadCase((torch.zeros(1000), torch.zeros(1000)), r"prediction must have shape \[B, T\] \(2-D\), got 1-D"),
    BadCase(
        (torch.zeros(2, 1000, dtype=torch.int16), torch.zeros(2, 1000)),
        r"prediction must be a floating-point",
    ),
    BadCase(
        (torch.zeros(2, 512), torch.zeros(2, 512)),
        r"prediction and target must have at least 513 samples \(more than n_fft // 2",
    ),
    BadCase(
        (torch.zeros(2, 1000), torch.zeros(2, 1000)),
        r"at least 1025 samples",
        config={"resolutions": [[512, 128, 40], [2048, 512, 80]]},
    ),
    BadCase(
        (),
        r"mel_scale must be one of 'slaney', 'htk', got 'mel'",
        config={"mel_scale": "mel"},
        error=ConfigError,
    ),
    BadCase(
        (),
        r"each resolution is \(n_fft, hop_length, n_mels\[, win_length <= n_fft\]\)",
        config={"resolutions": [[512, 128]]},
        error=ConfigError,
    ),
    BadCase(
        (),
        r"need 0 <= f_min < f_max <= sample_rate / 2 = 11025",
        config={"f_max": 12000.0},
        error=ConfigError,
    ),
    BadCase((), r"eps must be > 0", config={"eps": 0.0}, error=ConfigError),
]


def _torchmetrics_rmse(config, inputs):
    from torchmetrics.functional import mean_squared_error

    prediction, target = inputs
    # torchmetrics has no eps: compare sqrt(mse + eps) with eps taken out of our result
    mse = mean_squared_error(prediction, target, squared=True)
    return {"loss": torch.sqrt(mse + config.get("eps", 1e-6))}


def _torchmetrics_snr(config, inputs):
    from torchmetrics.functional.audio import signal_noise_ratio

    prediction, target = inputs
    return {"loss": -signal_noise_ratio(prediction, target, zero_mean=config["zero_mean"]).mean()}


def _torchmetrics_si_sdr(config, inputs):
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as si_sdr

    prediction, target = inputs
    return {"loss": -si_sdr(prediction, target, zero_mean=config["zero_mean"]).mean()}


def _librosa_mel(config, inputs):
    import librosa

    prediction, target = inputs
    single = [[config["n_fft"], config["hop_length"], config["n_mels"], config["win_length"]]]
    resolutions = config["resolutions"] or single
    total = 0.0
    for entry in resolutions:
        n_fft, hop, n_mels = entry[:3]
        win = entry[3] if len(entry) > 3 else None
        bank = librosa.filters.mel(
            sr=config["sample_rate"],
            n_fft=n_fft,
            n_mels=n_mels,
            fmin=config["f_min"],
            fmax=config["f_max"],
            htk=config["mel_scale"] == "htk",
            norm="slaney" if config["mel_norm"] == "slaney" else None,
            dtype=np.float64,
        )

        def log_mel(wave):
            spec = librosa.stft(
                wave.numpy(),
                n_fft=n_fft,
                hop_length=hop,
                win_length=win,
                window="hann",
                center=True,
                pad_mode="reflect",
            )
            # documented floor of the squared magnitude (1e-20) before the power
            magnitude = np.maximum(np.abs(spec) ** 2, 1e-20) ** (config["power"] / 2)
            return np.log(np.maximum(np.einsum("mf,bft->bmt", bank, magnitude), config["eps"]))

        total = total + np.abs(log_mel(prediction) - log_mel(target)).mean(axis=(1, 2))
    return {"loss": torch.tensor(np.mean(total / len(resolutions)))}


PEERS = {
    "rmse": Peer("torchmetrics", _torchmetrics_rmse),
    # torchmetrics puts its machine epsilon where our eps goes: compare at that eps
    "snr": Peer(
        "torchmetrics", _torchmetrics_snr, configs=({"eps": EPS64}, {"eps": EPS64, "zero_mean": True})
    ),
    "si_sdr": Peer(
        "torchmetrics", _torchmetrics_si_sdr, configs=({"eps": EPS64}, {"eps": EPS64, "zero_mean": False})
    ),
    "mel": Peer(
        "librosa",
        _librosa_mel,
        configs=(
            {},
            {"mel_scale": "htk", "mel_norm": "none", "power": 2.0, "f_min": 30.0, "f_max": 8000.0},
            {"resolutions": [[512, 128, 40], [1024, 256, 80, 600]]},
            {
                "sample_rate": 16000,
                "n_fft": 512,
                "hop_length": 160,
                "win_length": 400,
                "n_mels": 64,
                "eps": 1e-3,
            },
        ),
    ),
}
