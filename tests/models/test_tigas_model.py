"""TIGAS model: upstream parity on the fixtures, state_dict layout, the spectral and
statistical branches against independent formulas, TorchScript and ONNX export."""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lossport.errors import ConfigError, InvalidInputError
from lossport.models.tigas import TIGASModel, load_model
from lossport.models.tigas.numerics import atan2, lower_median
from lossport.models.tigas.spectral import AZIMUTH_BASE, AZIMUTH_TANGENTS, frequency_bins, real_dft2

MODES = ("fast", "full")
SMALL = {"base_channels": 8, "feature_dim": 64, "num_attention_heads": 4}
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_tigas_eager.py"


def small(mode: str, seed: int = 0) -> TIGASModel:
    torch.manual_seed(seed)
    return TIGASModel(mode=mode, **SMALL).eval()


def naive_module():
    """The plain re-statement of TIGAS.md that the eager benchmark times against."""
    spec = importlib.util.spec_from_file_location("bench_tigas_eager", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- upstream parity --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", [0, 1])
def test_fixture_parity(tigas_fixtures, mode, case):
    model = load_model(tigas_fixtures / f"tigas_{mode}_small.pt", num_attention_heads=4)
    data = np.load(tigas_fixtures / f"tigas_{mode}_small_io.npz")
    images = torch.from_numpy(data[f"input_{case}"]).requires_grad_(True)
    score, logits = model(images)
    (1 - score.mean()).backward()
    expected_grad = torch.from_numpy(data[f"grad_{case}"])
    assert (score - torch.from_numpy(data[f"score_{case}"])).abs().max() <= 1e-5
    assert (logits - torch.from_numpy(data[f"logits_{case}"])).abs().max() <= 1e-5
    grad_error = (images.grad - expected_grad).abs().max() / expected_grad.abs().max()
    assert grad_error <= 1e-4, f"{mode} case {case}: gradient error {grad_error:.2e} of max |grad|"


def _tsv(path: Path):
    rows = []
    for line in path.read_text().splitlines():
        key, shape, dtype = line.split("\t")
        rows.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip()), dtype))
    return rows


@pytest.mark.parametrize("mode, parameters", [("fast", 16_508_747), ("full", 18_606_671)])
def test_default_state_dict_layout(tigas_fixtures, mode, parameters):
    model = TIGASModel(mode=mode)
    ours = [(k, tuple(v.shape), str(v.dtype)) for k, v in model.state_dict().items()]
    assert ours == _tsv(tigas_fixtures / f"state_dict_{mode}.tsv")
    assert sum(p.numel() for p in model.parameters()) == parameters


def test_full_mode_equals_literal_attention():
    """Full-mode forward skips the branches; the literal attention over the branch features
    (projections, scaled scores, softmax, NaN check) gives the same outputs."""
    bench = naive_module()
    model = small("full", seed=1)
    model.load_state_dict(bench.randomized_state(model, 1))
    naive = bench.NaiveTIGAS("full", base_channels=8, feature_dim=64, heads=4).eval()
    naive.load_state_dict(model.state_dict())
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for ours, reference in zip(model(images), naive(images)):
            torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("size", [(64, 64), (72, 96), (33, 47)])
def test_branches_match_plain_formulas(size):
    """Spectral (torch.fft, torch.angle, fftfreq grids, per-bin masks) and statistical
    (torch.median) branches of the plain re-statement, on the same weights."""
    bench = naive_module()
    model = small("full", seed=3)
    model.load_state_dict(bench.randomized_state(model, 3))
    naive = bench.NaiveTIGAS("full", 8, 64, 4).eval()
    naive.load_state_dict(model.state_dict())
    x = model.normalize(torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(4)))
    with torch.no_grad():
        torch.testing.assert_close(
            model.spectral_analyzer(x), naive.spectral_analyzer(x), atol=1e-5, rtol=1e-4
        )
        torch.testing.assert_close(
            model.statistical_estimator(x), naive.statistical_estimator(x), atol=1e-5, rtol=1e-4
        )


# -- spectral primitives ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [(32, 32), (33, 47), (72, 96), (50, 35)])
def test_real_dft_matches_rfft2(size):
    x = torch.rand(2, 3, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    re, im = real_dft2(x)
    expected = torch.fft.rfft2(x)
    torch.testing.assert_close(re, expected.real, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(im, expected.imag, atol=1e-9, rtol=1e-9)
    height, width = size
    for k in {0, height // 2} if height % 2 == 0 else {0}:
        for j in {0, width // 2} if width % 2 == 0 else {0}:
            assert (im[..., k, j] == 0).all(), "exactly-real coefficients must have imag 0"


def test_atan2_conventions():
    y = torch.randn(1000, generator=torch.Generator().manual_seed(1))
    x = torch.randn(1000, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(atan2(y, x), torch.atan2(y, x), atol=1e-6, rtol=0)
    special = atan2(
        torch.tensor([0.0, -0.0, 1.0, -1.0, 0.0, 2.0]), torch.tensor([-1.0, -1.0, 0.0, 0.0, 0.0, 2.0])
    )
    expected = torch.tensor([math.pi, math.pi, math.pi / 2, -math.pi / 2, 0.0, math.pi / 4])
    torch.testing.assert_close(special, expected)
    point = torch.zeros(2, requires_grad=True)
    atan2(point[0], point[1]).backward()
    assert torch.isfinite(point.grad).all()


def _upstream_bins(height, width):
    fy, fx = torch.meshgrid(torch.fft.fftfreq(height), torch.fft.rfftfreq(width), indexing="ij")
    r = torch.sqrt(fx**2 + fy**2)
    radial = (r / (r.max() + 1e-8) * 31).long().clamp(0, 31)
    # float32 angle correctly rounded from float64 (PyTorch's vectorised float32 atan2 is off by
    # one ulp at a few points, e.g. one of the 256x256 grid)
    theta = torch.atan2(fy.double(), (fx + 1e-8).double()).float()
    azimuthal = ((theta + math.pi) / (2 * math.pi) * 8).long().clamp(0, 7)
    fast_theta = torch.atan2(fy, fx + 1e-8)
    upstream = ((fast_theta + math.pi) / (2 * math.pi) * 8).long().clamp(0, 7)
    return radial, azimuthal, upstream


@pytest.mark.parametrize("size", [(64, 64), (72, 96), (256, 256), (33, 47), (97, 128), (40, 300)])
def test_frequency_bins(size):
    radial, azimuthal = frequency_bins(*size, torch.device("cpu"), AZIMUTH_BASE, list(AZIMUTH_TANGENTS))
    expected_radial, expected_azimuthal, upstream = _upstream_bins(*size)
    assert torch.equal(radial, expected_radial)
    assert torch.equal(azimuthal, expected_azimuthal)
    assert (azimuthal != upstream).sum() <= 1
    assert set(azimuthal.unique().tolist()) <= {2, 3, 4, 5, 6}


def test_lower_median():
    values = torch.randn(5, 7, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(lower_median(values), torch.sort(values, dim=-1)[0][..., 31])
    assert torch.equal(lower_median(values[..., :63]), torch.sort(values[..., :63], dim=-1)[0][..., 31])


# -- options and input checks -----------------------------------------------------------------


def test_input_range_option():
    unit = small("fast", seed=5)
    signed = TIGASModel(mode="fast", input_range="[-1,1]", **SMALL).eval()
    signed.load_state_dict(unit.state_dict())
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(unit(images), signed(images * 2 - 1))
        torch.testing.assert_close(signed(images * 4 - 2), signed((images * 4 - 2).clamp(-1, 1)))


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(3, 64, 64), r"\[batch, 3, height, width\]"),
        (torch.rand(1, 4, 64, 64), "RGB channels"),
        (torch.randint(0, 255, (1, 3, 64, 64)), "floating-point"),
        (torch.rand(1, 3, 31, 64), "at least 32x32"),
    ],
)
def test_bad_input(bad, match):
    with pytest.raises(InvalidInputError, match=match):
        small("fast")(bad)


@pytest.mark.parametrize(
    "config, match",
    [
        ({"mode": "medium"}, "mode"),
        ({"feature_dim": 62}, "multiple of 4"),
        ({"feature_dim": 64, "num_attention_heads": 3}, "divide"),
        ({"input_range": "0-255"}, "input_range"),
    ],
)
def test_bad_config(config, match):
    with pytest.raises(ConfigError, match=match):
        TIGASModel(**{"base_channels": 8, **config})


@pytest.mark.parametrize("mode", MODES)
def test_float64(mode):
    """The validator's float64 reference: same numbers as float32, finite branch features."""
    model = small(mode, seed=11)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        expected = model(images)
        for got, want in zip(model.double()(images.double()), expected):
            assert got.dtype == torch.float64
            torch.testing.assert_close(got.float(), want, atol=1e-5, rtol=0)
        features = model.features(torch.zeros(1, 3, 32, 32, dtype=torch.float64))
    assert all(torch.isfinite(v).all() for v in features.values())


# -- export -----------------------------------------------------------------------------------


def _script(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
        return torch.jit.script(model)


@pytest.mark.parametrize("mode", MODES)
def test_torchscript_matches_eager(mode):
    model = small(mode, seed=7)
    scripted = _script(model)
    for shape in [(2, 3, 64, 64), (1, 3, 72, 96)]:
        images = torch.rand(shape, generator=torch.Generator().manual_seed(8))
        with torch.no_grad():
            for a, b in zip(scripted(images), model(images)):
                torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_onnx_export_dynamic(tmp_path, mode):
    import onnx
    import onnxruntime as ort
    from torch.export import Dim

    model = small(mode, seed=9)
    path = tmp_path / f"tigas_{mode}.onnx"
    torch.onnx.export(
        model,
        (torch.rand(2, 3, 64, 64),),
        str(path),
        dynamo=True,
        opset_version=18,
        dynamic_shapes=({0: Dim("batch"), 2: Dim("height"), 3: Dim("width")},),
        verbose=False,
    )
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims][1] == 3 and all(d.dim_param for i, d in enumerate(dims) if i != 1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(3, 3, 48, 80), (1, 3, 72, 96)]:
        images = torch.rand(shape, generator=torch.Generator().manual_seed(10))
        score, logits = session.run(None, {session.get_inputs()[0].name: images.numpy()})
        with torch.no_grad():
            expected_score, expected_logits = model(images)
        np.testing.assert_allclose(score, expected_score.numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(logits, expected_logits.numpy(), atol=1e-5, rtol=0)


class _Branches(torch.nn.Module):
    """The full-mode spectral and statistical branches, which ``forward`` does not need."""

    def __init__(self, model: TIGASModel) -> None:
        super().__init__()
        self.spectral = model.spectral_analyzer
        self.statistical = model.statistical_estimator

    def forward(self, x: torch.Tensor):
        return self.spectral(x), self.statistical(x)


@pytest.mark.slow
def test_branch_features_export(tmp_path):
    """Real DFT, frequency grids from the shape, atan2, TopK median: exported with dynamic
    shapes, ONNX Runtime matches eager at other sizes, on random and degenerate images.

    ``optimize=False``: the exporter's graph optimizer folds constants <= 1e-8 (the ``+ 1e-8``
    of the azimuthal grid, the ``1e-8`` magnitude floor) to 0 and changes the numbers, as
    lossport's own exporter knows."""
    import onnxruntime as ort
    from torch.export import Dim

    branches = _Branches(small("full", seed=13)).eval()
    path = tmp_path / "branches.onnx"
    torch.onnx.export(
        branches,
        (torch.rand(2, 3, 64, 64) * 2 - 1,),
        str(path),
        dynamo=True,
        opset_version=18,
        verbose=False,
        optimize=False,
        dynamic_shapes=({0: Dim("batch"), 2: Dim("height"), 3: Dim("width")},),
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    checker = ((torch.arange(48)[:, None] + torch.arange(40)) % 2 * 2 - 1.0).expand(1, 3, 48, 40)
    for x in (
        torch.rand(1, 3, 72, 96, generator=torch.Generator().manual_seed(14)) * 2 - 1,
        -torch.ones(2, 3, 48, 40),
        checker.contiguous(),
    ):
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            expected = branches(x)
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b.numpy(), atol=1e-4, rtol=0)
