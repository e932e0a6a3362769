"""pt2 artifacts: the torch.export program (``--format pt2``) and AOTInductor packages
(``--aoti``): export, reload from disk, run at other batch sizes against eager computed here,
validation backends, the trust refusal for native code, and forged or corrupt files."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
import torch

from lossport import catalog
from lossport.artifact.metadata import read_artifact_info
from lossport.artifact.pt2 import AotiArtifact, Pt2Artifact, checked_program
from lossport.errors import ArtifactError
from lossport.export import export_artifact
from lossport.validation.export_check import verify_export
from lossport.validation.suite import ValidationOptions, validate_artifact, validate_spec
from tests.cli_runner import run_cli

MODULE_SOURCE = """
import torch


class Scaled(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.linspace(0.5, 1.5, 6))

    def forward(self, x, y):
        return ((x * self.weight - y) ** 2).mean(dim=1)
"""


@pytest.fixture(scope="module")
def focal_pt2(tmp_path_factory):
    path = tmp_path_factory.mktemp("pt2") / "focal_grad.pt2"
    spec = catalog.get_spec("focal")
    export_artifact(spec, fmt="pt2", path=path, with_grad=True, verify=verify_export)
    return path


def _focal_reference(logits, target):
    """Focal loss written out here (alpha 0.25, gamma 2, mean), with its autograd gradient."""
    logits = logits.detach().double().requires_grad_(True)
    target = target.double()
    p = logits.sigmoid()
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = 0.25 * target + 0.75 * (1 - target)
    loss = (alpha_t * ce * (1 - p_t) ** 2).mean()
    (grad,) = torch.autograd.grad(loss, logits)
    return loss.item(), grad


@pytest.mark.parametrize("batch", [1, 3, 7])
def test_pt2_gradient_program_runs_at_any_batch(focal_pt2, batch):
    spec = catalog.get_spec("focal")
    config = spec.resolve_config()
    assert config["alpha"] == 0.25 and config["gamma"] == 2.0 and config["reduction"] == "mean"
    artifact = Pt2Artifact(focal_pt2)
    logits = torch.randn(batch, 5, generator=torch.Generator().manual_seed(batch)) * 3
    target = (torch.rand(batch, 5, generator=torch.Generator().manual_seed(batch + 9)) > 0.5).float()
    got = artifact.run_positional([logits, target], ["loss", "grad_logits"])
    loss, grad = _focal_reference(logits, target)
    assert got["loss"].item() == pytest.approx(loss, rel=1e-5, abs=1e-7)
    torch.testing.assert_close(torch.from_numpy(got["grad_logits"]).double(), grad, rtol=1e-4, atol=1e-7)


def test_pt2_metadata_and_validate_artifact(focal_pt2):
    info = read_artifact_info(focal_pt2)
    assert (info.format, info.with_grad, info.outputs) == ("pt2", True, ["loss", "grad_logits"])
    report = validate_artifact(focal_pt2, ValidationOptions(backends=["pt2"]))
    assert report.passed and {r.backend for r in report.results} == {"pt2"}
    compared = {c.output for r in report.results for c in r.comparisons}
    assert compared == {"loss", "grad_logits"}


def test_validate_eager_and_pt2_backends():
    spec = catalog.get_spec("rmse")
    report = validate_spec(spec, options=ValidationOptions(backends=["eager", "pt2"]))
    assert report.passed, report.summary()
    assert {r.backend for r in report.results} == {"eager", "pt2"}
    assert "grad_prediction" in {
        c.output for r in report.results if r.backend == "pt2" for c in r.comparisons
    }


def test_export_module_command_pt2(tmp_path):
    (tmp_path / "scaled.py").write_text(MODULE_SOURCE)
    result = run_cli(
        "export", "module", "scaled.py:Scaled", "--input", "x:float32[batch,6]=-1..1",
        "--input", "y:float32[batch,6]=-1..1", "--format", "pt2", "--with-grad", "-o", "scaled.pt2",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    weight = torch.linspace(0.5, 1.5, 6)
    x, y = torch.rand(5, 6), torch.rand(5, 6)
    got = Pt2Artifact(tmp_path / "scaled.pt2").run_positional([x, y], ["output_0", "grad_x", "grad_y"])
    torch.testing.assert_close(torch.from_numpy(got["output_0"]), ((x * weight - y) ** 2).mean(1))
    torch.testing.assert_close(torch.from_numpy(got["grad_x"]), 2 * (x * weight - y) * weight / 6 * 1.0)


def test_tigas_small_pt2(tmp_path):
    spec = catalog.get_spec("tigas")
    config = spec.resolve_config(dict(spec.test_config))
    result = export_artifact(spec, fmt="pt2", path=tmp_path / "t.pt2", config=config, verify=verify_export)
    assert result.checks and all(r.passed for r in result.checks)


def _rewrite(source, target, change):
    """Copy the archive ``source`` to ``target`` with ``change(name, data) -> data | None``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info))
            if data is not None:
                new.writestr(info.filename, data)


def _program_change(edit):
    def change(name, data):
        if name.endswith("models/model.json"):
            program = json.loads(data)
            edit(program)
            return json.dumps(program)
        return data

    return change


FORGERIES = {
    "sympify": _program_change(
        lambda p: p["graph_module"]["graph"]["sym_int_values"].__setitem__(
            "sym_size_int_2", {"as_expr": {"expr_str": "__import__('os').getpid()", "hint": None}}
        )
    ),
    "guard": _program_change(lambda p: p.__setitem__("guards_code", ["__import__('os').getpid() > 0"])),
    "target": _program_change(lambda p: p["graph_module"]["graph"]["nodes"][0].__setitem__("target", "torch.os.system")),
    "pickle": lambda name, data: b"\x80\x04K\x01." if name.endswith("sample_inputs/model.pt") else data,
    "native": lambda name, data: data,  # plus an aotinductor entry, below
}  # fmt: skip


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_pt2_is_refused_in_one_line(focal_pt2, tmp_path, forgery):
    forged = tmp_path / "forged.pt2"
    _rewrite(focal_pt2, forged, FORGERIES[forgery])
    if forgery == "native":
        with zipfile.ZipFile(forged, "a") as archive:
            root = archive.namelist()[0].split("/")[0]
            archive.writestr(f"{root}/data/aotinductor/model/x.so", b"\x7fELF")
    with pytest.raises(ArtifactError, match="not a plain torch.export program"):
        checked_program(forged)
    result = run_cli("validate", "artifact", forged, "--backends", "pt2", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.output.count("\n") <= 2 and "Traceback" not in result.output
    assert "error:" in result.output


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04garbage", b"not a zip at all"])
def test_corrupt_pt2_export_target_and_validation(tmp_path, content):
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(content)
    result = run_cli("validate", "artifact", bad, cwd=tmp_path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt2"]


def test_aoti_needs_trust_without_loading(focal_pt2, tmp_path):
    """A file whose metadata says aoti is refused before anything in it is loaded."""
    forged = tmp_path / "pkg.pt2"
    shutil.copy(focal_pt2, forged)

    def as_aoti(name, data):
        return b"aoti" if name.endswith("extra/lossport.format") else data

    _rewrite(focal_pt2, forged, as_aoti)
    result = run_cli("validate", "artifact", forged, cwd=tmp_path)
    assert result.exit_code == 2
    assert "--trust-artifact" in result.output and result.output.count("\n") <= 2
    with pytest.raises(ArtifactError, match="--trust-artifact"):
        AotiArtifact(forged, trusted=False)


def test_aoti_cuda_is_skipped_or_required(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: aoti-cuda runs for real")
    spec = catalog.get_spec("rmse")
    report = validate_spec(spec, options=ValidationOptions(backends=["eager", "aoti-cuda"]))
    assert report.passed and "aoti-cuda" in report.skipped
    required = validate_spec(
        spec, options=ValidationOptions(backends=["eager", "aoti-cuda"], require_cuda=True)
    )
    assert not required.passed
    result = run_cli("export", "loss", "rmse", "--format", "pt2", "--aoti", "--device", "cuda", cwd=tmp_path)
    assert result.exit_code == 2 and result.output.startswith("error: --device cuda")
    assert list(tmp_path.iterdir()) == []


def test_aoti_package_of_a_small_loss(tmp_path):
    """The one AOTInductor compile of the default run: the smallest loss, with its gradient."""
    result = run_cli(
        "export", "loss", "rmse", "--format", "pt2", "--aoti", "--with-grad", "-o", "r.pt2", cwd=tmp_path
    )
    assert result.exit_code == 0, result.output
    assert read_artifact_info(tmp_path / "r.pt2").format == "aoti"
    prediction, target = torch.rand(3, 9), torch.rand(3, 9)
    got = AotiArtifact(tmp_path / "r.pt2", trusted=True).run_positional(
        [prediction, target], ["loss", "grad_prediction"]
    )
    diff = prediction.double() - target.double()
    rmse = (diff.pow(2).mean() + 1e-6).sqrt()  # the spec's default eps
    assert got["loss"].item() == pytest.approx(rmse.item(), rel=1e-5)
    torch.testing.assert_close(
        torch.from_numpy(got["grad_prediction"]).double(), diff / (diff.numel() * rmse), rtol=1e-4, atol=1e-7
    )
    trusted = run_cli("validate", "artifact", "r.pt2", "--trust-artifact", cwd=tmp_path)
    assert trusted.exit_code == 0, trusted.output
