"""The export engine: every registered loss in both formats (and with gradients), metadata,
atomic writes, the built-in check, gradient graphs of a convolutional model, and CLI errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from lossport import catalog
from lossport.artifact.metadata import read_metadata
from lossport.cli import main
from lossport.errors import ConfigError, ExportError
from lossport.export import export_artifact, select_dynamic
from lossport.export.manifest import export_many
from lossport.export.onnx import decompositions
from lossport.validation.export_check import verify_export

REPRESENTATIVE = {"rmse", "cross_entropy", "dice", "tigas_combined"}
LOSSES = [
    pytest.param(s.name, marks=() if s.name in REPRESENTATIVE else pytest.mark.slow)
    for s in catalog.all_specs("loss")
]


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_exports_and_passes_the_check(name, tmp_path):
    """Every loss (``-m slow``; a representative subset in the default run)."""
    spec = catalog.get_spec(name)
    config = spec.resolve_config(dict(spec.test_config))
    grad = bool(spec.differentiable_inputs)
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        result = export_artifact(
            spec,
            verify=verify_export,
            fmt=fmt,
            config=config,
            with_grad=grad,
            path=tmp_path / f"{name}{suffix}",
        )
        assert result.checks and all(r.passed for r in result.checks)
        if fmt == "onnx":
            graph = onnx.load(str(result.path)).graph
            assert [o.name for o in graph.output] == result.outputs
        cases = {r.case for r in result.checks}
        assert cases == {"export-shape", "other-shape"}
        compared = {c.output for r in result.checks for c in r.comparisons}
        assert set(spec.outputs) <= compared
        if grad:
            assert {f"grad_{n}" for n in spec.differentiable_inputs} <= compared
    if grad:  # the forward-only ONNX graph too
        plain = export_artifact(
            spec, verify=verify_export, fmt="onnx", config=config, path=tmp_path / "plain.onnx"
        )
        assert all(r.passed for r in plain.checks)


def test_onnx_metadata_and_dynamic_axes(tmp_path):
    spec = catalog.get_spec("rmse")
    path = export_artifact(
        spec, verify=verify_export, fmt="onnx", path=tmp_path / "r.onnx", with_grad=True
    ).path
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 18
    meta = read_metadata(path)
    assert meta["spec"] == "rmse" and json.loads(meta["config"]) == {"eps": 1e-6}
    assert json.loads(meta["outputs"]) == ["loss", "grad_prediction"]

    def dims(values):
        return [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values]

    assert dims(model.graph.input) == [["batch", "time"], ["batch", "time"]]
    assert dims(model.graph.output) == [[], ["batch", "time"]]


def test_dynamic_none_specialises_and_the_check_uses_another_shape(tmp_path):
    spec = catalog.get_spec("rmse")
    assert select_dynamic(spec, spec.resolve_config(), []) == []
    with pytest.raises(ConfigError, match="no dynamic axis height"):
        select_dynamic(spec, spec.resolve_config(), ["height", "width"])
    result = export_artifact(
        spec, verify=verify_export, fmt="onnx", path=tmp_path / "static.onnx", dynamic=["batch"]
    )
    assert result.dynamic == ["batch"]
    sizes = [r.case for r in result.checks]
    assert sizes == ["export-shape", "other-shape"] and all(r.passed for r in result.checks)


def test_gradient_graph_of_a_conv_model_matches_autograd(tiny_spec, tmp_path):
    """convolution_backward (decomposed), batch norm, bilinear interpolation backward."""
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        result = export_artifact(
            tiny_spec, verify=verify_export, fmt=fmt, with_grad=True, path=tmp_path / f"t{suffix}"
        )
        grads = [c for r in result.checks for c in r.comparisons if c.output == "grad_images"]
        assert len(grads) == 2 and all(c.passed for c in grads)


def test_torchscript_artifact_runs_without_lossport(tiny_spec, tmp_path):
    path = export_artifact(
        tiny_spec, verify=verify_export, fmt="torchscript", with_grad=True, path=tmp_path / "t.pt"
    ).path
    code = (
        "import sys, torch\n"
        f"extra = {{'lossport.spec': ''}}\n"
        f"m = torch.jit.load({str(path)!r}, _extra_files=extra)\n"
        "score, grad = m(torch.rand(2, 3, 24, 20))\n"
        "assert 'lossport' not in sys.modules\n"
        "print(extra['lossport.spec'].decode(), tuple(score.shape), tuple(grad.shape))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["tiny_scorer", "(2,", "1)", "(2,", "3,", "24,", "20)"]


def test_failed_check_leaves_nothing_and_keeps_the_old_file(tmp_path, monkeypatch):
    spec = catalog.get_spec("rmse")
    target = tmp_path / "r.onnx"
    target.write_bytes(b"previous artifact")
    from lossport.validation import backends

    real_run = backends.OrtBackend.run
    monkeypatch.setattr(
        backends.OrtBackend,
        "run",
        lambda self, inputs: {k: v + 1.0 for k, v in real_run(self, inputs).items()},
    )
    with pytest.raises(ExportError, match=r"does not match eager PyTorch.*loss max abs error 1"):
        export_artifact(spec, verify=verify_export, fmt="onnx", path=target)
    assert target.read_bytes() == b"previous artifact"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.onnx"]


def test_export_many_writes_a_manifest(tmp_path):
    specs = [catalog.get_spec("rmse")]
    manifest, failures = export_many(
        specs, tmp_path, formats=["onnx", "torchscript"], with_grad=True, verify=verify_export
    )
    assert failures == []
    data = json.loads(manifest.read_text())
    files = data["artifacts"][0]["files"]
    assert {f["file"] for f in files} == {"rmse.onnx", "rmse_grad.onnx", "rmse.pt", "rmse_grad.pt"}
    for f in files:
        import hashlib

        assert hashlib.sha256((tmp_path / f["file"]).read_bytes()).hexdigest() == f["sha256"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "loss", "focall"], "unknown loss 'focall'; did you mean focal"),
        (["export", "loss", "rmse", "--set", "epsilon=1"], "no setting 'epsilon'"),
        (["export", "loss", "rmse", "--set", "eps=abc"], "eps='abc' is not a valid float"),
        (["export", "loss", "rmse", "--set", "eps"], "--set expects key=value"),
        (["export", "loss", "rmse", "--opset", "17"], "--opset 17 is below the minimum 18"),
        (["export", "loss", "rmse", "-o", "missing/dir/r.onnx"], "output folder missing/dir does not exist"),
        (["export", "loss", "rmse", "--dynamic", "height"], "rmse has no dynamic axis height"),
    ],
)
def test_export_cli_bad_input(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_onnx_export_with_a_torch_lacking_the_exporter_modules_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    import lossport.export.onnx as onnx_package

    monkeypatch.chdir(tmp_path)
    monkeypatch.delattr(onnx_package, "translate", raising=False)
    monkeypatch.setitem(sys.modules, "lossport.export.onnx.translate", None)  # import fails
    result = CliRunner().invoke(main, ["export", "loss", "rmse", "-o", "r.onnx"])
    assert result.exit_code == 2, result.output
    assert "ONNX export needs the torch.onnx exporter modules of torch>=2.9" in result.output
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []
    torchscript = CliRunner().invoke(main, ["export", "loss", "rmse", "--format", "torchscript"])
    assert torchscript.exit_code == 0, torchscript.output


def test_export_cli_unwritable_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("this user can write to a read-only folder (root)")
        result = CliRunner().invoke(main, ["export", "loss", "rmse", "-o", str(folder / "r.onnx")])
        assert result.exit_code == 2 and "is not writable" in result.output
    finally:
        folder.chmod(0o700)


def test_export_cli_writes_and_reports(tmp_path):
    out = tmp_path / "r.pt"
    result = CliRunner().invoke(
        main, ["export", "loss", "rmse", "--format", "torchscript", "--with-grad", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "grad_prediction" in result.output
    assert read_metadata(out)["with_grad"] == "true"


def test_export_cli_is_one_line_without_traceback_in_a_real_process(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "lossport", "export", "loss", "nope"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert out.stderr.startswith("error: unknown loss 'nope'")


def test_read_metadata_refuses_foreign_and_corrupt_files(tmp_path):
    from lossport.errors import ArtifactError

    corrupt = tmp_path / "bad.onnx"
    corrupt.write_bytes(b"\x00not onnx")
    with pytest.raises(ArtifactError, match="not a readable ONNX model"):
        read_metadata(corrupt)
    foreign = tmp_path / "foreign.onnx"
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], "g", [], [])), str(foreign))
    with pytest.raises(ArtifactError, match="not exported by lossport"):
        read_metadata(foreign)
    with pytest.raises(ArtifactError, match="no such file"):
        read_metadata(tmp_path / "absent.pt")
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ArtifactError, match="neither an ONNX model"):
        read_metadata(text)


def test_onnx_gradient_is_not_baked_to_the_export_shape(tmp_path):
    """A traced ``torch.tensor(numel)`` would bake the example size into the graph."""
    import onnxruntime as ort

    spec = catalog.get_spec("rmse")
    path = export_artifact(
        spec, verify=verify_export, fmt="onnx", with_grad=True, path=tmp_path / "r.onnx"
    ).path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    p, t = torch.randn(7, 11, dtype=torch.float64), torch.randn(7, 11, dtype=torch.float64)
    loss, grad = session.run(None, {"prediction": p.float().numpy(), "target": t.float().numpy()})
    expected = torch.sqrt(((p - t) ** 2).mean() + 1e-6)
    np.testing.assert_allclose(loss, expected.numpy(), rtol=1e-5)
    np.testing.assert_allclose(grad, ((p - t) / (p.numel() * expected)).numpy(), rtol=1e-4, atol=1e-7)


class _LogEps(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x.pow(2).sum() + 1e-9)


def test_small_eps_constants_survive_export(tmp_path):
    """A graph optimizer that folds tiny scalars to 0 would turn log(0 + 1e-9) into -inf."""
    import onnxruntime as ort

    from lossport.spec import Spec, TensorSpec
    from lossport.spec.domains import Real

    spec = Spec(
        name="log_eps",
        build=_LogEps,
        source="test",
        summary="test-only",
        inputs=(TensorSpec("x", ("n",), Real(), differentiable=True),),
        outputs=("loss",),
        shapes=({"n": 3},),
    )
    path = export_artifact(spec, verify=verify_export, fmt="onnx", path=tmp_path / "e.onnx").path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (value,) = session.run(None, {"x": np.zeros(3, np.float32)})
    assert np.isfinite(value) and value == pytest.approx(np.log(1e-9), rel=1e-6)


@pytest.mark.parametrize(
    "conv",
    [
        torch.nn.Conv2d(4, 6, 3, padding=1),
        torch.nn.Conv2d(4, 6, 3, padding=3, dilation=2, groups=2),
        torch.nn.Conv1d(3, 5, 4, padding=0),
        torch.nn.Conv2d(4, 6, (3, 5), stride=2, padding=(1, 2)),
        torch.nn.Conv2d(4, 4, 3, stride=(1, 2), padding=1, groups=4),
        torch.nn.Conv2d(2, 3, 1, padding=2),  # padding beyond the kernel: transposed form
    ],
    ids=["same", "dilated-grouped", "1d-valid", "strided", "depthwise-strided", "over-padded"],
)
def test_convolution_input_gradient_decomposition_matches_autograd(conv):
    conv = conv.double()
    spatial = (9, 14)[: conv.weight.dim() - 2]
    images = torch.randn(2, conv.in_channels, *spatial, dtype=torch.float64, requires_grad=True)
    output = conv(images)
    grad_output = torch.randn_like(output)
    (expected,) = torch.autograd.grad(output, images, grad_output)
    got, *_ = decompositions.convolution_backward(
        grad_output,
        images.detach(),
        conv.weight.detach(),
        None,
        list(conv.stride),
        list(conv.padding),
        list(conv.dilation),
        False,
        [0] * len(spatial),
        conv.groups,
        [True, False, False],
    )
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
