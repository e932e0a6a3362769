"""TorchScript artifacts: ``torch.jit.script`` of the module (or its gradient wrapper), saved
with the metadata as extra files.

A module that does not script (third-party code TorchScript cannot compile) is traced instead,
where the trace is valid for the declared dynamic axes: the traced module must match eager
PyTorch at a second shape, differing from the example in every dynamic axis. The artifact's
metadata says which (``lossport.torchscript``: ``script`` or ``trace``).

TorchScript is deprecated upstream but is what libtorch deployments load; its deprecation
warnings are silenced here, where we call it on purpose, and nowhere else.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Iterator, Sequence, Tuple

import torch
from torch import nn

from lossport.errors import ExportError, brief_reason
from lossport.export.gradient import torchscript_gradient_module
from lossport.export.request import WriteRequest
from lossport.spec.flatten import flatten_outputs


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        yield


def compile_module(
    module: nn.Module, example: Sequence[torch.Tensor], other: Sequence[torch.Tensor]
) -> Tuple[torch.jit.ScriptModule, str]:
    """``module`` scripted (and run once on ``other``, inputs at another shape), or traced on
    ``example`` where scripting fails and the trace gives eager's outputs on ``other``. Returns the compiled module and a
    note (empty when scripted). Raises :class:`ExportError` with both reasons otherwise."""
    with quiet_torchscript():
        try:
            scripted = torch.jit.script(module)
            with torch.no_grad():  # some modules script but cannot run or be saved (a None
                scripted(*other)  # default taken for a Tensor)
            torch.jit.save(scripted, io.BytesIO())
            return scripted, ""
        except Exception as exc:  # TorchScript's frontend raises many error types
            script_error = brief_reason(exc)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)  # we check the trace
                traced = torch.jit.trace(module, tuple(example), check_trace=False, strict=False)
                expected = flatten_outputs(module(*other))
                got = flatten_outputs(traced(*other))
        except Exception as exc:
            raise ExportError(
                f"TorchScript cannot script the module ({script_error}) nor trace it ({brief_reason(exc)})"
            ) from None
    same = len(expected) == len(got) and all(
        a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True)
        for a, b in zip(expected, got)
    )
    if not same:
        raise ExportError(
            f"TorchScript cannot script the module ({script_error}), and its trace is not valid "
            f"for the dynamic axes (it computes other values at a second shape)"
        )
    return traced, f"traced: scripting failed ({script_error}); the trace matches eager at a second shape"


def write_torchscript(request: WriteRequest) -> str:
    """Write the artifact; returns :func:`compile_module`'s note (empty when scripted)."""
    compiled, note = compile_module(request.module, request.example, request.other)
    with quiet_torchscript():
        if request.with_grad:
            compiled = torchscript_gradient_module(
                compiled, request.spec, request.example, eager=request.module
            )
        extra = {**request.metadata, "lossport.torchscript": "trace" if note else "script"}
        torch.jit.save(compiled, str(request.path), _extra_files=extra)
    return note
