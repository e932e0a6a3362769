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

from lossport.artifact.runtime import DeviceUnavailable, OnnxArtifact, TorchScriptArtifact
from lossport.export.gradient import gradient_names
from lossport.spec import Spec
from lossport.spec.flatten import flatten_outputs

Outputs = Dict[str, np.ndarray]


class Backend(ABC):
    """A way of computing a spec's outputs (and gradients) from inputs.

    ``provides_gradients``: the backend returns ``grad_<input>`` for every differentiable
    input, so a missing one is a failure (not a gradient left unchecked).
    """

    name: str
    provides_gradients: bool = True
    note: str = ""  # how the backend's artifact was made, where that is worth saying

    def skip_reason(self) -> Optional[str]:
        """Why this backend cannot run here, or ``None`` when it can."""
        return None

    @abstractmethod
    def run(self, inputs: Sequence[torch.Tensor]) -> Outputs: ...


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def autograd_outputs(fn: Callable, spec: Spec, inputs: Sequence[torch.Tensor], with_grad: bool) -> Outputs:
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

    provides_gradients = True

    def __init__(
        self, module: nn.Module, spec: Spec, dtype: torch.dtype = torch.float64, with_grad: bool = True
    ) -> None:
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
    provides_gradients = True

    def __init__(self, path: Path, spec: Spec, with_grad: bool = True, note: str = "") -> None:
        self.artifact = TorchScriptArtifact(path)
        self.spec = spec
        self.with_grad = with_grad
        self.note = note

    def run(self, inputs):
        if not self.artifact.with_grad:
            return autograd_outputs(self.artifact, self.spec, inputs, self.with_grad)
        names = list(self.spec.outputs) + gradient_names(self.spec)
        return self.artifact.run_positional(inputs, names)


class OrtBackend(Backend):
    """ONNX Runtime on ``"cpu"`` or ``"cuda"`` (see :mod:`lossport.artifact.runtime`: TF32 off,
    no CPU fallback on CUDA). Gradients only where the artifact has them; a CUDA session that
    cannot start is reported as skipped, never silently replaced."""

    def __init__(self, path: Path, spec: Spec, device: str = "cpu") -> None:
        self.name = f"ort-{device}"
        self.path = Path(path)
        self.spec = spec
        self.device = device
        self._skip: Optional[str] = None
        self.artifact: Optional[OnnxArtifact] = None
        try:
            self.artifact = OnnxArtifact(self.path, device)
        except DeviceUnavailable as exc:
            self._skip = str(exc)
        self.provides_gradients = self.artifact is not None and self.artifact.with_grad

    def skip_reason(self):
        return self._skip

    def run(self, inputs):
        return self.artifact.run({t.name: v for t, v in zip(self.spec.inputs, inputs)})


class Unavailable(Backend):
    """A backend that cannot run the spec: ``reason`` says why. ``failed``: a failure (the
    artifact it needs could not be made) rather than not applicable."""

    def __init__(self, name: str, reason: str, failed: bool = False) -> None:
        self.name = name
        self.reason = reason
        self.failed = failed

    def skip_reason(self) -> Optional[str]:
        return self.reason

    def run(self, inputs):
        raise RuntimeError(self.reason)


def artifact_backends(path: Path, spec: Spec, devices: Sequence[str] = ("cpu",)) -> List[Backend]:
    """Backends that run the artifact at ``path``: TorchScript for ``.pt``, ORT per device for
    ``.onnx``. An artifact that cannot be loaded raises :class:`ArtifactError` here."""
    if Path(path).suffix.lower() == ".onnx":
        return [OrtBackend(path, spec, device) for device in devices]
    return [TorchScriptBackend(path, spec)]
