"""Backends: one small interface over eager PyTorch, a saved TorchScript file, ONNX Runtime on
CPU or CUDA, ONNX's reference evaluator (``onnx-ref``) and saved ``.pt2`` files (the
``torch.export`` program, AOTInductor packages on CPU or CUDA).

``run(inputs)`` returns ``{name: float64/int64 numpy array}`` for the spec's outputs and, where
the backend computes them, the gradients ``grad_<input>`` of the spec's objective w.r.t. each
differentiable input. Artifact backends always run the *saved file*, loaded from disk.

``onnx-ref`` runs the same ONNX artifact with ``onnx.reference.ReferenceEvaluator``: numpy
implementations of the ONNX operator specifications, independent of ONNX Runtime's kernels
and graph optimizations. It is the arbiter of :mod:`lossport.validation.arbiter`; it is slow
(pure numpy), so it is opt-in (``--backends ...,onnx-ref``), and an artifact with an op it
lacks makes it not applicable, with the reason.
"""

from __future__ import annotations

import copy
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from lossport.artifact.devices import DeviceUnavailable, prepare_torch_device
from lossport.artifact.metadata import read_any_metadata
from lossport.artifact.pt2 import AotiArtifact, Pt2Artifact
from lossport.artifact.runtime import OffDevice, OnnxArtifact, TorchScriptArtifact
from lossport.errors import ArtifactError, brief_reason
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


class NotApplicable(Exception):
    """Raised by ``run`` when the backend cannot run the artifact at all (an op or attribute
    its implementation lacks): the backend is then reported as not applicable, not failed."""


class Cached(Backend):
    """``backend`` with the outputs of each input tuple computed once (tuples are told apart by
    identity: validation cases hold theirs for the whole run). Exceptions are cached too."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.name = backend.name
        self.provides_gradients = backend.provides_gradients
        self._outputs: Dict[int, Tuple[Any, Any]] = {}

    def run(self, inputs):
        key = id(inputs)
        if key not in self._outputs:
            try:
                self._outputs[key] = (inputs, self.backend.run(inputs))
            except Exception as exc:  # re-raised on every call, as the backend would
                self._outputs[key] = (inputs, exc)
        value = self._outputs[key][1]
        if isinstance(value, Exception):
            raise value
        return value


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
                zero = grad is None or grad._is_zerotensor()  # PyTorch's symbolic zero gradient
                result[name] = _numpy(torch.zeros_like(value) if zero else grad)
    return result


class EagerBackend(Backend):
    """The eager module in ``dtype`` on ``device``: the reference (float64 on the CPU where the
    spec allows), ``eager`` (float32) and ``eager-cuda`` (float32 on a CUDA device, with
    :func:`~lossport.artifact.devices.strict_cuda_numerics`)."""

    provides_gradients = True

    def __init__(
        self,
        module: nn.Module,
        spec: Spec,
        dtype: torch.dtype = torch.float64,
        with_grad: bool = True,
        device: str = "cpu",
    ) -> None:
        self.name = "eager" if dtype == torch.float32 else f"eager-{str(dtype).split('.')[-1]}"
        self.name += "-cuda" if device == "cuda" else ""
        prepare_torch_device(device)
        self.module = copy.deepcopy(module).to(dtype=dtype, device=device).eval()
        self.spec = spec
        self.dtype = dtype
        self.device = device
        self.with_grad = with_grad

    def run(self, inputs):
        cast = [(t.to(self.dtype) if t.is_floating_point() else t).to(self.device) for t in inputs]
        return autograd_outputs(self.module, self.spec, cast, self.with_grad)


def reference_backend(module: nn.Module, spec: Spec) -> EagerBackend:
    """The reference every backend is compared with: eager in float64 where the spec allows."""
    return EagerBackend(module, spec, torch.float64 if spec.float64 else torch.float32)


class TorchScriptBackend(Backend):
    """A saved TorchScript artifact, loaded onto ``device`` (``torchscript``, ``torchscript-cuda``).
    Gradients come from the artifact itself when it was exported ``--with-grad``, else from
    autograd through the loaded module. A device that cannot run here makes it skipped."""

    provides_gradients = True

    def __init__(
        self, path: Path, spec: Spec, with_grad: bool = True, note: str = "", device: str = "cpu"
    ) -> None:
        self.name = "torchscript" + ("-cuda" if device == "cuda" else "")
        self.path = Path(path)
        self._skip: Optional[str] = None
        try:
            self.artifact = TorchScriptArtifact(path, device)
        except DeviceUnavailable as exc:
            self._skip = str(exc)
        self.spec = spec
        self.with_grad = with_grad
        self.note = note

    def skip_reason(self):
        return self._skip

    def run(self, inputs):
        if not self.artifact.with_grad:
            return autograd_outputs(self.artifact, self.spec, inputs, self.with_grad)
        names = list(self.spec.outputs) + gradient_names(self.spec)
        return self.artifact.run_positional(inputs, names)


class Pt2Backend(Backend):
    """A saved ``.pt2`` artifact run from disk: the ``torch.export`` program (``pt2``, run with
    ``.module()``) or an AOTInductor package (``aoti``, ``aoti-cuda``: native code, so only a
    package lossport compiled itself or one the user trusts reaches this). Gradients only where
    the artifact has them; a device that cannot run here makes it skipped."""

    def __init__(self, path: Path, spec: Spec, fmt: str = "pt2", device: str = "cpu") -> None:
        self.name = fmt + ("-cuda" if device == "cuda" else "")
        self.path = Path(path)
        self.spec = spec
        self._skip: Optional[str] = None
        try:
            self.artifact = (
                Pt2Artifact(self.path, device)
                if fmt == "pt2"
                else AotiArtifact(self.path, device, trusted=True)
            )
        except DeviceUnavailable as exc:
            self._skip = str(exc)
        self.provides_gradients = read_any_metadata(self.path).get("with_grad") == "true"

    def skip_reason(self):
        return self._skip

    def run(self, inputs):
        names = list(self.spec.outputs) + (gradient_names(self.spec) if self.provides_gradients else [])
        return self.artifact.run_positional(inputs, names)


class OnnxBackend(Backend):
    """A backend running an ONNX artifact (``path``). It also runs other ONNX models the same
    way (``run_model``): the artifact with intermediate values exposed (``--localize``) and
    subgraphs of it (``--repro``)."""

    path: Path

    def feeds(self, inputs: Sequence[torch.Tensor]) -> Dict[str, np.ndarray]:
        return {t.name: _numpy(v) for t, v in zip(self.spec.inputs, inputs)}

    @abstractmethod
    def run_model(self, model: Any, feeds: Mapping[str, np.ndarray]) -> Outputs:
        """Every output of ``model`` (an ``onnx.ModelProto``) by name; ``feeds`` may name
        inputs the model does not have."""


class OrtBackend(OnnxBackend):
    """ONNX Runtime on ``"cpu"`` or ``"cuda"`` (see :mod:`lossport.artifact.runtime`: TF32 off,
    no CPU fallback on CUDA). Gradients only where the artifact has them; a CUDA session that
    cannot start is reported as skipped, never silently replaced; one that would run nodes on
    the CPU fails every case, naming the nodes."""

    def __init__(self, path: Path, spec: Spec, device: str = "cpu") -> None:
        self.name = f"ort-{device}"
        self.path = Path(path)
        self.spec = spec
        self.device = device
        self._skip: Optional[str] = None
        self._failure: Optional[OffDevice] = None
        self.artifact: Optional[OnnxArtifact] = None
        try:
            self.artifact = OnnxArtifact(self.path, device)
        except DeviceUnavailable as exc:
            self._skip = str(exc)
        except OffDevice as exc:
            self._failure = exc
        self.provides_gradients = self.artifact is not None and self.artifact.with_grad

    def skip_reason(self):
        return self._skip

    def run(self, inputs):
        if self._failure is not None:
            raise self._failure
        return self.artifact.run({t.name: v for t, v in zip(self.spec.inputs, inputs)})

    def run_model(self, model, feeds):
        """``model`` in a session made as the artifact's (same device, options, providers)."""
        import onnx

        with tempfile.TemporaryDirectory(prefix="lossport-model-") as folder:
            path = Path(folder) / "model.onnx"
            onnx.save(model, str(path))
            return OnnxArtifact(path, self.device).run(feeds)


class EvaluatorError(Exception):
    """The ONNX reference evaluator raised while running a graph; the message names the op.
    Where ONNX Runtime runs the same case, that is a limit of the evaluator (the case is not
    applicable to it), else a graph no runtime can run (see :mod:`lossport.validation.suite`)."""


def _failing_op(exc: BaseException) -> str:
    """The op type of the evaluator's op implementation a traceback ends in ("" if none)."""
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        node = getattr(tb.tb_frame.f_locals.get("self"), "onnx_node", None)
        found = getattr(node, "op_type", found) or found
        tb = tb.tb_next
    return found


class OnnxRefBackend(OnnxBackend):
    """The ONNX artifact at ``path`` run by ``onnx.reference.ReferenceEvaluator`` (float32 numpy,
    no graph optimizations). Not applicable, with the reason, where the evaluator lacks an op;
    :class:`EvaluatorError` (naming the op) where it raises otherwise."""

    name = "onnx-ref"

    def __init__(self, path: Path, spec: Spec) -> None:
        import onnx

        self.path = Path(path)
        self.spec = spec
        self._skip: Optional[str] = None
        self.evaluator: Any = None
        try:
            model = onnx.load(str(self.path))
        except Exception as exc:  # protobuf's decode errors come as several types
            raise ArtifactError(f"{self.path}: not a loadable ONNX model ({brief_reason(exc)})") from None
        self.declared = declared_shapes(model)
        try:
            self.evaluator = _reference_evaluator(model)
        except Exception as exc:  # NotImplementedError for a missing op; others for what it cannot load
            self._skip = f"not applicable: the ONNX reference evaluator cannot run it ({brief_reason(exc)})"
        self.provides_gradients = read_any_metadata(self.path).get("with_grad") == "true"

    def skip_reason(self):
        return self._skip

    def run(self, inputs):
        return self._evaluate(self.evaluator, self.declared, self.feeds(inputs))

    def run_model(self, model, feeds):
        try:
            evaluator = _reference_evaluator(model)
        except NotImplementedError as exc:
            raise NotApplicable(f"not applicable: {brief_reason(exc)}") from None
        return self._evaluate(evaluator, declared_shapes(model), feeds)

    @staticmethod
    def _evaluate(evaluator: Any, declared: Mapping[str, Any], feeds: Mapping[str, np.ndarray]) -> Outputs:
        wanted = {k: v for k, v in feeds.items() if k in evaluator.input_names}
        for name, value in wanted.items():
            dims = declared.get(name)
            if dims is not None and (
                len(dims) != np.ndim(value)
                or any(d is not None and d != n for d, n in zip(dims, np.shape(value)))
            ):
                # ONNX Runtime refuses such an input too; the evaluator would not check
                raise ValueError(
                    f"input {name!r} has shape {list(np.shape(value))}, the graph declares "
                    f"{['?' if d is None else d for d in dims]}"
                )
        try:
            values = evaluator.run(None, wanted)
        except NotImplementedError as exc:
            raise NotApplicable(
                f"not applicable: the ONNX reference evaluator lacks what this artifact needs "
                f"({brief_reason(exc)})"
            ) from None
        except Exception as exc:  # numpy's and the evaluator's own errors come as many types
            op = _failing_op(exc)
            raise EvaluatorError(
                f"the ONNX reference evaluator fails{' in ' + op if op else ''}: {brief_reason(exc)}"
            ) from None
        return {name: np.asarray(value) for name, value in zip(evaluator.output_names, values)}


def declared_shapes(model: Any) -> Dict[str, Optional[List[Optional[int]]]]:
    """Each graph input's declared dims (``None`` for a symbolic one; ``None`` for no shape)."""
    shapes: Dict[str, Optional[List[Optional[int]]]] = {}
    for value in model.graph.input:
        tensor = value.type.tensor_type
        shapes[value.name] = (
            [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
            if tensor.HasField("shape")
            else None
        )
    return shapes


def _reference_evaluator(model: Any) -> Any:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model)


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
