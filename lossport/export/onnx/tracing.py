"""Trace a spec's module, or its gradient program, into one functional aten graph for ONNX.

One symbolic ``make_fx`` trace replaces ``torch.export`` plus the ONNX exporter's own
decomposition pass (each a full re-trace with symbolic shapes, several times slower):

- only the export's dynamic dims are symbolic, one symbol per dim name shared by every input
  that has that dim (``batch`` of logits and targets is one symbol); other dims are static;
- the trace is functionalized (in-place ops such as ``ReLU(inplace=True)`` become
  out-of-place; ONNX values are immutable);
- ops are decomposed with the table the ONNX exporter itself uses (ops with an ONNX
  translation stay whole, the rest become core aten), plus our own decompositions for ops
  whose decomposition has no ONNX translation or mistranslates, backward ops above all
  (:mod:`.decompositions`);
- parameters and buffers enter as real tensors and become graph constants.

The traced graph keeps symbolic-shape guards the trace relied on (e.g. "width > 1") in its
shape environment; the built-in export check runs the artifact on other shapes.
"""

from __future__ import annotations

import contextlib
import operator
from typing import Any, Callable, Dict, Iterator, List, Sequence, Set, Tuple

import torch
from torch import nn

from lossport.errors import ExportError
from lossport.export.onnx.decompositions import decompositions
from lossport.export.onnx.torch_internals import (
    ConstantSource,
    DimDynamic,
    FakeTensorMode,
    OpOverload,
    OpTranslations,
    ShapeEnv,
    compiling_flag,
    make_contiguous_strides_for,
    make_fx,
)
from lossport.spec import Spec

aten = torch.ops.aten


def symbolic_inputs(
    spec: Spec, example: Sequence[torch.Tensor], dynamic: Sequence[str]
) -> Tuple[List[torch.Tensor], Dict[str, str]]:
    """Fake inputs shaped like ``example`` whose ``dynamic`` dims are shared symbols.

    Returns the inputs and the name of each symbol -> its dim name (for naming ONNX axes).
    """
    shape_env = ShapeEnv()
    mode = FakeTensorMode(shape_env=shape_env, allow_non_fake_inputs=True)
    symbols: Dict[str, Any] = {}
    names: Dict[str, str] = {}
    inputs = []
    for tensor_spec, tensor in zip(spec.inputs, example):
        sizes = []
        for dim, hint in zip(tensor_spec.shape, tensor.shape):
            if dim not in dynamic:
                sizes.append(int(hint))
                continue
            if dim not in symbols:
                symbol = shape_env.create_symbol(
                    int(hint),
                    ConstantSource(dim),
                    dynamic_dim=DimDynamic.DYNAMIC,
                    do_not_specialize_zero_one=True,
                )
                symbols[dim] = shape_env.create_symintnode(symbol, hint=int(hint))
                names[str(symbol)] = dim
            sizes.append(symbols[dim])
        with mode:
            inputs.append(
                torch.empty_strided(
                    sizes, make_contiguous_strides_for(sizes), dtype=tensor.dtype, device=tensor.device
                )
            )
    return inputs, names


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Parameters without ``requires_grad`` for the trace: only input gradients are wanted."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def trace(
    program: Callable[..., Tuple[torch.Tensor, ...]],
    module: nn.Module,
    spec: Spec,
    example: Sequence[torch.Tensor],
    dynamic: Sequence[str],
    translations: OpTranslations,
) -> Tuple[torch.fx.GraphModule, Dict[str, str]]:
    """Trace ``program(*inputs) -> tuple of tensors`` (which calls ``module``).

    Returns the graph and the symbol name -> dim name map of its inputs' dynamic dims.
    """
    inputs, names = symbolic_inputs(spec, example, dynamic)
    graph = functional_trace(program, module, inputs, decompositions(translations))
    mutations = _mutations(graph)
    if mutations:
        raise ExportError(
            f"the program writes to its inputs or constants in place ({', '.join(sorted(mutations))}, "
            f"as batch norm does to its running statistics in training mode), which ONNX cannot express"
        )
    _expand_symbolic_numel(graph)
    return graph, names


def functional_trace(
    program: Callable[..., Tuple[torch.Tensor, ...]],
    module: nn.Module,
    inputs: Sequence[torch.Tensor],
    table: Dict[Any, Callable],
) -> torch.fx.GraphModule:
    """The functionalized trace of ``program`` (which calls ``module``) on ``inputs`` (from
    :func:`symbolic_inputs`) with the decomposition ``table`` (``{}``: none), traced twice
    where a decomposition left an in-place op (see :func:`_mutations`); parameters become
    constants."""
    with compiling_flag(), _frozen(module):
        graph = _functional_trace(program, inputs, table)
        if _mutations(graph):
            graph = _functional_trace(graph, inputs, table)
    return graph


def _functional_trace(program: Callable, inputs: Sequence[torch.Tensor], table: Dict[Any, Callable]):
    """``make_fx`` of ``program`` functionalized (in-place ops become out-of-place), with
    symbolic shapes and the decomposition ``table``."""
    functional = torch.func.functionalize(program, remove="mutations")
    return make_fx(
        functional, tracing_mode="symbolic", decomposition_table=table, _allow_non_fake_inputs=True
    )(*inputs)


def _mutations(graph: torch.fx.GraphModule) -> Set[str]:
    """The ops in ``graph`` that mutate a tensor. Decompositions run below functionalization,
    so one that works in place (``copy_`` into a slice, ``out=`` wrappers) leaves an in-place
    op in the trace, which ONNX cannot express; tracing the graph once more, functionalized,
    removes it, except where it writes to the program's inputs or constants."""
    return {
        str(node.target)
        for node in graph.graph.nodes
        if node.op == "call_function"
        and isinstance(node.target, OpOverload)
        and node.target._schema.is_mutable
    }


def _expand_symbolic_numel(graph: torch.fx.GraphModule) -> None:
    """``x.numel()`` of a symbolic shape traces as ``aten.sym_numel``, which has no ONNX
    translation: rewrite it as the product of ``x``'s sizes."""
    for node in [n for n in graph.graph.nodes if n.target is aten.sym_numel.default]:
        tensor = node.args[0]
        product: Any = None
        value: Any = 1
        with graph.graph.inserting_before(node):
            for dim, size in enumerate(tensor.meta["val"].shape):
                if isinstance(size, torch.SymInt):
                    factor = graph.graph.call_function(aten.sym_size.int, (tensor, dim))
                    factor.meta["val"] = size
                else:
                    factor = int(size)
                value = value * size
                if product is None:
                    product = factor
                else:
                    product = graph.graph.call_function(operator.mul, (product, factor))
                    product.meta["val"] = value
        node.replace_all_uses_with(product)
        graph.graph.erase_node(node)
    graph.recompile()
