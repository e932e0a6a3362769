"""``--localize``: name the first op of an ONNX artifact whose output diverges from PyTorch.

The reference module (or its gradient program, for a ``--with-grad`` artifact) is traced
again as it was for the artifact; the translation names every ONNX value after the node of the
traced program that computes it, so the program's node values (run in PyTorch) and the artifact's
intermediate values (ONNX Runtime, every node output exposed as a graph output) can be paired
by name and compared in graph order. The first pair outside the tolerance is the culprit,
which is what Polygraphy's ``debug reduce`` finds by bisection, in one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional, Sequence

import numpy as np
import onnx
import torch
from torch import nn
from torch.export.graph_signature import InputKind

from lossport.artifact.metadata import read_artifact_info
from lossport.export.onnx.writer import DEFAULT_OPSET, op_translations, traced_program
from lossport.spec import Spec
from lossport.validation.compare import compare
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


def localize(
    path: Path, spec: Spec, module: nn.Module, inputs: Sequence[torch.Tensor], tolerance: Tolerance
) -> Optional[Divergence]:
    """The first node of the ONNX artifact at ``path`` whose value diverges on ``inputs``, or
    ``None`` when every paired intermediate value agrees."""
    import onnxruntime as ort

    info = read_artifact_info(path)
    translations = op_translations(info.opset or DEFAULT_OPSET)
    program, _ = traced_program(
        module, spec, inputs, dynamic=info.dynamic, with_grad=info.with_grad, translations=translations
    )
    reference = _torch_values(program, inputs)

    model = onnx.load(str(path))
    producers = [
        (output, node.op_type)
        for node in model.graph.node
        for output in node.output
        if output in reference and reference[output].dtype in _ONNX_TYPES
    ]
    existing = {o.name for o in model.graph.output}
    for name, _ in producers:
        if name not in existing:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(name, _ONNX_TYPES[reference[name].dtype], None)
            )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    feeds = {t.name: v.numpy() for t, v in zip(spec.inputs, inputs) if t.name in wanted}
    names = [name for name, _ in producers]
    actual = dict(zip(names, session.run(names, feeds)))
    for index, (name, op_type) in enumerate(producers, start=1):
        expected = reference[name].numpy()
        if expected.dtype == np.bool_:
            if not np.array_equal(expected, actual[name]):
                return Divergence(name, op_type, 1.0, float("inf"), index)
            continue
        result = compare(name, expected, actual[name], tolerance)
        if not result.passed:
            return Divergence(name, op_type, result.max_abs, result.max_rel, index)
    return None
