"""pt2 artifacts: the ``torch.export`` program (format ``pt2``, saved with ``torch.export.save``)
and AOTInductor packages (format ``aoti``, ``torch._inductor.aoti_compile_and_package``: the
program compiled to native code for one device, loadable in C++ by
``torch::inductor::AOTIModelPackageLoader``). Both are ``.pt2`` zip archives.

- Forward: ``torch.export.export`` (non-strict) of the module, outputs flattened to a tuple.
- ``with_grad``: the gradient program (:func:`~lossport.export.gradient.gradient_function`) is
  traced once by the same functionalized symbolic ``make_fx`` trace as ONNX export
  (:func:`lossport.export.onnx.tracing.functional_trace`), without decompositions (backward
  ops stay whole: AOTInductor compiles them), and that aten graph is exported. Exporting
  ``gradient_function`` itself fails: ``torch.export`` lifts ``torch.func.grad``'s wrapped
  tensors as constants without storage.
- Dynamic axes: every exported axis is ``Dim.DYNAMIC`` bounded to ``1..MAX_DIM``. Named
  ``Dim`` objects would be refused wherever the trace relates an axis to a multiple (TIGAS's
  height and width), where ``DYNAMIC`` lets ``torch.export`` derive the relation; inputs that
  the program requires to share an axis (the spec's shared dim names) get one symbol. Sizes 0
  and 1 are not specialized (``backed_size_oblivious``): a batch of one runs.
- AOTInductor on the CPU: weights frozen (``freezing``, compiled with grad mode off, the only
  mode in which Inductor freezes), see ``_FROZEN``.
- ``bf16``: weights and compute in bfloat16, float inputs and outputs float32 (cast inside).
- Metadata: the ``lossport.*`` keys as archive files ``<root>/extra/lossport.<key>`` (what
  ``torch.export.save`` writes for ``extra_files``), read back without loading anything
  (:mod:`lossport.artifact.metadata`); an AOTInductor package also carries them in its
  compiled model's metadata (``aot_inductor.metadata``, ``AOTIModelPackageLoader::get_metadata``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
import zipfile
from pathlib import Path
from typing import Iterator, List, Mapping, Sequence

import torch
import torch.fx.experimental._config as fx_config
from torch import nn

from lossport.artifact.devices import DEVICES, DeviceUnavailable, prepare_torch_device
from lossport.errors import ConfigError, ExportError
from lossport.export.gradient import gradient_function
from lossport.export.request import WriteRequest
from lossport.spec import Spec
from lossport.spec.flatten import distinct_outputs, flatten_outputs
from lossport.spec.limits import MAX_DIM


class _Flat(nn.Module):
    """``module`` with its outputs flattened to a tuple (as the artifact's output names)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.inner = module

    def forward(self, *inputs: torch.Tensor):
        return distinct_outputs(flatten_outputs(self.inner(*inputs)), inputs)


class _Bfloat16(nn.Module):
    """``module`` with bfloat16 weights and compute; float inputs and outputs stay float32."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.inner = copy.deepcopy(module).to(torch.bfloat16).eval()

    def forward(self, *inputs: torch.Tensor):
        cast = [t.to(torch.bfloat16) if t.is_floating_point() else t for t in inputs]
        outputs = flatten_outputs(self.inner(*cast))
        return tuple(t.float() if t.is_floating_point() else t for t in outputs)


@contextlib.contextmanager
def _size_oblivious() -> Iterator[None]:
    """Sizes 0 and 1 not specialized; torch's own deprecation warnings (pytree) silenced."""
    with fx_config.patch(backed_size_oblivious=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _dynamic_shapes(spec: Spec, dynamic: Sequence[str]):
    """``dynamic_shapes`` for ``forward(*inputs)``: per input, its exported axes."""
    hint = torch.export.Dim.DYNAMIC(min=1, max=MAX_DIM)
    return tuple(
        {axis: hint for axis, dim in enumerate(t.shape) if isinstance(dim, str) and dim in dynamic} or None
        for t in spec.inputs
    )


def exported_program(
    module: nn.Module,
    spec: Spec,
    example: Sequence[torch.Tensor],
    *,
    dynamic: Sequence[str],
    with_grad: bool,
    precision: str = "fp32",
    device: str = "cpu",
) -> torch.export.ExportedProgram:
    """The ``torch.export`` program of ``module`` (``(*inputs) -> (*outputs[, *gradients])``)
    on ``device``, ``dynamic`` axes symbolic."""
    from lossport.export.onnx.tracing import functional_trace, symbolic_inputs

    module = (_Bfloat16(module) if precision == "bf16" else module).to(device).eval()
    example = tuple(t.to(device) for t in example)
    shapes = _dynamic_shapes(spec, dynamic)
    with _size_oblivious():
        if not with_grad:
            return torch.export.export(_Flat(module), example, dynamic_shapes=(shapes,), strict=False)
        inputs, _ = symbolic_inputs(spec, example, dynamic)
        graph = functional_trace(gradient_function(module, spec), module, inputs, {})
        return torch.export.export(graph, example, dynamic_shapes=shapes, strict=False)


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise ConfigError(f"--device {device}: use {' or '.join(DEVICES)}")
    try:
        prepare_torch_device(device)
    except DeviceUnavailable as exc:
        raise ConfigError(f"--device {device}: {exc}") from None


def write_pt2(request: WriteRequest) -> str:
    """Write the ``torch.export`` program to ``request.path`` (a ``.pt2`` file), metadata as
    extra files."""
    program = _program(request)
    buffer = io.BytesIO()  # a file name would name the archive's root folder after the temp file
    with _size_oblivious():
        torch.export.save(program, buffer, extra_files=dict(request.metadata))
    Path(request.path).write_bytes(buffer.getvalue())
    return ""


# Inductor configs of a package per device. CPU: the weights are frozen into the package as
# constants, so that weight-only computation (TIGAS's BatchNorm folding) runs once at compile
# time and convolutions and linears become oneDNN calls with prepacked weights (a convolution
# with a dynamic input shape reorders its weights at run time); on TIGAS fast, batch 8, 256x256,
# 2 threads, about 8% faster than without. Inputs and outputs keep the program's layouts.
_FROZEN: Mapping[str, Mapping[str, object]] = {"cpu": {"freezing": True}}


def write_aoti(request: WriteRequest) -> str:
    """Compile the program with AOTInductor for ``request.device`` into the package
    ``request.path``; the metadata goes both in AOTInductor's own (read by the C++ loader's
    ``get_metadata()``) and as extra files (read without loading the package)."""
    from torch._inductor import aoti_compile_and_package

    _check_device(request.device)
    program = _program(request)
    metadata = {**request.metadata, "lossport.device": request.device}
    configs = {"aot_inductor.metadata": metadata, **_FROZEN.get(request.device, {})}
    # Inductor freezes only with grad mode off; the program's own computation (gradients of
    # a with-grad program included) is explicit aten ops and does not depend on grad mode.
    with _size_oblivious(), torch.no_grad():
        aoti_compile_and_package(program, package_path=str(request.path), inductor_configs=configs)
    add_extra_files(request.path, metadata)
    return ""


def _program(request: WriteRequest) -> torch.export.ExportedProgram:
    return exported_program(
        request.module,
        request.spec,
        request.example,
        dynamic=request.dynamic,
        with_grad=request.with_grad,
        precision=request.precision,
        device=request.device,
    )


def add_extra_files(path: Path, files: Mapping[str, str]) -> None:
    """Append ``files`` to the archive at ``path`` as ``<root>/extra/<name>``."""
    with zipfile.ZipFile(path, "a") as archive:
        roots: List[str] = sorted({name.split("/", 1)[0] for name in archive.namelist() if "/" in name})
        if len(roots) != 1:
            raise ExportError(f"AOTInductor wrote a package with {len(roots)} root folders, expected one")
        for name, value in files.items():
            archive.writestr(f"{roots[0]}/extra/{name}", value)
