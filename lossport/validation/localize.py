"""``--localize`` and ``--nodes``: an ONNX artifact's values side by side with PyTorch's, node by
node, and the first op whose output diverges.

The reference module (or its gradient program, for a ``--with-grad`` artifact) is traced again
as it was for the artifact; the translation names every ONNX value after the node of the traced
program that computes it, so the program's node values (run in PyTorch, float32 as exported)
and the artifact's intermediate values (the runtime under test, every paired node output
exposed as a graph output) can be paired by name and compared in graph order. The graph's
outputs pair with the values the program returns. The first pair outside the tolerance is the
culprit, which is what Polygraphy's ``debug reduce`` finds by bisection, in one run.

Each pair becomes a :class:`NodeRow`: the FX node and its op, the ONNX node and its op type,
both shapes, max abs / max rel error, the worst error as a fraction of its budget and the
histogram of those fractions (:mod:`lossport.validation.compare`), and whether the value is
part of the forward graph (it feeds an output of the spec) or only of the gradient graph.
Exposing intermediate values also keeps the runtime from fusing ops across them: a failure that
needs such a fusion shows in the outputs but in no intermediate value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import onnx
import torch
from torch import nn
from torch.export.graph_signature import InputKind

from lossport.artifact.metadata import read_artifact_info
from lossport.export.onnx.writer import DEFAULT_OPSET, op_translations, traced_program
from lossport.spec import Spec
from lossport.validation.backends import OnnxBackend, OrtBackend
from lossport.validation.compare import BUDGET_BINS, compare
from lossport.validation.policy import Tolerance

if TYPE_CHECKING:
    from torch.export import ExportedProgram

_ONNX_TYPES = {
    torch.float32: onnx.TensorProto.FLOAT,
    torch.float64: onnx.TensorProto.DOUBLE,
    torch.int64: onnx.TensorProto.INT64,
    torch.bool: onnx.TensorProto.BOOL,
}


@dataclass(frozen=True)
class Divergence:
    """The first diverging value: the ONNX node producing it, and how far it is off."""

    value: str
    op_type: str
    max_abs: float
    max_rel: float
    compared: int

    def describe(self) -> str:
        return (
            f"first divergence at {self.op_type} node output {self.value!r} (max abs "
            f"{self.max_abs:.3g}, max rel {self.max_rel:.3g}; {self.compared} values compared "
            f"in graph order)"
        )


@dataclass(frozen=True)
class NodeRow:
    """One paired value: PyTorch's (FX node ``fx_node``, op ``fx_op``) against the runtime's
    (ONNX node ``onnx_node`` of type ``onnx_op``), in graph order (``index`` from 1)."""

    index: int
    graph: str  # "forward" (feeds an output of the spec) or "gradient"
    value: str
    fx_node: str
    fx_op: str
    onnx_node: str
    onnx_op: str
    shape: Tuple[int, ...]
    reference_shape: Tuple[int, ...]
    dtype: str
    max_abs: float
    max_rel: float
    budget: float
    passed: bool
    histogram: Tuple[int, ...]

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["shape"], data["reference_shape"] = list(self.shape), list(self.reference_shape)
        data["histogram"] = dict(zip(BUDGET_BINS, self.histogram))
        return data


@dataclass
class Localization:
    """What ``--localize`` found for one backend on its first failing case: the first
    divergence (``None``: every intermediate value agrees), every paired node (``--nodes``),
    and the minimal repro bundle (``--repro``; ``repro_note`` says why there is none)."""

    backend: str
    case: str
    seed: int
    divergence: Optional[Divergence]
    nodes: List[NodeRow] = field(default_factory=list)
    repro: Any = None  # a lossport.validation.repro.ReproBundle
    repro_note: str = ""
    error: str = ""
    paired: int = 0

    def describe(self) -> str:
        if self.error:
            return f"{self.case}: could not localize ({self.error})"
        if self.divergence:
            return f"{self.case}: {self.divergence.describe()}"
        if not self.paired:
            return (
                f"{self.case}: no value of the artifact pairs with the traced program's (not made by "
                f"lossport's direct translation?); nothing to localize"
            )
        return f"{self.case}: every intermediate value agrees; the outputs differ only at the graph's end"

    def to_json(self) -> Dict[str, Any]:
        return {
            "backend": self.backend,
            "case": self.case,
            "seed": self.seed,
            "divergence": asdict(self.divergence) if self.divergence else None,
            "description": self.describe(),
            "paired": self.paired,
            "nodes": len(self.nodes),
            "repro": self.repro.to_json() if self.repro is not None else None,
            "repro_note": self.repro_note,
        }


@dataclass
class Traced:
    """The PyTorch side of a side-by-side: every tensor value of the traced program by node
    name (graph outputs also by the artifact's output names), and each value's FX op."""

    values: Dict[str, torch.Tensor]
    ops: Dict[str, Tuple[str, str]]  # value -> (FX node name, FX op)


@dataclass
class SideBySide:
    """Both sides of every paired value of one artifact on one input tuple."""

    model: onnx.ModelProto
    rows: List[NodeRow]
    reference: Dict[str, np.ndarray]
    actual: Dict[str, np.ndarray]
    feeds: Dict[str, np.ndarray]

    @property
    def divergence(self) -> Optional[Divergence]:
        for row in self.rows:
            if not row.passed:
                return Divergence(row.value, row.onnx_op, row.max_abs, row.max_rel, row.index)
        return None


def _torch_values(program: ExportedProgram, inputs: Sequence[torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Every tensor value of the traced program's nodes, by node name."""
    user_inputs = iter(inputs)
    arguments = [
        next(user_inputs) if spec.kind is InputKind.USER_INPUT else program.constants[spec.target]
        for spec in program.graph_signature.input_specs
    ]
    values: Dict[str, torch.Tensor] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            if isinstance(result, torch.Tensor):
                values[node.name] = result.detach()
            return result

    with torch.no_grad():
        Recorder(program.graph_module).run(*arguments)
    return values


def trace_reference(path: Path, spec: Spec, module: nn.Module, inputs: Sequence[torch.Tensor]) -> Traced:
    """Trace ``module`` as the artifact at ``path`` was traced, and run the trace on ``inputs``."""
    info = read_artifact_info(path)
    translations = op_translations(info.opset or DEFAULT_OPSET)
    program, _ = traced_program(
        module, spec, inputs, dynamic=info.dynamic, with_grad=info.with_grad, translations=translations
    )
    values = _torch_values(program, inputs)
    nodes = list(program.graph_module.graph.nodes)
    ops = {n.name: (n.name, str(n.target)) for n in nodes if n.name in values}
    returned = nodes[-1].args[0] if nodes and nodes[-1].op == "output" else ()
    returned = list(returned) if isinstance(returned, (list, tuple)) else [returned]
    if len(returned) == len(info.outputs):
        for name, node in zip(info.outputs, returned):
            if isinstance(node, torch.fx.Node) and node.name in values and name not in values:
                values[name] = values[node.name]
                ops[name] = ops[node.name]
    return Traced(values, ops)


def _forward_values(model: onnx.ModelProto, outputs: Sequence[str]) -> Set[str]:
    """The values that some graph output in ``outputs`` depends on."""
    producer = {out: node for node in model.graph.node for out in node.output}
    seen: Set[str] = set()
    stack = [o.name for o in model.graph.output if o.name in outputs]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in producer:
            stack.extend(i for i in producer[name].input if i)
    return seen


def side_by_side(
    backend: OnnxBackend, spec: Spec, traced: Traced, inputs: Sequence[torch.Tensor], tolerance: Tolerance
) -> SideBySide:
    """Run ``backend``'s artifact with every paired value exposed and compare each with the
    traced program's (elementwise tolerance, as for outputs)."""
    model = onnx.load(str(backend.path))
    reference = traced.values
    producers = [
        (output, node)
        for node in model.graph.node
        for output in node.output
        if output in reference and reference[output].dtype in _ONNX_TYPES
    ]
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    existing = {o.name for o in exposed.graph.output}
    for name, _ in producers:
        if name not in existing:
            exposed.graph.output.append(
                onnx.helper.make_tensor_value_info(name, _ONNX_TYPES[reference[name].dtype], None)
            )
    feeds = backend.feeds(inputs)
    actual = backend.run_model(exposed, feeds)
    forward = _forward_values(model, spec.outputs)
    rows = []
    for index, (name, node) in enumerate(producers, start=1):
        expected = reference[name].numpy()
        got = np.asarray(actual[name])
        result = compare(name, expected, got, tolerance)
        fx_node, fx_op = traced.ops.get(name, (name, ""))
        rows.append(
            NodeRow(
                index,
                "forward" if name in forward else "gradient",
                name,
                fx_node,
                fx_op,
                node.name,
                node.op_type,
                tuple(int(d) for d in got.shape),
                tuple(int(d) for d in expected.shape),
                str(got.dtype),
                result.max_abs,
                result.max_rel,
                result.budget,
                result.passed,
                result.histogram,
            )
        )
    values = {name: reference[name].numpy() for name, _ in producers}
    return SideBySide(model, rows, values, {n: np.asarray(actual[n]) for n, _ in producers}, feeds)


def localize(
    path: Path, spec: Spec, module: nn.Module, inputs: Sequence[torch.Tensor], tolerance: Tolerance
) -> Optional[Divergence]:
    """The first node of the ONNX artifact at ``path`` whose value diverges on ``inputs`` in
    ONNX Runtime on the CPU, or ``None`` when every paired intermediate value agrees."""
    backend = OrtBackend(path, spec, "cpu")
    return side_by_side(
        backend, spec, trace_reference(path, spec, module, inputs), inputs, tolerance
    ).divergence
