"""lossport: losses, the TIGAS scorer and your own PyTorch modules, exported to TorchScript and
ONNX (with gradient graphs), with numerical proof that every runtime computes the same outputs
and gradients.

The public API (loaded on first use, so that ``import lossport`` stays light)::

    lossport.export_module(module, example_inputs, path, *, format, with_grad, dynamic, ...)
    lossport.validate_module(module, example_inputs, *, dynamic, backends, shapes, ...)
    lossport.register(lossport.Spec(...))      # a spec of your own, with full control
    lossport.testing.assert_portable(...)      # a CI gate in your own test suite
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lossport._version import __version__

if TYPE_CHECKING:
    from lossport.api import export_module, validate_module
    from lossport.spec import Spec, TensorSpec, register

_PUBLIC = {
    "export_module": "lossport.api",
    "validate_module": "lossport.api",
    "register": "lossport.spec",
    "Spec": "lossport.spec",
    "TensorSpec": "lossport.spec",
}

__all__ = ["Spec", "TensorSpec", "__version__", "export_module", "register", "validate_module"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'lossport' has no attribute {name!r}")
