"""The CUDA backends without a GPU: every one is skipped with its reason (costing no export),
``--require-cuda`` turns each skip into a failure, and a CUDA session ONNX Runtime refuses is
told apart: a provider that cannot start is a skip, nodes without a CUDA kernel a failure that
names them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import onnx
import pytest
from onnx import TensorProto, helper

from lossport import catalog
from lossport.artifact import devices, runtime
from lossport.artifact.devices import DeviceUnavailable
from lossport.artifact.runtime import OffDevice, OnnxArtifact, cuda_refusal
from lossport.errors import ConfigError
from lossport.validation import registry, suite
from lossport.validation.backends import OrtBackend
from lossport.validation.registry import CUDA_BACKENDS, KINDS
from lossport.validation.suite import ValidationOptions, validate_spec

CPU_TORCH = "torch is a CPU build here"


@pytest.fixture
def no_cuda(monkeypatch):
    """Every CUDA backend says it cannot run, whatever this machine has."""
    unavailable = {
        name: dataclasses.replace(KINDS[name], unavailable=lambda: CPU_TORCH) for name in CUDA_BACKENDS
    }
    monkeypatch.setattr(registry, "KINDS", {**KINDS, **unavailable})


def test_every_cuda_backend_is_registered_on_the_cuda_device():
    assert set(CUDA_BACKENDS) >= {"eager-cuda", "torchscript-cuda", "ort-cuda"}
    assert all(KINDS[name].device == "cuda" for name in CUDA_BACKENDS)


def test_cuda_backends_skip_with_their_reason_and_export_nothing(no_cuda, monkeypatch):
    exported = []
    real_export = suite.export_artifact
    monkeypatch.setattr(
        suite, "export_artifact", lambda *a, **k: exported.append(k["fmt"]) or real_export(*a, **k)
    )
    names = ("eager-cuda", "torchscript-cuda", "ort-cuda")
    report = validate_spec(catalog.get_spec("rmse"), options=ValidationOptions(backends=names))
    assert report.passed and not report.results
    assert report.skipped == dict.fromkeys(names, CPU_TORCH)
    assert exported == []


def test_require_cuda_fails_each_cuda_backend_that_cannot_run(no_cuda):
    names = ("eager", "eager-cuda", "torchscript-cuda")
    report = validate_spec(
        catalog.get_spec("rmse"), options=ValidationOptions(backends=names, require_cuda=True)
    )
    assert not report.passed
    failed = {r.backend for r in report.results if not r.passed}
    assert failed == {"eager-cuda", "torchscript-cuda"}
    assert all(f"--require-cuda: {CPU_TORCH}" == r.error for r in report.results if not r.passed)


def test_require_cuda_needs_a_cuda_backend():
    with pytest.raises(ConfigError, match="needs a CUDA backend"):
        ValidationOptions(backends=("eager", "ort-cpu"), require_cuda=True)


def test_the_torch_cuda_check_names_a_cpu_build(monkeypatch):
    monkeypatch.setattr(devices.torch.version, "cuda", None)
    assert "CPU build" in devices.torch_cuda_unavailable()


def _relu_model(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu_0")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_a_cuda_provider_that_cannot_start_is_a_skip_not_a_failure(tmp_path, monkeypatch):
    """A real ONNX Runtime session with the CPU fallback disabled and no working CUDA provider:
    refused with the same message as a graph with CPU-only nodes, reported as unavailable."""
    monkeypatch.setattr(runtime, "_cuda_providers", lambda ort: [])
    with pytest.raises(DeviceUnavailable, match="could not start"):
        OnnxArtifact(_relu_model(tmp_path / "m.onnx"), "cuda")


class _Session:
    """ONNX Runtime's session as :func:`cuda_refusal` sees it, on a GPU machine."""

    def __init__(self, path, options, providers):
        self.placed = {"CUDAExecutionProvider": ["conv_0 (Conv)"], "CPUExecutionProvider": ["topk_3 (TopK)"]}

    def get_providers(self):
        return list(self.placed)

    def get_provider_graph_assignment_info(self):
        return [
            SimpleNamespace(
                ep_name=ep,
                get_nodes=lambda nodes=nodes: [
                    SimpleNamespace(name=n.split()[0], op_type=n.split()[1][1:-1]) for n in nodes
                ],
            )
            for ep, nodes in self.placed.items()
        ]


def test_nodes_left_on_the_cpu_are_a_failure_naming_them(tmp_path):
    fake_ort = SimpleNamespace(
        SessionOptions=lambda: SimpleNamespace(add_session_config_entry=lambda k, v: None),
        InferenceSession=_Session,
    )
    refusal = cuda_refusal(fake_ort, tmp_path / "m.onnx", [])
    assert isinstance(refusal, OffDevice)
    assert refusal.nodes == ["topk_3 (TopK)"]
    assert "topk_3 (TopK)" in str(refusal) and "conv_0" not in str(refusal)


def test_an_off_device_session_fails_every_case_of_the_ort_cuda_backend(tmp_path, monkeypatch):
    spec = catalog.get_spec("rmse")
    path = tmp_path / "rmse.onnx"
    suite.export_artifact(spec, fmt="onnx", path=path)

    def refused(self, artifact_path, device):
        raise OffDevice(artifact_path, ["sub_1 (Sub)"])

    monkeypatch.setattr(OnnxArtifact, "__init__", refused)
    backend = OrtBackend(path, spec, "cuda")
    assert backend.skip_reason() is None
    with pytest.raises(OffDevice, match=r"sub_1 \(Sub\)"):
        backend.run([])
