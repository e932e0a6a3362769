"""`lossport export module` / `validate module` and user specs (--specs, LOSSPORT_SPECS)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import onnx
import pytest
from cli_runner import run_cli as run

from lossport import catalog

USER_MODULES = Path(__file__).resolve().parents[1] / "api" / "user_modules.py"


def test_export_module_from_a_file_with_dims_and_ranges(tmp_path):
    result = run(
        "export",
        "module",
        f"{USER_MODULES}:PerceptualLoss",
        "--input",
        "prediction:float32[batch,3,height=12,width=10]=0..1",
        "--input",
        "target:float32[batch,3,height,width]=0..1",
        "--no-grad",
        "target",
        "--set",
        "channels=3",
        "--with-grad",
        "-o",
        "p.onnx",
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert "checked on 2 runs" in result.output
    model = onnx.load(str(tmp_path / "p.onnx"))
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["lossport.outputs"]) == ["output_0", "grad_prediction"]
    assert json.loads(props["lossport.config"]) == {"channels": 3}
    assert json.loads(props["lossport.dynamic_axes"]) == ["batch", "height", "width"]
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input]
    assert dims == [["batch", 3, "height", "width"]] * 2


def test_validate_module_from_an_importable_module_with_int_inputs(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(USER_MODULES.parent))
    result = run(
        "validate",
        "module",
        "user_modules:make_classifier",
        "--input",
        "x:float32[batch,6]",
        "--input",
        "labels:int64[batch]=0..3",
        "--backends",
        "eager,torchscript,ort-cpu",
        "--json",
        "r.json",
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] and data["specs"][0]["spec"] == "make_classifier"
    outputs = {c["output"] for r in data["specs"][0]["results"] for c in r["comparisons"]}
    assert outputs == {"loss", "logits", "grad_x"}


def test_validate_module_torchscript_not_applicable_is_a_skip_not_an_abort(tmp_path):
    result = run(
        "validate",
        "module",
        f"{USER_MODULES}:ShapeBaked",
        "--input",
        "x:float32[batch=2,5]",
        "--backends",
        "torchscript,ort-cpu",
        cwd=tmp_path,
    )
    assert "skipped torchscript: not applicable: " in result.output
    assert "ort-cpu" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["nofile.py:X", "--input", "x:float32[2]"], "no such file"),
        (["{modules}", "--input", "x:float32[2]"], "expected SOURCE:FACTORY"),
        (["{modules}:Nope", "--input", "x:float32[2]"], "has no 'Nope'"),
        (["no_such_package_xyz:X", "--input", "x:float32[2]"], "importing it failed"),
        (["{modules}:PerceptualLoss"], "give every forward argument"),
        (["{modules}:PerceptualLoss", "--input", "x:float16[2]"], "dtype float16"),
        (["{modules}:PerceptualLoss", "--input", "x float32"], "expected NAME:DTYPE"),
        (["{modules}:PerceptualLoss", "--input", "x:int64[2]"], "needs its range"),
        (["{modules}:PerceptualLoss", "--input", "x:float32[2]=1..0"], "LOW <= HIGH"),
        (["{modules}:PerceptualLoss", "--input", "x:float32[2]=0..inf"], "finite"),
        (["{modules}:PerceptualLoss", "--input", "x:float32[2,3!]"], "dim '3!'"),
        (["{modules}:PerceptualLoss", "--input", "x:float32[b=2]", "--input", "y:float32[b=3]"], "b=3"),
        (["{modules}:PerceptualLoss", "--input", "x:float32[2]", "--no-grad", "z"], "--no-grad z"),
        (
            ["{modules}:PerceptualLoss", "--input", "x:float32[2]", "--set", "channels=NaN"],
            "not a finite number",
        ),
        (["{modules}:PerceptualLoss", "--input", "x:float32[2]", "--set", "nope=1"], "failed: TypeError"),
        (
            ["{modules}:PerceptualLoss", "--input", "x:float32[2]"],
            "running the module on its example inputs failed",
        ),
    ],
)
def test_bad_module_arguments(tmp_path, args, message):
    args = [a.format(modules=USER_MODULES) for a in args]
    for command in (["export", "module", *args, "-o", "m.onnx"], ["validate", "module", *args]):
        result = run(*command, cwd=tmp_path)
        assert result.exit_code == 2, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and message in errors[0], result.output
        assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []


SPECS_FILE = """
import torch
from lossport import Spec, TensorSpec, register
from lossport.spec.domains import Real


def huber_sum(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.huber_loss(prediction, target, reduction="sum")


class HuberSum(torch.nn.Module):
    def __init__(self, delta: float = 1.0):
        super().__init__()
        self.delta = delta

    def forward(self, prediction, target):
        return torch.nn.functional.huber_loss(prediction, target, reduction="sum", delta=self.delta)


register(Spec(
    name="user_huber", build=HuberSum, outputs=("loss",), source="test", summary="user spec",
    inputs=(TensorSpec("prediction", ("batch", 3), Real(), differentiable=True),
            TensorSpec("target", ("batch", 3), Real())),
    shapes=({"batch": 4}, {"batch": 7}),
))
"""


@pytest.fixture
def specs_file(tmp_path):
    path = tmp_path / "my_specs.py"
    path.write_text(textwrap.dedent(SPECS_FILE))
    yield path
    from lossport.spec.registration import withdraw

    withdraw("user_huber")
    catalog._loaded.discard(os.path.realpath(path))


def test_user_specs_in_list_export_validate_and_jobs(tmp_path, specs_file, monkeypatch):
    monkeypatch.delenv(catalog.SPECS_ENV, raising=False)
    listed = run("list", "losses", "--specs", specs_file, cwd=tmp_path)
    assert listed.exit_code == 0 and "user_huber" in listed.output
    exported = run(
        "export", "loss", "user_huber", "--specs", specs_file, "--with-grad", "-o", "h.onnx", cwd=tmp_path
    )
    assert exported.exit_code == 0, exported.output
    validated = run(
        "validate", "artifact", "h.onnx", "--specs", specs_file, "--backends", "ort-cpu", cwd=tmp_path
    )
    assert validated.exit_code == 0, validated.output
    in_workers = run(
        "validate",
        "losses",
        "user_huber",
        "rmse",
        "--specs",
        specs_file,
        "--jobs",
        "2",
        "--backends",
        "eager,ort-cpu",
        cwd=tmp_path,
    )
    assert in_workers.exit_code == 0, in_workers.output
    assert "user_huber" in in_workers.output and "rmse" in in_workers.output


def test_user_specs_from_the_environment(tmp_path, specs_file, monkeypatch):
    monkeypatch.setenv(catalog.SPECS_ENV, str(specs_file))
    listed = run("list", "losses", "--json", cwd=tmp_path)
    assert listed.exit_code == 0
    assert "user_huber" in {s["name"] for s in json.loads(listed.output)}


def test_a_broken_specs_file_is_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('oops')\n")
    result = run("list", "--specs", broken, cwd=tmp_path)
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --specs {broken}: importing it failed (RuntimeError: oops)"


def test_user_specs_from_an_entry_point(tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    plugin = tmp_path / "lossport_plugin_demo.py"
    plugin.write_text(textwrap.dedent(SPECS_FILE).replace("user_huber", "plugin_huber"))
    monkeypatch.syspath_prepend(str(tmp_path))
    point = EntryPoint(name="demo", value="lossport_plugin_demo", group=catalog.ENTRY_POINT_GROUP)
    monkeypatch.setattr(
        catalog.metadata, "entry_points", lambda group: [point] if group == point.group else []
    )
    monkeypatch.setattr(catalog, "_loaded", set())
    try:
        assert "plugin_huber" in {s.name for s in catalog.all_specs("loss")}
    finally:
        from lossport.spec.registration import withdraw

        withdraw("plugin_huber")


def test_a_broken_entry_point_is_named(tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    point = EntryPoint(name="broken", value="no_such_module_xyz", group=catalog.ENTRY_POINT_GROUP)
    monkeypatch.setattr(
        catalog.metadata, "entry_points", lambda group: [point] if group == point.group else []
    )
    monkeypatch.setattr(catalog, "_loaded", set())
    result = run("list", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.output.startswith("error: entry point broken = no_such_module_xyz (lossport.specs) failed")
