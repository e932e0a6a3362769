"""What the example tests share: requiring tools (skip here, fail under CI), running a command,
building things once per test session across pytest-xdist workers, and AOTInductor packages."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple

import pytest
import torch
from filelock import FileLock


def require(*tools: str, package: str = "") -> None:
    """Skip unless every command in ``tools`` (and the Python ``package``) is here; under CI
    (the ``CI`` environment variable) fail instead: the CI machine must have them."""
    missing = [t for t in tools if shutil.which(t) is None]
    if package and importlib.util.find_spec(package) is None:
        missing.append(f"the {package} Python package")
    if missing:
        reason = f"{', '.join(missing)} not found"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; the CI machine must have it")
        pytest.skip(reason)


def run(command: List, **kwargs) -> subprocess.CompletedProcess:
    """Run ``command``; on failure, fail the test with the end of its output."""
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {done.returncode}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def session_folder(tmp_path_factory, name: str) -> Path:
    """A folder of this test session, shared by its pytest-xdist workers."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder = base / name
    folder.mkdir(exist_ok=True)
    return folder


@contextlib.contextmanager
def once(path: Path) -> Iterator[bool]:
    """Under a lock shared by the xdist workers: whether ``path`` is still to be made."""
    with FileLock(f"{path}.lock"):
        yield not path.exists()


def aoti_package(
    spec,
    config: dict,
    module: torch.nn.Module,
    path: Path,
    *,
    with_grad: bool,
    example: Sequence[torch.Tensor],
    metadata: Optional[Mapping[str, str]] = None,
) -> Tuple[float, float]:
    """An AOTInductor package of ``module`` (with ``with_grad``, of its gradient program: the
    outputs, then d objective / d input for each differentiable input) at ``path``, compiled
    with ``torch.export`` and ``aoti_compile_and_package``; ``metadata`` goes into the package's
    AOTInductor metadata (read in C++ by ``AOTIModelPackageLoader::get_metadata``). Returns the
    seconds spent exporting and compiling.

    The spec's dynamic dims stay dynamic. ``torch.export`` cannot trace ``torch.func.grad``, so
    a gradient program is first traced by ``make_fx`` with symbolic shapes (the parameters,
    frozen, become constants), as lossport's ONNX gradient graphs are, and that graph exported.
    """
    from torch.fx.experimental.proxy_tensor import make_fx

    from lossport.export import select_dynamic
    from lossport.export.gradient import gradient_function
    from lossport.export.onnx.tracing import symbolic_inputs

    dims = select_dynamic(spec, config, None)
    dynamic = tuple(
        {i: torch.export.Dim.AUTO for i, d in enumerate(t.shape) if d in dims} for t in spec.inputs
    )
    start = time.perf_counter()
    program: torch.nn.Module = module
    if with_grad:
        frozen = [(p, p.requires_grad) for p in module.parameters()]
        for parameter, _ in frozen:
            parameter.requires_grad_(False)
        try:
            fake, _ = symbolic_inputs(spec, example, dims)
            functional = torch.func.functionalize(gradient_function(module, spec), remove="mutations")
            program = make_fx(functional, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*fake)
        finally:
            for parameter, flag in frozen:
                parameter.requires_grad_(flag)
    exported = torch.export.export(program, tuple(example), dynamic_shapes=dynamic)
    exported_at = time.perf_counter()
    torch._inductor.aoti_compile_and_package(
        exported,
        package_path=str(path),
        inductor_configs={"aot_inductor.metadata": dict(metadata or {})},
    )
    return exported_at - start, time.perf_counter() - exported_at
