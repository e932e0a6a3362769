"""Every validation backend by name: the artifact it runs, how validation exports that
artifact, and how the backend is made. A new backend is one entry in :data:`KINDS`.

A backend runs either the module itself (``eager``, ``eager-cuda``) or an artifact exported
by a :class:`Recipe`; backends sharing a recipe share one export (``ort-cpu``, ``ort-cuda``
and ``onnx-ref`` all run the same ONNX gradient graph). CUDA backends are skipped, with the
reason, where no CUDA device can run them (``--require-cuda`` makes that a failure), and
cost no export then.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from lossport.artifact.devices import ort_cuda_unavailable, torch_cuda_unavailable
from lossport.artifact.pt2 import TRUST_FLAG
from lossport.errors import ArtifactError
from lossport.spec import Spec
from lossport.validation.backends import (
    Backend,
    EagerBackend,
    OnnxRefBackend,
    OrtBackend,
    Pt2Backend,
    TorchScriptBackend,
    Unavailable,
)

MakeBackend = Callable[[Optional[Path], Spec, nn.Module], Backend]


@dataclass(frozen=True)
class Recipe:
    """How validation exports an artifact: its format, whether it is the gradient artifact
    (where the spec has differentiable inputs), whether an export that fails is a failure
    of the backends that need it (else they are not applicable, with the reason) and the
    device it is compiled for (AOTInductor)."""

    fmt: str
    with_grad: bool
    failure_fails: bool
    device: str = "cpu"


ONNX = Recipe("onnx", with_grad=True, failure_fails=True)
# TorchScript cannot compile every module (third-party code); such a module is not a failure
TORCHSCRIPT = Recipe("torchscript", with_grad=False, failure_fails=False)
PT2 = Recipe("pt2", with_grad=True, failure_fails=True)
AOTI = Recipe("aoti", with_grad=True, failure_fails=True)
AOTI_CUDA = Recipe("aoti", with_grad=True, failure_fails=True, device="cuda")
# formats whose loading runs native code from the file: validate artifact needs the user's trust
NATIVE_CODE = ("aoti",)


@dataclass(frozen=True)
class BackendKind:
    """A backend by name: ``make(artifact path or None, spec, eager module)``, the ``recipe``
    of the artifact it runs (``None``: it runs the module), its device, whether it is in the
    default set, and ``unavailable()``: why it cannot run here (``None`` when it can)."""

    name: str
    make: MakeBackend
    recipe: Optional[Recipe] = None
    device: str = "cpu"
    default: bool = True
    unavailable: Callable[[], Optional[str]] = lambda: None


KINDS: Dict[str, BackendKind] = {
    kind.name: kind
    for kind in (
        BackendKind("eager", lambda path, spec, module: EagerBackend(module, spec, torch.float32)),
        BackendKind(
            "eager-cuda",
            lambda path, spec, module: EagerBackend(module, spec, torch.float32, device="cuda"),
            device="cuda",
            unavailable=torch_cuda_unavailable,
        ),
        BackendKind("torchscript", lambda path, spec, module: TorchScriptBackend(path, spec), TORCHSCRIPT),
        BackendKind(
            "torchscript-cuda",
            lambda path, spec, module: TorchScriptBackend(path, spec, device="cuda"),
            TORCHSCRIPT,
            device="cuda",
            unavailable=torch_cuda_unavailable,
        ),
        BackendKind("ort-cpu", lambda path, spec, module: OrtBackend(path, spec, "cpu"), ONNX),
        BackendKind(
            "ort-cuda",
            lambda path, spec, module: OrtBackend(path, spec, "cuda"),
            ONNX,
            device="cuda",
            unavailable=ort_cuda_unavailable,
        ),
        BackendKind(
            OnnxRefBackend.name, lambda path, spec, module: OnnxRefBackend(path, spec), ONNX, default=False
        ),
        # opt-in: a torch.export per spec (seconds), an AOTInductor compile (tens of seconds)
        BackendKind("pt2", lambda path, spec, module: Pt2Backend(path, spec), PT2, default=False),
        BackendKind("aoti", lambda path, spec, module: Pt2Backend(path, spec, "aoti"), AOTI, default=False),
        BackendKind(
            "aoti-cuda",
            lambda path, spec, module: Pt2Backend(path, spec, "aoti", "cuda"),
            AOTI_CUDA,
            device="cuda",
            default=False,
            unavailable=torch_cuda_unavailable,
        ),
    )
}
BACKENDS = tuple(name for name, kind in KINDS.items() if kind.default)  # the default set
ALL_BACKENDS = tuple(KINDS)
CUDA_BACKENDS = tuple(name for name, kind in KINDS.items() if kind.device == "cuda")


def in_order(names: Sequence[str]) -> List[BackendKind]:
    """The kinds of ``names`` in :data:`KINDS` order (the order backends run and are shown)."""
    return [kind for name, kind in KINDS.items() if name in names]


def artifact_backends(
    path: Path,
    spec: Spec,
    fmt: str,
    names: Sequence[str] = (),
    *,
    device: str = "cpu",
    trusted: bool = False,
) -> List[Backend]:
    """Backends that run the ``fmt`` artifact at ``path`` (compiled for ``device``, for
    formats compiled for one): those of ``names`` that run that format on that device (an
    opt-in one asked for by name that runs another format is not applicable, with the reason);
    with none of them, the format's first backend on ``device``. An artifact that cannot be
    loaded raises :class:`~lossport.errors.ArtifactError` here, as does one of a format that
    runs native code (:data:`NATIVE_CODE`) without ``trusted`` (the user's command-line flag,
    or lossport having written the file itself)."""
    check_trusted(path, fmt, trusted)
    compiled = fmt in NATIVE_CODE
    kinds = [
        k
        for k in in_order(names)
        if k.recipe is not None and k.recipe.fmt == fmt and (not compiled or k.recipe.device == device)
    ]
    if not kinds:
        kinds = [next(k for k in KINDS.values() if k.recipe and k.recipe.fmt == fmt and k.device == device)]
    backends = [_made(kind, path, spec, None) for kind in kinds]
    for kind in in_order(names):
        if not kind.default and kind.recipe is not None and kind.recipe.fmt != fmt:
            backends.append(
                Unavailable(kind.name, f"not applicable: it runs {kind.recipe.fmt} artifacts, this is {fmt}")
            )
    return backends


def check_trusted(path: Path, fmt: str, trusted: bool) -> None:
    """Refuse (:class:`~lossport.errors.ArtifactError` naming the flag) an artifact of a format
    whose loading runs native code from the file, unless ``trusted``."""
    if fmt in NATIVE_CODE and not trusted:
        raise ArtifactError(
            f"{path} is an AOTInductor package: loading it runs native code from the file; "
            f"pass {TRUST_FLAG} if you trust where it comes from"
        )


def _made(kind: BackendKind, path: Optional[Path], spec: Spec, module: Optional[nn.Module]) -> Backend:
    reason = kind.unavailable()
    return Unavailable(kind.name, reason) if reason else kind.make(path, spec, module)
