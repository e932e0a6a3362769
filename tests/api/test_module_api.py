"""The public API on user modules: export_module, validate_module, lossport.testing."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from user_modules import Classifier, OptionalArgument, PerceptualLoss, ShapeBaked, Unscriptable

import lossport
from lossport.errors import ConfigError, ExportError
from lossport.testing import assert_portable

CPU = ("eager", "torchscript", "ort-cpu")
BATCH = {"prediction": {0: "batch"}, "target": {0: "batch"}}


def test_public_names_are_at_the_package_top():
    for name in ("export_module", "validate_module", "register", "Spec", "TensorSpec"):
        assert callable(getattr(lossport, name))
    with pytest.raises(AttributeError):
        lossport.no_such_name  # noqa: B018


def test_export_module_with_grad_runs_in_onnx_runtime_at_another_batch(tmp_path):
    torch.manual_seed(0)
    module = PerceptualLoss()
    prediction = torch.rand(2, 3, 8, 8, requires_grad=True)
    target = torch.rand(2, 3, 8, 8)
    result = lossport.export_module(
        module, (prediction, target), tmp_path / "p.onnx", with_grad=True, dynamic=BATCH
    )
    assert result.outputs == ["output_0", "grad_prediction"] and result.dynamic == ["batch"]
    assert result.checks and all(r.passed for r in result.checks)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["prediction", "target"]
    p, t = torch.rand(5, 3, 8, 8, requires_grad=True), torch.rand(5, 3, 8, 8)
    loss, grad = session.run(None, {"prediction": p.detach().numpy(), "target": t.numpy()})
    expected = module(p, t)
    (expected_grad,) = torch.autograd.grad(expected, p)  # the sum of a scalar is itself
    np.testing.assert_allclose(loss, expected.item(), rtol=1e-5)
    np.testing.assert_allclose(
        grad, expected_grad.numpy(), atol=1e-6 * float(expected_grad.abs().max()) + 1e-9
    )


def test_only_requires_grad_inputs_get_gradients_and_dict_keys_name_outputs(tmp_path):
    x = torch.randn(3, 6, requires_grad=True)
    labels = torch.tensor([0, 3, 1])
    result = lossport.export_module(
        Classifier(),
        (x, labels),
        tmp_path / "c.onnx",
        with_grad=True,
        dynamic={"x": {0: "batch"}, "labels": {0: "batch"}},
    )
    assert result.outputs == ["loss", "logits", "grad_x"]


def test_validate_module_reports_every_backend(tmp_path):
    x = torch.randn(3, 6, requires_grad=True)
    report = lossport.validate_module(
        Classifier(),
        (x, torch.tensor([0, 3, 1])),
        backends=CPU,
        dynamic={"x": {0: "batch"}, "labels": {0: "batch"}},
    )
    assert report.passed
    data = report.to_json()
    assert {r["backend"] for r in data["results"]} == set(CPU)
    shapes = {r["case"] for r in data["results"]}
    assert any("batch=3" in c for c in shapes) and any("batch=4" in c for c in shapes)
    assert {c["output"] for r in data["results"] for c in r["comparisons"]} >= {"loss", "logits", "grad_x"}
    json.dumps(data)


def test_an_unscriptable_module_is_traced_and_says_so():
    report = lossport.validate_module(
        Unscriptable(), (torch.randn(2, 5, requires_grad=True),), backends=CPU, dynamic={"x": {0: "batch"}}
    )
    assert report.passed
    assert "traced" in report.notes["torchscript"] and "scripting failed" in report.notes["torchscript"]


def test_a_module_that_scripts_but_cannot_be_saved_is_traced(tmp_path):
    result = lossport.export_module(
        OptionalArgument(),
        (torch.randn(3, 5),),
        tmp_path / "o.pt",
        format="torchscript",
        dynamic={"x": {0: "batch"}},
    )
    assert "traced" in result.notes[0] and all(r.passed for r in result.checks)


def test_torchscript_not_applicable_does_not_abort_onnx():
    report = lossport.validate_module(
        ShapeBaked(), (torch.randn(2, 5, requires_grad=True),), backends=CPU, dynamic={"x": {0: "batch"}}
    )
    assert report.skipped["torchscript"].startswith("not applicable: ")
    assert any(r.backend == "ort-cpu" for r in report.results)


def test_a_traced_torchscript_export_is_refused_when_the_trace_is_invalid(tmp_path):
    with pytest.raises(ExportError, match="trace is not valid|nor trace"):
        lossport.export_module(
            ShapeBaked(),
            (torch.randn(2, 5),),
            tmp_path / "s.pt",
            format="torchscript",
            dynamic={"x": {0: "batch"}},
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"example_inputs": (torch.randn(2, 5).double(),)}, "dtype torch.float64"),
        ({"example_inputs": ([1, 2],)}, "pass a tuple of tensors"),
        ({"example_inputs": (torch.randn(2, 5),), "dynamic": {"y": {0: "batch"}}}, "dynamic names inputs"),
        ({"example_inputs": (torch.randn(2, 5),), "dynamic": {"x": {3: "batch"}}}, "names axes"),
        ({"example_inputs": (torch.randn(2, 5),), "input_names": ["a", "b"]}, "input_names has 2 names"),
        ({"example_inputs": (torch.randn(2, 5),), "input_names": ["not valid"]}, "input name"),
        ({"example_inputs": (torch.randn(2, 5),), "format": "tflite"}, "format="),
        ({"example_inputs": (torch.randn(2, 7),)}, "running the module on its example inputs failed"),
    ],
)
def test_bad_arguments_are_clear_errors(tmp_path, arguments, message):
    class Five(torch.nn.Module):
        def forward(self, x):
            return x.reshape(-1, 5).sum()

    with pytest.raises(ConfigError, match=message):
        lossport.export_module(Five(), path=tmp_path / "m.onnx", **arguments)
    assert list(tmp_path.iterdir()) == []


def test_assert_portable_passes_and_fails_with_the_report(monkeypatch):
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    assert assert_portable(PerceptualLoss(), (x, torch.rand(2, 3, 8, 8)), backends=CPU, dynamic=BATCH).passed
    from lossport.export.onnx import tracing

    def wrong_tanh_backward(grad_output, output):
        return grad_output * (1 - output)  # the derivative is 1 - output**2

    table = tracing.decompositions

    def with_wrong_gradient(translations):
        decompositions = table(translations)
        decompositions[torch.ops.aten.tanh_backward.default] = wrong_tanh_backward
        return decompositions

    monkeypatch.setattr(tracing, "decompositions", with_wrong_gradient)
    with pytest.raises(AssertionError, match="is not portable") as failure:
        assert_portable(PerceptualLoss(), (x, torch.rand(2, 3, 8, 8)), backends=CPU, dynamic=BATCH)
    assert "grad_prediction" in str(failure.value) and "mismatch:" in str(failure.value)


def test_the_pytest_fixture(assert_portable):
    report = assert_portable(Classifier(), (torch.randn(2, 6), torch.tensor([1, 2])), backends=CPU)
    assert report.passed


def test_forward_export_falls_back_to_torch_onnx_where_the_direct_path_fails(tmp_path):
    import onnx

    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 4, 32, batch_first=True).eval()
    result = lossport.export_module(
        layer, (torch.randn(2, 5, 16),), tmp_path / "t.onnx", dynamic={"src": {0: "batch", 1: "seq"}}
    )
    assert result.notes and "exported with torch.onnx" in result.notes[0]
    assert result.checks and all(r.passed for r in result.checks)
    props = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert props["lossport.exporter"] == "torch.onnx"
