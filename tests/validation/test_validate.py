"""The validation suite: it passes on correct artifacts, and fails precisely on (a) weights altered
after export, (b) an ONNX translation that computes different numbers, (c) an artifact whose
batch axis was specialised. Also: reports, CUDA skip behaviour, CLI exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import numpy_helper

from lossport import catalog
from lossport.artifact import devices
from lossport.artifact.metadata import read_metadata
from lossport.artifact.runtime import TorchScriptArtifact
from lossport.cli import main
from lossport.export import export_artifact
from lossport.export.onnx import translate
from lossport.export.onnx.torch_internals import OpTranslations
from lossport.export.torchscript import quiet_torchscript
from lossport.validation.compare import compare
from lossport.validation.export_check import verify_export
from lossport.validation.policy import TOLERANCES
from lossport.validation.suite import ValidationOptions, validate_artifact, validate_spec

CPU = ValidationOptions(backends=("eager", "torchscript", "ort-cpu"))


def test_compare_reports_polygraphy_style_numbers():
    tol = TOLERANCES["default"]
    ref = np.array([1.0, 2.0, -4.0])
    result = compare("x", ref, ref + np.array([0.0, 1e-3, -2e-3]), tol)
    assert not result.passed
    assert result.max_abs == pytest.approx(2e-3)
    assert result.max_rel == pytest.approx(5e-4)
    assert "index [2]" in result.detail
    assert compare("x", ref, ref * (1 + 5e-5), tol).passed
    grad = compare("g", np.array([1000.0, 0.0]), np.array([1000.05, 0.05]), tol, gradient=True)
    assert grad.passed and grad.atol == pytest.approx(0.1 + 1e-6)  # 1e-4 x max |ref| + floor
    assert not compare("x", np.array([np.nan]), np.array([1.0]), tol).passed
    assert compare("x", np.array([np.nan]), np.array([np.nan]), tol).passed
    assert not compare("x", np.zeros(3), np.zeros(4), tol).passed


def test_validate_spec_passes_with_gradients_on_every_backend(tiny_spec):
    report = validate_spec(tiny_spec, options=CPU)
    assert report.passed
    backends = {r.backend for r in report.results}
    assert backends == {"eager", "torchscript", "ort-cpu"}
    outputs = {(r.backend, c.output) for r in report.results for c in r.comparisons}
    for backend in backends:
        assert (backend, "grad_images") in outputs, backend
    shapes = {r.case for r in report.results}
    assert len(shapes) == len(tiny_spec.shapes)


def test_a_weights_altered_after_export_fail(tiny_spec, tmp_path):
    onnx_path = export_artifact(
        tiny_spec, verify=verify_export, fmt="onnx", with_grad=True, path=tmp_path / "t.onnx"
    ).path
    model = onnx.load(str(onnx_path))
    weight = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(weight).copy()
    values.flat[0] += 0.5
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    onnx.save(model, str(onnx_path))
    report = validate_artifact(onnx_path, ValidationOptions(backends=("ort-cpu",)))
    assert not report.passed
    failed = {c.output for r in report.results for c in r.comparisons if not c.passed}
    assert "score" in failed and "grad_images" in failed

    pt_path = export_artifact(tiny_spec, verify=verify_export, fmt="torchscript", path=tmp_path / "t.pt").path
    scripted = TorchScriptArtifact(pt_path).module
    with torch.no_grad():
        scripted.head.bias.add_(0.25)
    extra = {f"lossport.{key}": "" for key in read_metadata(pt_path)}
    with quiet_torchscript():
        torch.jit.load(str(pt_path), _extra_files=extra)
        torch.jit.save(scripted, str(pt_path), _extra_files=extra)
    report = validate_artifact(pt_path, ValidationOptions())
    assert not report.passed
    assert all(not r.passed for r in report.results if r.backend == "torchscript")


class _Erf(torch.nn.Module):
    def forward(self, prediction: torch.Tensor) -> torch.Tensor:
        return torch.special.erf(prediction).sum()


def test_b_a_numerically_wrong_onnx_translation_fails(tmp_path, monkeypatch):
    """Simulate an exporter bug: aten.erf translated as tanh (close in shape, wrong numbers)."""
    from lossport.spec import Spec, TensorSpec
    from lossport.spec.domains import Real

    spec = Spec(
        name="erf_sum",
        build=_Erf,
        source="test",
        summary="test-only",
        inputs=(TensorSpec("prediction", ("batch",), Real(), differentiable=True),),
        outputs=("loss",),
        shapes=({"batch": 5}, {"batch": 9}),
    )
    from onnxscript import opset18 as op

    def wrong_erf(x):
        return op.Tanh(x)

    def translations_with_wrong_erf(opset):
        translations = OpTranslations.from_torchlib(opset_version=opset)
        translations.register_op(torch.ops.aten.erf.default, wrong_erf, is_complex=False)
        return translations

    monkeypatch.setattr(translate, "op_translations", translations_with_wrong_erf)
    with catalog.registered(spec):
        report = validate_spec(spec, options=ValidationOptions(backends=("torchscript", "ort-cpu")))
    by_backend = {r.backend: r for r in report.results}
    assert by_backend["torchscript"].passed
    failing = [c for r in report.results if r.backend == "ort-cpu" for c in r.comparisons if not c.passed]
    assert {c.output for c in failing} >= {"loss"}
    assert all(c.max_abs > 1e-3 for c in failing if c.output == "loss")

    localized = validate_spec(spec, options=ValidationOptions(backends=("ort-cpu",), localize=True))
    where = localized.localized["ort-cpu"]
    assert "first divergence at Tanh node output 'erf'" in where, where


def test_c_a_specialised_batch_fails_on_other_batches(tmp_path):
    spec = catalog.get_spec("rmse")
    path = export_artifact(
        spec, verify=verify_export, fmt="onnx", dynamic=["time"], path=tmp_path / "r.onnx"
    ).path
    report = validate_artifact(path, ValidationOptions(backends=("ort-cpu",)))
    assert not report.passed
    export_batch = spec.shapes[0]["batch"]
    errors = [r for r in report.results if r.error]
    assert errors and all(f"batch={export_batch}" not in r.case for r in errors)
    shape_cases = [r for r in report.results if r.case.startswith("shape")]
    assert all((f"batch={export_batch}" in r.case) == r.passed for r in shape_cases)
    assert any("dimension" in r.error.lower() or "shape" in r.error.lower() for r in errors)
    passing = [r for r in report.results if r.passed]
    assert all(f"batch={export_batch}" in r.case for r in passing)


def test_cuda_is_skipped_with_a_reason_or_required(monkeypatch):
    monkeypatch.setattr(devices, "cuda_device_present", lambda: False)
    spec = catalog.get_spec("rmse")
    report = validate_spec(spec, options=ValidationOptions(backends=("ort-cuda",)))
    assert report.passed and "ort-cuda" in report.skipped
    assert report.skipped["ort-cuda"]
    required = validate_spec(spec, options=ValidationOptions(backends=("ort-cuda",), require_cuda=True))
    assert not required.passed
    assert "--require-cuda" in required.results[0].error


def test_cli_validate_reports_and_exit_codes(tmp_path):
    runner = CliRunner()
    json_path, junit_path = tmp_path / "v.json", tmp_path / "v.xml"
    result = runner.invoke(
        main,
        [
            "validate",
            "losses",
            "rmse",
            "--backends",
            "eager,ort-cpu",
            "--json",
            str(json_path),
            "--junit",
            str(junit_path),
            "--seed",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rmse" in result.output and "pass" in result.output
    data = json.loads(json_path.read_text())
    assert data["seed"] == 5 and data["passed"]
    assert "export + run" in result.output
    seconds = data["specs"][0]["seconds"]
    assert set(seconds) == {"export", "run"} and min(seconds.values()) > 0
    comparisons = data["specs"][0]["results"][0]["comparisons"]
    assert {"max_abs", "max_rel", "atol", "rtol", "passed"} <= set(comparisons[0])
    suites = ET.parse(junit_path).getroot()
    cases = suites.findall(".//testcase")
    assert cases and all(c.find("failure") is None for c in cases)
    assert any(c.get("name").startswith("ort-cpu:") for c in cases)


def test_cli_validate_in_parallel_processes_matches_one_process(tmp_path):
    """--jobs 2 spawns worker processes; the report (order and every number) is the same."""
    numbers = {}
    for workers in ("1", "2"):
        path = tmp_path / f"v{workers}.json"
        result = CliRunner().invoke(
            main,
            [
                "validate",
                "losses",
                "snr",
                "rmse",
                "--backends",
                "eager,torchscript",
                "--jobs",
                workers,
                "--json",
                str(path),
            ],
        )
        assert result.exit_code == 0, result.output
        numbers[workers] = [
            (
                spec["spec"],
                [
                    (r["backend"], r["case"], c["output"], c["max_abs"])
                    for r in spec["results"]
                    for c in r["comparisons"]
                ],
            )
            for spec in json.loads(path.read_text())["specs"]
        ]
    assert [name for name, _ in numbers["2"]] == ["snr", "rmse"]
    assert numbers["1"] == numbers["2"]


def test_cli_validate_mismatch_exits_1(tmp_path):
    spec = catalog.get_spec("rmse")
    path = export_artifact(
        spec, verify=verify_export, fmt="onnx", dynamic=["time"], path=tmp_path / "r.onnx"
    ).path
    junit = tmp_path / "v.xml"
    result = CliRunner().invoke(main, ["validate", "artifact", str(path), "--junit", str(junit)])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "mismatch: rmse / ort-cpu" in result.output
    assert ET.parse(junit).getroot().findall(".//error")


@pytest.mark.parametrize(
    "args, message",
    [
        (["validate", "losses", "nope"], "unknown loss 'nope'"),
        (["validate", "losses", "rmse", "--backends", "ort-gpu"], "unknown backend ort-gpu"),
        (["validate", "losses", "rmse", "--backends", "eager", "--require-cuda"], "--require-cuda needs"),
        (["validate", "artifact", "absent.onnx"], "absent.onnx: no such file"),
        (["validate", "all", "--jobs", "0"], "Invalid value for '--jobs'"),
    ],
)
def test_cli_validate_bad_input(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_non_finite_reference_fails_instead_of_agreeing_with_nan():
    import lossport

    class Log(torch.nn.Module):
        def forward(self, x):
            return torch.log(x).sum()

    report = lossport.validate_module(
        Log(), (torch.tensor([[-1.0, 2.0], [3.0, -4.0]]),), backends=("ort-cpu",)
    )
    assert not report.passed
    errors = [r.error for r in report.results if r.error]
    assert errors and all("non-finite values (NaN/Inf) in output_0" in e for e in errors)
