"""Backends: one small interface over eager PyTorch, a saved TorchScript file, and ONNX Runtime
on CPU or CUDA.

``run(inputs)`` returns ``{name: float64/int64 numpy array}`` for the spec's outputs and, where
the backend computes them, the gradients ``grad_<input>`` of the spec's objective w.r.t. each
differentiable input. Artifact backends always run the *saved file*, loaded from disk.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from lossport.errors import ArtifactError
from lossport.export.gradient import gradient_names
from lossport.export.metadata import read_metadata
from lossport.export.torchscript import load_torchscript
from lossport.flatten import flatten_outputs
from lossport.registry import Spec

Outputs = Dict[str, np.ndarray]


class Backend(ABC):
    """A way of computing a spec's outputs (and gradients) from inputs."""

    name: str

    def skip_reason(self) -> Optional[str]:
        """Why this backend cannot run here, or ``None`` when it can."""
        return None

    @abstractmethod
    def run(self, inputs: Sequence[torch.Tensor]) -> Outputs:
        ...


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def autograd_outputs(fn: Callable, spec: Spec, inputs: Sequence[torch.Tensor],
                     with_grad: bool) -> Outputs:
    """Run ``fn`` and, with ``with_grad``, differentiate the spec's objective by autograd."""
    inputs = [t.detach().clone() for t in inputs]
    diff = [inputs[i].requires_grad_(True) for i, t in enumerate(spec.inputs) if t.differentiable]
    with torch.enable_grad():
        outputs = flatten_outputs(fn(*inputs))
        result = {name: _numpy(out) for name, out in zip(spec.outputs, outputs)}
        if with_grad and diff:
            objective = spec.objective(outputs[spec.grad_output_index])
            grads = torch.autograd.grad(objective, diff, allow_unused=True)
            for name, grad, value in zip(gradient_names(spec), grads, diff):
                result[name] = _numpy(torch.zeros_like(value) if grad is None else grad)
    return result


class EagerBackend(Backend):
    """The reference: the eager module, in ``dtype`` (float64 where the spec allows)."""

    def __init__(self, module: nn.Module, spec: Spec, dtype: torch.dtype = torch.float64,
                 with_grad: bool = True) -> None:
        self.name = "eager" if dtype == torch.float32 else f"eager-{str(dtype).split('.')[-1]}"
        self.module = copy.deepcopy(module).to(dtype).eval()
        self.spec = spec
        self.dtype = dtype
        self.with_grad = with_grad

    def run(self, inputs):
        cast = [t.to(self.dtype) if t.is_floating_point() else t for t in inputs]
        return autograd_outputs(self.module, self.spec, cast, self.with_grad)


def reference_backend(module: nn.Module, spec: Spec) -> EagerBackend:
    """The reference every backend is compared with: eager in float64 where the spec allows."""
    return EagerBackend(module, spec, torch.float64 if spec.float64 else torch.float32)


class TorchScriptBackend(Backend):
    """A saved TorchScript artifact. Gradients come from the artifact itself when it was
    exported ``--with-grad``, else from autograd through the loaded module."""

    name = "torchscript"

    def __init__(self, path: Path, spec: Spec, with_grad: bool = True) -> None:
        self.module = load_torchscript(path)
        self.spec = spec
        self.with_grad = with_grad
        self.has_grad_outputs = read_metadata(path).get("with_grad") == "true"

    def run(self, inputs):
        if not self.has_grad_outputs:
            return autograd_outputs(self.module, self.spec, inputs, self.with_grad)
        names = list(self.spec.outputs) + gradient_names(self.spec)
        with torch.enable_grad():
            return {n: _numpy(v) for n, v in zip(names, flatten_outputs(self.module(*inputs)))}


class OrtBackend(Backend):
    """ONNX Runtime on ``"cpu"`` or ``"cuda"``. Gradients only where the artifact has them.

    CUDA: TF32 off (``use_tf32=0``), and the provider the session *actually* uses is checked;
    a session that would run on CPU is reported as skipped, never silently used.
    """

    def __init__(self, path: Path, spec: Spec, device: str = "cpu") -> None:
        self.name = f"ort-{device}"
        self.path = Path(path)
        self.spec = spec
        self.device = device
        self._session = None
        self._skip: Optional[str] = None
        if device == "cuda":
            self._skip = self._open_cuda()

    def _options(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        return options

    def _open_cuda(self) -> Optional[str]:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "this onnxruntime build has no CUDA provider (install onnxruntime-gpu)"
        if not _cuda_device_present():
            return "no CUDA device is visible"
        try:
            session = ort.InferenceSession(
                str(self.path), self._options(),
                providers=[("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"])
        except Exception as exc:  # provider load failures surface as various ORT errors
            return f"the CUDA provider failed to start: {exc}"
        used = session.get_providers()
        if not used or used[0] != "CUDAExecutionProvider":
            return f"the session would run on {used[0] if used else 'nothing'}, not CUDA"
        self._session = session
        return None

    def skip_reason(self):
        return self._skip

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort

            try:
                self._session = ort.InferenceSession(str(self.path), self._options(),
                                                     providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise ArtifactError(f"{self.path}: ONNX Runtime cannot load it: {exc}") from exc
        return self._session

    def run(self, inputs):
        session = self.session
        wanted = {i.name for i in session.get_inputs()}
        feeds = {t.name: _numpy(v) for t, v in zip(self.spec.inputs, inputs) if t.name in wanted}
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feeds)))


def _cuda_device_present() -> bool:
    """Whether a CUDA device exists, asked of the driver without needing torch's CUDA build."""
    import ctypes

    for library in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            driver = ctypes.CDLL(library)
        except OSError:
            continue
        count = ctypes.c_int(0)
        return driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    return False


def artifact_backends(path: Path, spec: Spec, devices: Sequence[str] = ("cpu",)) -> List[Backend]:
    """Backends that run the artifact at ``path``: TorchScript for ``.pt``, ORT per device for
    ``.onnx``."""
    if Path(path).suffix == ".onnx":
        return [OrtBackend(path, spec, device) for device in devices]
    return [TorchScriptBackend(path, spec)]
