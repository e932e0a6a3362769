"""TorchScript artifacts: ``torch.jit.script`` of the module (or its gradient wrapper), saved
with the metadata as extra files.

TorchScript is deprecated upstream but is what libtorch deployments load; its deprecation
warnings are silenced here, where we call it on purpose, and nowhere else.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import torch
from torch import nn

from lossport.export.gradient import torchscript_gradient_module
from lossport.spec import Spec


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        yield


def write_torchscript(
    module: nn.Module,
    spec: Spec,
    example: Sequence[torch.Tensor],
    path: Path,
    metadata: Mapping[str, str],
    with_grad: bool,
) -> None:
    with quiet_torchscript():
        if with_grad:
            scripted = torchscript_gradient_module(module, spec, example)
        else:
            scripted = torch.jit.script(module)
        torch.jit.save(scripted, str(path), _extra_files=dict(metadata))
