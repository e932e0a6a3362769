"""``--repro DIR``: the smallest subgraph of a failing ONNX artifact that still fails, as a bundle
anyone can run with ONNX Runtime alone.

From the side-by-side of :mod:`lossport.validation.localize`, the target is the first diverging
value ``v`` (or, where every intermediate value agrees, the first failing graph output). A
subgraph is the set of nodes needed to compute ``v`` from a set ``F`` of *fed* values (graph
inputs and initializers always available): walking back from ``v``, a value in ``F`` becomes an
input of the subgraph, fed with its PyTorch reference value. The candidates for ``F`` are the
paired values upstream of ``v`` (each has a reference value), in graph order
``p_1 .. p_m``; ``F_k = {p_1 .. p_k}``, so a larger ``k`` cuts closer to ``v`` and the subgraph
only shrinks. ``F_m`` (every paired value fed) gives the smallest subgraph; when it no longer
fails, bisection over ``k`` finds the largest ``k`` whose subgraph still fails (the failure
criterion: ``v`` differs from its reference beyond ``atol + rtol * |ref|``, as localization
judged it). A failure that no subgraph reproduces (not even ``F_0``, the whole cone of ``v``)
gets no bundle, and the report says so.

The bundle has the layout of ONNX's backend tests::

    DIR/model.onnx                     the subgraph (opset and functions of the artifact)
    DIR/test_data_set_0/input_<i>.pb   its inputs (TensorProto, named), PyTorch's values
    DIR/test_data_set_0/output_<i>.pb  the reference value of its output (eager PyTorch)
    DIR/README.md                      the one command that reproduces it, and the versions

Several failing checks in one run write one bundle each, in ``DIR/<spec>-<backend>/``.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import onnx
from onnx import numpy_helper

from lossport._version import __version__
from lossport.errors import ConfigError
from lossport.validation.backends import OrtBackend
from lossport.validation.compare import compare
from lossport.validation.localize import SideBySide
from lossport.validation.policy import Tolerance

_COMMAND = (
    'python -c "import glob,sys,numpy as np,onnx,onnxruntime as ort;'
    "from onnx.numpy_helper import to_array;"
    "L=lambda k:{{t.name:to_array(t) for t in map(onnx.load_tensor,sorted(glob.glob('test_data_set_0/'+k+'_*.pb')))}};"
    "x,y=L('input'),L('output');"
    "s=ort.InferenceSession('model.onnx',providers=['{provider}']);"
    "g=dict(zip(y,s.run(list(y),x)));"
    "e={{k:np.abs(g[k].astype('f8')-y[k].astype('f8')) for k in y}};"
    "bad=[k for k in y if not np.all(e[k]<={atol!r}+{rtol!r}*np.abs(y[k].astype('f8')))];"
    "print('REPRODUCED' if bad else 'NOT REPRODUCED','max abs error',{{k:float(np.max(e[k],initial=0)) for k in y}});"
    'sys.exit(1 if bad else 0)"'
)


@dataclass
class ReproBundle:
    """A minimal failing subgraph with its inputs and reference outputs (see the module
    docstring), and what the README says about it."""

    spec: str
    backend: str
    case: str
    seed: int
    artifact: str
    divergence: str
    model: bytes
    inputs: List[Tuple[str, np.ndarray]]
    outputs: List[Tuple[str, np.ndarray]]
    atol: float
    rtol: float
    provider: str
    op_types: List[str]
    versions: Dict[str, str] = field(default_factory=dict)

    def command(self) -> str:
        """The shell command, run in the bundle's folder, that prints ``REPRODUCED`` and exits 1
        while ONNX Runtime's output differs from the reference beyond the tolerance."""
        return _COMMAND.format(provider=self.provider, atol=self.atol, rtol=self.rtol)

    def to_json(self) -> Dict[str, Any]:
        return {
            "nodes": len(self.op_types),
            "op_types": self.op_types,
            "inputs": [name for name, _ in self.inputs],
            "outputs": [name for name, _ in self.outputs],
            "command": self.command(),
            "versions": self.versions,
        }

    def readme(self) -> str:
        ops = ", ".join(sorted(set(self.op_types)))
        versions = "\n".join(f"- {name} {version}" for name, version in self.versions.items())
        inputs = "\n".join(
            f"- `test_data_set_0/input_{i}.pb`: `{name}`, {value.dtype} {list(value.shape)}"
            for i, (name, value) in enumerate(self.inputs)
        )
        outputs = "\n".join(
            f"- `test_data_set_0/output_{i}.pb`: `{name}`, {value.dtype} {list(value.shape)}"
            for i, (name, value) in enumerate(self.outputs)
        )
        return f"""# Minimal repro: {self.spec} on {self.backend}

{self.divergence}.

`model.onnx` is the smallest subgraph of `{self.artifact}` found to still fail on case
`{self.case}` (seed {self.seed}): {len(self.op_types)} node(s) ({ops}). Its inputs hold the values
eager PyTorch computes there; its output is compared with eager PyTorch's value.

Reproduce with ONNX Runtime alone (needs only numpy, onnx and onnxruntime), in this folder:

```sh
{self.command()}
```

It prints `REPRODUCED` and exits with status 1 while ONNX Runtime's output differs from the
reference by more than atol {self.atol:g} + rtol {self.rtol:g} * |reference|, and prints
`NOT REPRODUCED` and exits 0 once it matches.

Layout (ONNX backend-test format, tensors as serialized `TensorProto`, named):

- `model.onnx`: the subgraph
{inputs}
{outputs}

Made with:

{versions}
"""


def _subgraph(model: onnx.ModelProto, target: str, fed: Set[str]) -> Tuple[List[Any], List[str], List[Any]]:
    """``(nodes, inputs, initializers)`` computing ``target`` from ``fed`` values and graph inputs."""
    producer = {out: node for node in model.graph.node for out in node.output}
    initializers = {t.name: t for t in model.graph.initializer}
    graph_inputs = {i.name for i in model.graph.input}
    nodes: Dict[int, Any] = {}
    inputs: List[str] = []
    used: Dict[str, Any] = {}
    seen: Set[str] = set()
    stack = [target]
    while stack:
        name = stack.pop()
        if not name or name in seen:
            continue
        seen.add(name)
        if name != target and (name in fed or name in graph_inputs):
            inputs.append(name)
        elif name in initializers:
            used[name] = initializers[name]
        elif name in producer:
            node = producer[name]
            nodes[id(node)] = node
            stack.extend(node.input)
    order = {id(node): i for i, node in enumerate(model.graph.node)}
    return sorted(nodes.values(), key=lambda n: order[id(n)]), sorted(inputs), list(used.values())


def _model(
    original: onnx.ModelProto, target: str, fed: Set[str], values: Dict[str, np.ndarray], output: np.ndarray
) -> Tuple[onnx.ModelProto, List[str]]:
    nodes, inputs, initializers = _subgraph(original, target, fed)
    graph = onnx.helper.make_graph(
        nodes,
        "lossport_repro",
        [
            onnx.helper.make_tensor_value_info(
                name, onnx.helper.np_dtype_to_tensor_dtype(values[name].dtype), values[name].shape
            )
            for name in inputs
        ],
        [
            onnx.helper.make_tensor_value_info(
                target, onnx.helper.np_dtype_to_tensor_dtype(output.dtype), output.shape
            )
        ],
        initializer=initializers,
    )
    model = onnx.helper.make_model(graph, opset_imports=list(original.opset_import))
    model.ir_version = original.ir_version
    model.functions.extend(original.functions)
    model.doc_string = "minimal failing subgraph written by lossport validate --repro"
    return model, inputs


def minimal_repro(
    side: SideBySide,
    backend: OrtBackend,
    tolerance: Tolerance,
    *,
    spec: str,
    case: str,
    seed: int,
    failing_output: Optional[str] = None,
) -> Tuple[Optional[ReproBundle], str]:
    """The bundle for ``side`` (see the module docstring), or ``None`` and the reason."""
    divergence = side.divergence
    target = divergence.value if divergence else failing_output
    if target is None or target not in side.reference:
        return None, "no diverging value to extract (the failing output is not paired with PyTorch's)"
    reference = side.reference[target]
    dtypes = {name: value.dtype for name, value in side.actual.items()}
    values = {name: value.astype(dtypes.get(name, value.dtype)) for name, value in side.reference.items()}
    values.update(side.feeds)
    output_dtype = side.actual[target].dtype
    full_cone, _, _ = _subgraph(side.model, target, set())
    cone = {out for node in full_cone for out in node.output}
    candidates = [row.value for row in side.rows if row.value in cone and row.value != target]

    def attempt(k: int) -> Optional[Tuple[onnx.ModelProto, List[str]]]:
        model, inputs = _model(side.model, target, set(candidates[:k]), values, side.actual[target])
        try:
            got = backend.run_model(model, {name: values[name] for name in inputs})[target]
        except Exception:  # a subgraph the runtime refuses does not reproduce the failure
            return None
        return None if compare(target, reference, got, tolerance).passed else (model, inputs)

    found = attempt(len(candidates))
    if found is None:
        low = attempt(0)
        if low is None:
            return None, f"{target!r} does not fail when its subgraph runs on its own"
        found, lo, hi = low, 0, len(candidates)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            tried = attempt(mid)
            if tried is None:
                hi = mid
            else:
                found, lo = tried, mid
    model, inputs = found
    onnx.checker.check_model(model)
    bundle = ReproBundle(
        spec=spec,
        backend=backend.name,
        case=case,
        seed=seed,
        artifact=backend.path.name,
        divergence=divergence.describe()
        if divergence
        else f"every intermediate value agrees; output {target!r} differs",
        model=model.SerializeToString(),
        inputs=[(name, values[name]) for name in inputs],
        outputs=[(target, reference.astype(output_dtype))],
        atol=tolerance.atol,
        rtol=tolerance.rtol,
        provider="CUDAExecutionProvider" if backend.device == "cuda" else "CPUExecutionProvider",
        op_types=[node.op_type for node in model.graph.node],
        versions=versions(),
    )
    return bundle, ""


def versions() -> Dict[str, str]:
    """Versions of what made and runs a bundle."""
    import onnxruntime
    import torch

    return {
        "lossport": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
    }


def check_repro_folder(folder: Path) -> None:
    """Fail before any work when ``folder`` cannot take bundles: it must be absent (its parent
    a writable folder) or an empty folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--repro {folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(f"--repro {folder}: the folder is not empty; give a new or empty folder")
    parent = folder.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"--repro {folder}: its parent folder does not exist or is not writable")


def collect(reports: Sequence[Any]) -> Tuple[List[ReproBundle], List[str]]:
    """The bundles of the reports' localizations, each named after its report (the spec's label,
    e.g. ``tigas[mode=fast]``), and ``"<spec> / <backend>: why"`` for those without one."""
    bundles, missing = [], []
    for report in reports:
        for found in report.localizations:
            if found.repro is not None:
                bundles.append(replace(found.repro, spec=report.spec))
            elif found.repro_note:
                missing.append(f"{report.spec} / {found.backend}: {found.repro_note}")
    return bundles, missing


def bundle_folders(bundles: Sequence[ReproBundle], folder: Path) -> List[Path]:
    """Where each bundle goes: ``folder`` itself for one, ``folder/<spec>-<backend>`` for several
    (characters other than letters, digits and ``_.=,-`` become ``_``; repeats get ``-2``, ...)."""
    if len(bundles) == 1:
        return [Path(folder)]
    names: List[str] = []
    for bundle in bundles:
        name = re.sub(r"[^A-Za-z0-9_.=,-]+", "_", f"{bundle.spec}-{bundle.backend}")
        names.append(name if name not in names else f"{name}-{names.count(name) + 1}")
    return [Path(folder) / name for name in names]


def write_bundles(bundles: Sequence[ReproBundle], folder: Path) -> List[Path]:
    """Write ``bundles`` under ``folder`` (see :func:`bundle_folders`), all or nothing: they
    are written into a temp folder beside it, then moved into place."""
    folder = Path(folder)
    check_repro_folder(folder)
    if not bundles:
        return []
    targets = bundle_folders(bundles, folder)
    temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.resolve().parent))
    try:
        for bundle, target in zip(bundles, targets):
            _write_bundle(bundle, temp / target.relative_to(folder) if target != folder else temp)
        if folder.is_dir():
            folder.rmdir()
        os.replace(temp, folder)
    finally:
        if temp.exists():
            shutil.rmtree(temp)
    return targets


def _write_bundle(bundle: ReproBundle, folder: Path) -> None:
    data = folder / "test_data_set_0"
    data.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(bundle.model)
    for kind, tensors in (("input", bundle.inputs), ("output", bundle.outputs)):
        for i, (name, value) in enumerate(tensors):
            tensor = numpy_helper.from_array(np.ascontiguousarray(value), name)
            (data / f"{kind}_{i}.pb").write_bytes(tensor.SerializeToString())
    (folder / "README.md").write_text(bundle.readme())
