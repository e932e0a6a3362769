"""Gradient graphs of PyTorch's OpInfo ops, checked by ``benchmarks/coverage_opinfo.py``: each op
on its first float32 sample, exported forward and with gradients, run in ONNX Runtime and
compared with eager autograd.

The default run checks a representative subset (one or two ops per family the backward
decompositions serve, and each op a decomposition of ours fixed); ``-m slow`` runs the whole
sweep and holds it to its coverage targets. PyTorch's ``op_db`` needs ``expecttest``: without
it those tests are skipped, except under CI, where it must be installed.

OpInfo samples have static shapes; a few modules are also exported with dynamic batch and
image size and checked at two sizes (the ops whose gradient graphs broke only there).
"""

import os
import re
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from lossport.artifact.runtime import OnnxArtifact
from lossport.export import export_artifact
from lossport.spec import Spec, TensorSpec
from lossport.spec.domains import Real
from lossport.validation.backends import autograd_outputs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import coverage_opinfo

REPRESENTATIVE = [
    "nn.functional.conv_transpose2d",
    "nn.functional.conv3d",
    "nn.functional.avg_pool3d",
    "nn.functional.max_pool3d",
    "nn.functional.adaptive_avg_pool2d",
    "nn.functional.adaptive_max_pool3d",
    "nn.functional.interpolate.area",
    "nn.functional.grid_sample",
    "nn.functional.group_norm",
    "nn.functional.rms_norm",
    "nn.functional.linear",
    "nn.functional.embedding_bag",
    "log_softmax",
    "nn.functional.scaled_dot_product_attention",
    "nn.functional.pixel_unshuffle",
    "nn.functional.pad.replicate",
    "scatter",
    "sort",
    "fft.rfft",
    "fft.irfft",
    "mv",
    "prod",
    "sgn",
    "take",
    "special.log_ndtr",
]
GRADIENT_TARGET = 0.98


@pytest.fixture(scope="module")
def ops():
    try:
        import expecttest  # noqa: F401  (torch.testing._internal.common_methods_invocations needs it)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("expecttest is not installed: CI must install it to check gradient coverage")
        pytest.skip("expecttest is not installed (PyTorch's OpInfo database needs it)")
    return coverage_opinfo.op_infos()


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_forward_and_gradient_graph_match_eager(ops, name):
    result = coverage_opinfo.check_op(ops[name], torch_onnx=False)
    assert (result.forward, result.gradient) == ("ok", "ok"), result.reasons


@pytest.mark.slow
def test_every_opinfo_op_meets_the_gradient_coverage_targets(ops):
    jobs = min(2, os.cpu_count() or 1)
    results = coverage_opinfo.run_ops(list(ops), jobs, 300, False, lambda result: None)
    ok, total = coverage_opinfo.coverage(results)["gradient (lossport)"]
    assert ok >= GRADIENT_TARGET * total, coverage_opinfo.summary(results)
    for family, pattern in coverage_opinfo.FAMILIES.items():
        members = [r for r in results if re.search(pattern, r.op)]
        ok, total = coverage_opinfo.coverage(members)["gradient (lossport)"]
        assert ok == total, f"{family}: {coverage_opinfo.summary(members)}"


DYNAMIC_BLOCKS = {
    "group_norm": (lambda: nn.GroupNorm(2, 4), 4),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), 4),
    "pixel_shuffle": (lambda: nn.PixelShuffle(2), 8),
    "adaptive_avg_pool2d": (lambda: nn.AdaptiveAvgPool2d(3), 4),
}


@pytest.mark.parametrize("name", DYNAMIC_BLOCKS)
def test_gradient_graph_with_dynamic_batch_and_size_matches_eager(name, tmp_path):
    build, channels = DYNAMIC_BLOCKS[name]
    module = build().eval()
    spec = Spec(
        name=f"block_{name}",
        build=lambda: module,
        inputs=(TensorSpec("x", ("batch", channels, "height", "width"), Real(), differentiable=True),),
        outputs=("y",),
        shapes=({"batch": 2, "height": 8, "width": 6},),
        source="tests/export/test_gradient_coverage.py",
        summary=f"{name} with dynamic batch and image size",
        float64=False,
    )
    path = tmp_path / "block.onnx"
    export_artifact(spec, fmt="onnx", path=path, module=module, with_grad=True)
    artifact = OnnxArtifact(path)
    generator = torch.Generator().manual_seed(0)
    for shape in [(2, channels, 8, 6), (3, channels, 10, 12)]:
        x = torch.randn(shape, generator=generator)
        reference = autograd_outputs(module, spec, [x], with_grad=True)
        assert coverage_opinfo.compare_all(reference, artifact.run({"x": x})) is None, shape
