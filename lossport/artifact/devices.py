"""Which devices can run here, asked without failing: a reason string where one cannot (the
caller reports it as skipped, or fails under ``--require-cuda``), and PyTorch's CUDA numerics
as validation compares them."""

from __future__ import annotations

from typing import Optional

import torch

from lossport.errors import LossportError

DEVICES = ("cpu", "cuda")


class DeviceUnavailable(LossportError):
    """The requested device cannot run the artifact here (the message says why)."""


def ort_cuda_unavailable() -> Optional[str]:
    """Why ONNX Runtime cannot run on CUDA here, or ``None`` when it may (the session itself
    can still fail to start: :class:`~lossport.artifact.runtime.OnnxArtifact` reports that)."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "this onnxruntime build has no CUDA provider (install onnxruntime-gpu)"
    if not cuda_device_present():
        return "no CUDA device is visible"
    return None


def torch_cuda_unavailable() -> Optional[str]:
    """Why this torch cannot run on CUDA here, or ``None`` when it can."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU build (install a CUDA build of torch)"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    return None


def prepare_torch_device(device: str) -> None:
    """Make ``device`` ready for torch to run on: :class:`DeviceUnavailable` (with the reason)
    where it cannot, and on CUDA :func:`strict_cuda_numerics`."""
    if device == "cuda":
        reason = torch_cuda_unavailable()
        if reason is not None:
            raise DeviceUnavailable(reason)
        strict_cuda_numerics()


def strict_cuda_numerics() -> None:
    """PyTorch's CUDA numerics as the validation compares them: no TF32 in matmuls or
    convolutions, deterministic cuDNN algorithms (no autotuning)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def cuda_device_present() -> bool:
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
