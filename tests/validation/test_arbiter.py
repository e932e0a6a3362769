"""The ``onnx-ref`` backend and the arbiter: ORT and ONNX's reference evaluator run the same
artifact, and a failing ONNX check is classified export / runtime / precision correctly for an
injected fault of each kind."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from lossport import catalog
from lossport.cli import main
from lossport.cli.validate import options_from
from lossport.export import export_artifact
from lossport.validation import arbiter, backends
from lossport.validation.export_check import verify_export
from lossport.validation.registry import BACKENDS
from lossport.validation.results import cell
from lossport.validation.suite import ValidationOptions, validate_artifact, validate_spec

ARBITRATED = ValidationOptions(backends=("ort-cpu", "onnx-ref"))


def kinds(report):
    return {v.kind for v in report.verdicts}


def test_onnx_ref_agrees_on_a_correct_artifact(erf_sum):
    report = validate_spec(erf_sum, options=ARBITRATED)
    assert report.passed and not report.verdicts
    ran = {r.backend for r in report.results}
    assert ran == {"ort-cpu", "onnx-ref"}
    outputs = {c.output for r in report.results if r.backend == "onnx-ref" for c in r.comparisons}
    assert outputs == {"loss", "grad_prediction"}  # the gradient graph, run by the evaluator too


def test_an_export_fault_is_classified_export(erf_sum, wrong_erf):
    report = validate_spec(erf_sum, options=ARBITRATED)
    assert not report.passed
    assert kinds(report) == {"export"}
    verdict = next(v for v in report.verdicts if v.output == "loss")
    assert verdict.failing == ("ort-cpu", "onnx-ref")
    assert verdict.ulps["ort-cpu"] > 1e4 and verdict.ulps["onnx-ref"] > 1e4
    assert verdict.ulps["ort-cpu vs onnx-ref"] < 8  # both runtimes compute the same wrong graph
    assert cell(report, "ort-cpu").endswith("export") and cell(report, "onnx-ref").endswith("export")
    assert "arbiter erf_sum / ort-cpu vs onnx-ref: export" in report.summary()
    data = report.to_json()
    assert {v["kind"] for v in data["verdicts"]} == {"export"}
    json.dumps(data)


def test_a_runtime_only_fault_is_classified_runtime_and_localized(erf_sum, wrong_ort_erf):
    report = validate_spec(
        erf_sum, options=ValidationOptions(backends=("ort-cpu", "onnx-ref"), localize=True)
    )
    assert kinds(report) == {"runtime"}
    assert all(v.failing == ("ort-cpu",) for v in report.verdicts)
    assert "ort-cpu alone differs" in report.verdicts[0].detail
    assert all(r.passed for r in report.results if r.backend == "onnx-ref")
    assert cell(report, "ort-cpu").startswith("FAIL") and cell(report, "ort-cpu").endswith("runtime")
    assert cell(report, "onnx-ref").startswith("pass")
    # the artifact's graph says Erf; ORT's Erf computes something else: that node is named
    assert "first divergence at Erf node output 'erf'" in report.localized["ort-cpu"]


def test_a_tolerance_tighter_than_float32_is_classified_precision():
    report = validate_spec(
        catalog.get_spec("rmse"),
        options=ValidationOptions(backends=("ort-cpu", "onnx-ref"), atol=0.0, rtol=1e-12),
    )
    assert not report.passed
    assert kinds(report) == {"precision"}
    assert all(max(v.ulps["ort-cpu"], v.ulps["onnx-ref"]) <= arbiter.PRECISION_ULPS for v in report.verdicts)
    assert cell(report, "ort-cpu").endswith("precision")


def test_a_tampered_weight_is_classified_export(tiny_spec, tmp_path):
    path = export_artifact(
        tiny_spec, verify=verify_export, fmt="onnx", with_grad=True, path=tmp_path / "t.onnx"
    ).path
    model = onnx.load(str(path))
    weight = next(t for t in model.graph.initializer if t.name == "conv.weight")
    values = numpy_helper.to_array(weight).copy()
    values.flat[3] += 0.5
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    onnx.save(model, str(path))
    report = validate_artifact(path, ARBITRATED)
    assert kinds(report) == {"export"}
    assert {v.output for v in report.verdicts} >= {"score", "grad_images"}


def test_onnx_ref_lacking_an_op_is_not_applicable(erf_sum, monkeypatch):
    def lacking(model):
        raise NotImplementedError("Node type 'Erf' from domain '' is unknown, known functions: [].")

    monkeypatch.setattr(backends, "_reference_evaluator", lacking)
    report = validate_spec(erf_sum, options=ARBITRATED)
    assert report.passed and not report.verdicts
    assert report.skipped["onnx-ref"].startswith("not applicable: ")
    assert "Erf" in report.skipped["onnx-ref"]
    assert "skipped onnx-ref: not applicable" in report.summary()


def test_onnx_ref_failing_at_run_time_is_not_applicable(erf_sum, monkeypatch):
    class Evaluator:
        input_names, output_names = ["prediction"], ["loss", "grad_prediction"]

        def run(self, names, feeds):
            raise NotImplementedError("Unsupported attribute value for Erf")

    monkeypatch.setattr(backends, "_reference_evaluator", lambda model: Evaluator())
    report = validate_spec(erf_sum, options=ARBITRATED)
    assert report.passed
    assert report.skipped["onnx-ref"].startswith("not applicable: ")
    assert not [r for r in report.results if r.backend == "onnx-ref"]


def test_onnx_ref_is_opt_in_and_not_applicable_to_torchscript(tmp_path):
    defaults = options_from(None, 1, None, None, False, False, None, None, None, None, None)
    assert list(defaults.backends) == list(BACKENDS) and "onnx-ref" not in defaults.backends
    assert "onnx-ref" not in ValidationOptions().backends
    path = export_artifact(catalog.get_spec("rmse"), fmt="torchscript", path=tmp_path / "r.pt").path
    report = validate_artifact(path, ValidationOptions(backends=("torchscript", "onnx-ref")))
    assert report.passed
    assert report.skipped["onnx-ref"].startswith("not applicable: ")


def test_cli_shows_the_classification_in_the_table_and_json(erf_sum, wrong_erf, tmp_path):
    path = export_artifact(erf_sum, fmt="onnx", with_grad=True, path=tmp_path / "e.onnx").path
    report_path, junit = tmp_path / "v.json", tmp_path / "v.xml"
    args = ["validate", "artifact", str(path), "--backends", "ort-cpu,onnx-ref"]
    result = CliRunner().invoke(main, [*args, "--json", str(report_path), "--junit", str(junit)])
    assert result.exit_code == 1, result.output
    header, row = result.output.splitlines()[1:3]
    assert "onnx-ref" in header and "FAIL" in row and row.count("export") == 2
    data = json.loads(report_path.read_text())
    verdicts = data["specs"][0]["verdicts"]
    assert verdicts and {v["kind"] for v in verdicts} == {"export"}
    assert {v["backend"] for v in verdicts} == {"ort-cpu"}
    assert np.isfinite(verdicts[0]["ulps"]["ort-cpu vs onnx-ref"])
    messages = [f.get("message") for f in ET.parse(junit).getroot().iter("failure")]
    assert messages and all(m.startswith("export: max abs") and "of budget" in m for m in messages)


@pytest.mark.parametrize("backend_list", ["ort-cpu,onnx-ref,nope", "onnx_ref"])
def test_cli_unknown_backend_names_the_optional_one(backend_list):
    result = CliRunner().invoke(main, ["validate", "losses", "rmse", "--backends", backend_list])
    assert result.exit_code == 2
    assert "onnx-ref" in result.output and result.output.startswith("error:")


def test_where_the_evaluator_raises_but_ort_runs_the_case_it_is_not_applicable():
    """ONNX's evaluator has limits of its own (e.g. GatherElements with indices smaller than
    the data): those cases are not applicable to it, never failures of the artifact."""
    report = validate_spec(catalog.get_spec("cross_entropy"), options=ARBITRATED)
    assert report.passed and not report.verdicts
    ran = [r for r in report.results if r.backend == "onnx-ref"]
    if ran:  # an onnx release that runs it: it must agree
        assert all(r.passed for r in ran)
    else:
        reason = report.skipped["onnx-ref"]
        assert reason.startswith("not applicable: the ONNX reference evaluator fails in "), reason


def test_a_baked_batch_is_classified_export(tmp_path):
    """Both runtimes refuse the other batches (the evaluator checks the declared input shapes as
    ORT does): the graph itself is wrong."""
    spec = catalog.get_spec("rmse")
    path = export_artifact(spec, fmt="onnx", dynamic=["time"], path=tmp_path / "r.onnx").path
    report = validate_artifact(path, ARBITRATED)
    assert not report.passed and kinds(report) == {"export"}
    assert all("raised" in v.detail and "the graph declares" in v.detail for v in report.verdicts)
    assert {v.output for v in report.verdicts} == {"loss"}  # no gradients in this artifact
