"""Translate a traced aten graph (:mod:`lossport.export.onnx.tracing`) to an ONNX model.

``torch.onnx.export`` would trace the program again with ``torch.export`` and once more in its
decomposition pass. The traced graph already has the form those passes produce (functional,
decomposed with the exporter's own table), so it goes straight to the exporter's translation
step, with the exporter's op translations (onnxscript's torchlib). That step and its helpers
are internal to ``torch.onnx`` (imported through :mod:`.torch_internals`):

1. graph constants (``get_attr``) become lifted constant inputs, named after the module's
   parameters and buffers where they are one, and the graph gets an export signature;
2. the exporter's explicit type promotion is inserted (re-running only the nodes it changes:
   the exporter's pass re-runs every node on fake tensors, which costs as much as the trace);
3. the program is translated and converted to the requested opset; inputs, outputs and
   dynamic axes get the spec's names.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Dict, List, Mapping, Sequence

import onnx
import torch
from onnxscript import ir
from torch.export import graph_signature as signature
from torch.export.exported_program import ExportedProgram, ModuleCallEntry
from torch.fx import traceback as fx_traceback

from lossport.export.onnx.torch_internals import (
    OpTranslations,
    _core,
    _fx_passes,
    detect_fake_mode,
    enable_python_dispatcher,
    onnxscript_apis,
    type_promotion,
)


@functools.lru_cache(maxsize=None)
def op_translations(opset: int) -> OpTranslations:
    """The exporter's op translations (torchlib) for ``opset``; built once per process (about a
    second each time). Not to be modified: it is shared."""
    return OpTranslations.from_torchlib(opset_version=opset)


def exported_program(graph: torch.fx.GraphModule, module: torch.nn.Module) -> ExportedProgram:
    """Wrap a traced graph as an ``ExportedProgram`` (no re-trace), its constants lifted.

    Constants that are parameters or buffers of ``module`` keep their names (``conv.weight``);
    tensors the trace created keep the trace's (``_tensor_constant0``).
    """
    names = {id(t): name for name, t in (*module.named_parameters(), *module.named_buffers())}
    fx_graph = graph.graph
    user_inputs = [node for node in fx_graph.nodes if node.op == "placeholder"]
    fake_mode = detect_fake_mode([node.meta["val"] for node in user_inputs])
    constants: Dict[str, torch.Tensor] = {}
    lifted: Dict[str, torch.fx.Node] = {}
    input_specs: List[signature.InputSpec] = []
    for node in list(fx_graph.nodes):
        if node.op != "get_attr":
            continue
        value = getattr(graph, node.target)
        name = names.get(id(value), node.target)
        if name not in lifted:
            with fx_graph.inserting_before(user_inputs[0]):
                placeholder = fx_graph.placeholder("c_" + name.replace(".", "_"))
            placeholder.meta["val"] = fake_mode.from_tensor(value, static_shapes=True)
            lifted[name], constants[name] = placeholder, value
            input_specs.append(
                signature.InputSpec(
                    signature.InputKind.CONSTANT_TENSOR, signature.TensorArgument(placeholder.name), name
                )
            )
        node.replace_all_uses_with(lifted[name])
        fx_graph.erase_node(node)
    input_specs += [
        signature.InputSpec(signature.InputKind.USER_INPUT, signature.TensorArgument(node.name), None)
        for node in user_inputs
    ]
    output = next(node for node in fx_graph.nodes if node.op == "output")
    output_specs = [
        signature.OutputSpec(signature.OutputKind.USER_OUTPUT, signature.TensorArgument(node.name), None)
        for node in output.args[0]
    ]
    _insert_type_promotion(graph)  # recompiles the graph's code
    graph = _fx_passes.remove_assertion_nodes(graph)
    return ExportedProgram(
        root=graph,
        graph=graph.graph,
        graph_signature=signature.ExportGraphSignature(input_specs, output_specs),
        state_dict={},
        range_constraints={},
        module_call_graph=[ModuleCallEntry("", None)],
        constants=constants,
    )


class _ChangedNodesTypePromotion(type_promotion._TypePromotionInterpreter):
    """The exporter's type-promotion interpreter, re-running only the nodes it adds or changes;
    every other node keeps the (fake) value the trace recorded for it."""

    def run_node(self, node: torch.fx.Node) -> Any:
        if node.op == "output":
            return torch.fx.Interpreter.run_node(self, node)
        if node.op == "call_function":
            with self._set_current_node(node):
                rule = type_promotion.get_type_promotion_rule(node, self.type_promotion_table)
                if rule is not None:
                    self._maybe_promote_node(node, rule)
        return node.meta["val"]


def _insert_type_promotion(graph: torch.fx.GraphModule) -> None:
    """Explicit casts where an ONNX op needs operands of one type (e.g. ``float * int``)."""
    placeholders = [node.meta["val"] for node in graph.graph.nodes if node.op == "placeholder"]
    interpreter = _ChangedNodesTypePromotion(graph, type_promotion.TypePromotionTable())
    with detect_fake_mode(placeholders), enable_python_dispatcher(), fx_traceback.preserve_node_meta():
        interpreter.run(*placeholders)
    graph.recompile()


def to_onnx(
    program: ExportedProgram,
    translations: OpTranslations,
    *,
    opset: int,
    input_names: Sequence[str],
    output_names: Sequence[str],
    axis_names: Mapping[str, str],
) -> onnx.ModelProto:
    """Translate ``program`` with ``translations``; name its inputs, outputs and dynamic axes
    (``axis_names``: symbol name -> dim name)."""
    model = _core._exported_program_to_onnx_program(program, registry=translations).model
    model = onnxscript_apis.convert_version(model, opset)
    _separate_outputs_from_inputs(model.graph)
    for value, name in (*zip(model.graph.inputs, input_names), *zip(model.graph.outputs, output_names)):
        value.name = name
    _name_axes(model, axis_names)
    return ir.serde.serialize_model(model)


def _separate_outputs_from_inputs(graph: ir.Graph) -> None:
    """An output that is a graph input itself (``x.contiguous()``, ``atleast_1d`` of a vector:
    aliases the trace removes) gets an ``Identity`` node of its own, so that naming the output
    does not rename the input."""
    inputs = set(map(id, graph.inputs))
    for index, value in enumerate(list(graph.outputs)):
        if id(value) in inputs:
            node = ir.Node("", "Identity", inputs=[value], num_outputs=1)
            graph.append(node)
            node.outputs[0].shape, node.outputs[0].type = value.shape, value.type
            graph.outputs[index] = node.outputs[0]


def _name_axes(model: ir.Model, axis_names: Mapping[str, str]) -> None:
    """Replace symbol names in every value's shape, alone (``s0`` -> ``batch``) or inside an
    expression (``2*s1`` -> ``2*height``)."""
    if not axis_names:
        return
    pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, axis_names)) + r")(?!\w)")
    values = [
        *model.graph.inputs,
        *(output for node in ir.traversal.RecursiveGraphIterator(model.graph) for output in node.outputs),
    ]
    for value in values:
        if value.shape is None:
            continue
        dims = [
            pattern.sub(lambda m: axis_names[m.group(1)], dim.value)
            if isinstance(dim, ir.SymbolicDim) and isinstance(dim.value, str)
            else dim
            for dim in value.shape
        ]
        value.shape = ir.Shape(dims)
