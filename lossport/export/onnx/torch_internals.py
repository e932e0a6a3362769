"""Every PyTorch internal that ONNX export relies on, imported in this one module.

The direct trace-to-ONNX path (:mod:`.tracing`, :mod:`.translate`) uses modules private to
``torch`` (``torch._decomp``, ``torch._subclasses``, ``torch.onnx._internal.exporter``, ...).
They change between releases without notice, so this module checks the torch version at import
and raises one clear :class:`~lossport.errors.ExportError` outside the tested range, instead of
an ``AttributeError`` deep inside an export.

Tested: torch 2.9 up to 2.13 (``TESTED_TORCH``); the package requirement carries the same
bounds.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from lossport.errors import ExportError

TESTED_TORCH = ((2, 9), (2, 13))


def _release(version: str) -> tuple:
    parts = version.split("+")[0].split(".")
    return tuple(int("".join(ch for ch in part if ch.isdigit()) or 0) for part in parts[:2])


def check_torch_version(version: str = torch.__version__) -> None:
    """Raise :class:`ExportError` unless ``version`` is within ``TESTED_TORCH``."""
    low, high = TESTED_TORCH
    if not low <= _release(version) <= high:
        raise ExportError(
            f"ONNX export uses internals of torch {low[0]}.{low[1]} to "
            f"{high[0]}.{high[1]}, and this is torch {version}; install a torch in "
            f"that range (TorchScript export works with any)"
        )


check_torch_version()

try:
    from torch._C import DispatchKey, DispatchKeySet
    from torch._C import _dispatch_tls_local_exclude_set as local_exclude_keys
    from torch._C import _dispatch_tls_local_include_set as local_include_keys
    from torch._C import _ForceDispatchKeyGuard as force_dispatch_keys
    from torch._decomp import decomposition_table
    from torch._dispatch.python import enable_python_dispatcher
    from torch._dynamo.source import ConstantSource
    from torch._guards import detect_fake_mode
    from torch._ops import OpOverload
    from torch._prims_common import make_contiguous_strides_for
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv
    from torch.onnx._internal._lazy_import import onnxscript_apis
    from torch.onnx._internal.exporter import _core, _decomp, _fx_passes, _registration
    from torch.onnx._internal.fx.passes import type_promotion
except (ImportError, AttributeError) as exc:  # a build without the exporter modules
    raise ExportError(
        f"ONNX export needs the torch.onnx exporter modules, which torch "
        f"{torch.__version__} lacks ({exc}); install a supported torch"
    ) from exc

OpTranslations = _registration.ONNXRegistry


@contextlib.contextmanager
def compiling_flag() -> Iterator[None]:
    """``torch.compiler.is_compiling()`` is true inside the block, as in a ``torch.export``
    trace, and restored to its previous value after it (also on error).

    Modules skip their eager-only input checks (which read tensor values) when the flag is
    set; ``make_fx`` does not set it itself.
    """
    previous = torch.compiler._is_compiling_flag
    torch.compiler._is_compiling_flag = True
    try:
        yield
    finally:
        torch.compiler._is_compiling_flag = previous


__all__ = [
    "ConstantSource",
    "DimDynamic",
    "DispatchKey",
    "DispatchKeySet",
    "FakeTensorMode",
    "OpOverload",
    "OpTranslations",
    "ShapeEnv",
    "_core",
    "_decomp",
    "_fx_passes",
    "compiling_flag",
    "decomposition_table",
    "detect_fake_mode",
    "enable_python_dispatcher",
    "force_dispatch_keys",
    "local_exclude_keys",
    "local_include_keys",
    "make_contiguous_strides_for",
    "make_fx",
    "onnxscript_apis",
    "type_promotion",
]
