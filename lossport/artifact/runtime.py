"""Open an exported artifact as something that runs: ONNX Runtime for ``.onnx``, TorchScript
for ``.pt``, on the CPU or a CUDA device.

Both kinds take named inputs and return ``{output name: numpy array}``. Every failure to load
is one :class:`~lossport.errors.ArtifactError`; a device that cannot run here raises
:class:`DeviceUnavailable` with the reason (callers report it as skipped, or fail under
``--require-cuda``). Nothing falls back to the CPU silently: a CUDA session is created with
ONNX Runtime's CPU fallback disabled, and the providers it actually uses are checked.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from lossport.artifact.devices import (
    DeviceUnavailable,
    ort_cuda_unavailable,
    prepare_torch_device,
)
from lossport.artifact.metadata import preprocess_of, read_any_metadata
from lossport.errors import ArtifactError, LossportError, brief_reason
from lossport.spec.flatten import flatten_outputs
from lossport.spec.preprocess import Preprocess


class OffDevice(ArtifactError):
    """ONNX Runtime would run some of the artifact's nodes on the CPU, not on the requested GPU:
    a failure of the artifact on that device (not a skip), naming the nodes."""

    def __init__(self, path: Path, nodes: Sequence[str]) -> None:
        shown = ", ".join(nodes[:8]) + (f" and {len(nodes) - 8} more" if len(nodes) > 8 else "")
        super().__init__(
            f"{path}: ONNX Runtime's CUDA provider cannot run {len(nodes)} node(s), which would "
            f"fall back to the CPU: {shown or 'names not reported'}"
        )
        self.nodes = list(nodes)


# ONNX Runtime's message when a session with session.disable_cpu_ep_fallback needs the CPU
FALLBACK_REFUSED = "fallback to CPU EP has been explicitly disabled"


class OnnxArtifact:
    """An ``.onnx`` file in an ONNX Runtime session (graph optimizations on, TF32 off on CUDA);
    ``threads``: ONNX Runtime's intra-op threads (``None``: its default, one per physical core)."""

    def __init__(self, path: Path, device: str = "cpu", threads: Optional[int] = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.device = device
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
        if device == "cuda":
            providers = _cuda_providers(ort)
            options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        else:
            providers = ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # ORT raises its own pybind error types on load
            if device == "cuda" and FALLBACK_REFUSED in str(exc):
                raise cuda_refusal(ort, self.path, providers) from None
            if device == "cuda":
                raise DeviceUnavailable(f"the CUDA provider cannot run it: {brief_reason(exc)}") from None
            precision = read_any_metadata(self.path).get("precision", "fp32")
            if precision != "fp32":  # e.g. a float16 op without a CPU kernel: not a broken file
                raise DeviceUnavailable(
                    f"ONNX Runtime's CPU provider cannot run this {precision} graph "
                    f"({brief_reason(exc)}); run it where ONNX Runtime can (--backends ort-cuda)"
                ) from None
            raise ArtifactError(f"{self.path}: not a loadable ONNX model ({brief_reason(exc)})") from None
        if device == "cuda" and self.session.get_providers()[:1] != ["CUDAExecutionProvider"]:
            raise DeviceUnavailable(f"the session would run on {self.session.get_providers()}, not CUDA")
        self.metadata = read_any_metadata(self.path)
        self.input_names: List[str] = [i.name for i in self.session.get_inputs()]
        self.output_names: List[str] = [o.name for o in self.session.get_outputs()]

    @property
    def with_grad(self) -> bool:
        return self.metadata.get("with_grad") == "true"

    def run(self, feeds: Mapping[str, Any]) -> Dict[str, np.ndarray]:
        """Outputs by name; ``feeds`` may hold inputs the graph dropped (unused), never fewer."""
        arrays = {name: _numpy(value) for name, value in feeds.items() if name in self.input_names}
        missing = [n for n in self.input_names if n not in arrays]
        if missing:
            raise ArtifactError(f"{self.path}: inputs {', '.join(missing)} are not given")
        return dict(zip(self.output_names, self.session.run(self.output_names, arrays)))


class TorchScriptArtifact:
    """A TorchScript archive loaded with ``torch.jit.load``. An artifact exported
    ``--with-grad`` computes input gradients itself and runs with grad mode on."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        self.path = Path(path)
        self.device = device
        prepare_torch_device(device)
        if not zipfile.is_zipfile(self.path):
            raise ArtifactError(f"{self.path}: not a TorchScript archive")
        _check_unpacked_size(self.path)
        self.metadata = read_any_metadata(self.path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
                self.module = torch.jit.load(str(self.path), map_location=device)
        except Exception as exc:  # corrupt code or constants fail in open-ended ways
            raise ArtifactError(
                f"{self.path}: not a loadable TorchScript archive ({brief_reason(exc)})"
            ) from None
        self.module.eval()

    @property
    def with_grad(self) -> bool:
        return self.metadata.get("with_grad") == "true"

    def __call__(self, *inputs: torch.Tensor) -> Any:
        """The module's raw outputs (grad mode on for a gradient artifact)."""
        with torch.set_grad_enabled(self.with_grad or torch.is_grad_enabled()):
            return self.module(*[t.to(self.device) for t in inputs])

    def run_positional(self, inputs: Sequence[torch.Tensor], names: Sequence[str]) -> Dict[str, np.ndarray]:
        """Outputs, flattened and named ``names`` in order (extra outputs are an error)."""
        outputs = flatten_outputs(self(*inputs))
        if len(outputs) != len(names):
            raise ArtifactError(
                f"{self.path}: returns {len(outputs)} outputs, its metadata names {len(names)}"
            )
        return {name: _numpy(value) for name, value in zip(names, outputs)}


MAX_UNPACKED_BYTES = 16 * 1024**3


def _check_unpacked_size(path: Path) -> None:
    """Refuse an archive that would unpack to more than ``MAX_UNPACKED_BYTES`` (a zip bomb)
    before ``torch.jit.load`` unpacks it."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArtifactError(f"{path}: not a readable TorchScript archive ({exc})") from None
    if total > MAX_UNPACKED_BYTES:
        raise ArtifactError(
            f"{path}: unpacks to {total / 1024**3:.0f} GiB, more than the "
            f"{MAX_UNPACKED_BYTES / 1024**3:.0f} GiB limit: not a lossport artifact"
        )


def artifact_preprocess(path: Path) -> Optional[Preprocess]:
    """The preprocessing contract stored in an artifact, or ``None`` (any ONNX or TorchScript
    file; one made elsewhere usually has none)."""
    return preprocess_of(read_any_metadata(Path(path)), str(path))


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _cuda_providers(ort: Any) -> List[Any]:
    """The CUDA provider with TF32 off, after loading the CUDA libraries from pip packages
    where this onnxruntime can (``preload_dlls``); :class:`DeviceUnavailable` without it."""
    reason = ort_cuda_unavailable()
    if reason is not None:
        raise DeviceUnavailable(reason)
    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
        except Exception as exc:  # missing pip CUDA packages: the system's may still serve
            warnings.warn(f"onnxruntime.preload_dlls() failed ({brief_reason(exc)})", stacklevel=2)
    return [("CUDAExecutionProvider", {"use_tf32": "0"})]


def cuda_refusal(ort: Any, path: Path, providers: List[Any]) -> LossportError:
    """Why a CUDA session that may not fall back to the CPU could not be made: ONNX Runtime
    refuses it the same way when the CUDA provider cannot start (missing CUDA or cuDNN
    libraries: :class:`DeviceUnavailable`, a skip) and when some nodes have no CUDA kernel
    (:class:`OffDevice`, a failure naming them). A second session, with the fallback allowed and
    its graph assignment recorded, tells the two apart."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # ORT's own error types
        return DeviceUnavailable(f"the CUDA provider cannot run it: {brief_reason(exc)}")
    if "CUDAExecutionProvider" not in session.get_providers():
        return DeviceUnavailable(
            "the CUDA provider could not start (its CUDA or cuDNN libraries are missing: install the "
            "versions this onnxruntime-gpu names, e.g. with a CUDA build of torch)"
        )
    try:
        assigned = session.get_provider_graph_assignment_info()
    except AttributeError:  # an onnxruntime without this API: the nodes go unnamed
        assigned = []
    nodes = [
        f"{node.name or '(unnamed)'} ({node.op_type})"
        for subgraph in assigned
        if subgraph.ep_name == "CPUExecutionProvider"
        for node in subgraph.get_nodes()
    ]
    return OffDevice(path, nodes)
