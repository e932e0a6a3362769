"""Trace a spec's module, or its gradient program, into one functional aten graph for ONNX.

One symbolic ``make_fx`` trace replaces ``torch.export`` plus the ONNX exporter's own
decomposition pass (each a full re-trace with symbolic shapes, several times slower):

- only the export's dynamic dims are symbolic, one symbol per dim name shared by every input
  that has that dim (``batch`` of logits and targets is one symbol); other dims are static;
- the trace is functionalized (in-place ops such as ``ReLU(inplace=True)`` become
  out-of-place; ONNX values are immutable);
- ops are decomposed with the table the ONNX exporter itself uses (ops with an ONNX
  translation stay whole, the rest become core aten), plus our own decompositions for ops
  whose decomposition has no ONNX translation or mistranslates (see below);
- parameters and buffers enter as real tensors and become graph constants.

The traced graph keeps symbolic-shape guards the trace relied on (e.g. "width > 1") in its
shape environment; the built-in export check runs the artifact on other shapes.
"""

from __future__ import annotations

import contextlib
import operator
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import torch
from torch import nn

from lossport.export.onnx.torch_internals import (
    ConstantSource,
    DimDynamic,
    FakeTensorMode,
    OpTranslations,
    ShapeEnv,
    _decomp,
    compiling_flag,
    decomposition_table,
    make_contiguous_strides_for,
    make_fx,
)
from lossport.spec import Spec

aten = torch.ops.aten


def _convolution_input_backward(
    grad_output,
    input,
    weight,
    bias_sizes,
    stride,
    padding,
    dilation,
    transposed,
    output_padding,
    groups,
    output_mask,
):
    """Input gradient of a (non-transposed) N-d convolution, as a convolution where it can be.

    Stride 1: the input gradient is the convolution of ``grad_output`` with the kernel flipped
    in space and with input/output channels swapped (per group), padded by
    ``dilation * (k - 1) - padding``; its output has exactly the input's size. (As a plain
    convolution it runs on the runtimes' fastest kernels; the kernel is a graph constant, so
    the flip is folded when a session loads the graph.)

    Larger strides: a transposed convolution, which in ONNX would need a static
    ``output_padding`` that depends on the input size. Instead, the transposed convolution
    without padding gives the gradient of the padded input (``(out - 1) * stride + dilation *
    (k - 1) + 1`` positions per spatial dim); it is padded at the end by ``stride - 1`` zeros
    (trailing input positions no window reached; never more than that many are missing) and
    sliced to ``[padding, padding + in)``. Every size stays symbolic.

    Weight and bias gradients are not needed: parameters are graph constants.
    """
    if transposed or output_mask[1] or output_mask[2]:
        return NotImplemented
    spatial = len(stride)
    kernel = weight.shape[2:]
    full_padding = [d * (k - 1) - p for d, k, p in zip(dilation, kernel, padding)]
    if all(step == 1 for step in stride) and min(full_padding) >= 0:
        out_per_group, in_per_group = weight.shape[0] // groups, weight.shape[1]
        swapped = weight.reshape(groups, out_per_group, in_per_group, *kernel).transpose(1, 2)
        swapped = swapped.reshape(groups * in_per_group, out_per_group, *kernel)
        flipped = aten.flip(swapped, list(range(2, 2 + spatial)))
        return (
            aten.convolution(
                grad_output, flipped, None, stride, full_padding, dilation, False, [0] * spatial, groups
            ),
            None,
            None,
        )
    full = aten.convolution(
        grad_output, weight, None, stride, [0] * spatial, dilation, True, [0] * spatial, groups
    )
    pads: List[int] = []
    for dim in reversed(range(spatial)):
        pads += [0, stride[dim] - 1]
    grad_input = aten.constant_pad_nd(full, pads, 0.0)
    for dim in range(spatial):
        grad_input = aten.slice(grad_input, 2 + dim, padding[dim], padding[dim] + input.shape[2 + dim])
    return grad_input, None, None


def _batch_norm_inference(input, weight, bias, running_mean, running_var, momentum, eps):
    """Eval-mode batch norm, ``(x - mean) / sqrt(var + eps) * weight + bias`` per channel.

    The ONNX translation of ``_native_batch_norm_legit_no_training`` gives its (unused, empty
    in eval mode) saved-statistics outputs per-channel shapes that contradict the graph's, which
    the ONNX checker rejects once a gradient graph references them.
    """
    shape = [1, -1] + [1] * (input.dim() - 2)
    output = (input - running_mean.reshape(shape)) * torch.rsqrt(running_var + eps).reshape(shape)
    if weight is not None:
        output = output * weight.reshape(shape)
    if bias is not None:
        output = output + bias.reshape(shape)
    return output, input.new_zeros(0), input.new_zeros(0)


def decompositions(translations: OpTranslations) -> Dict[Any, Callable]:
    """The ONNX exporter's decomposition table for the ops ``translations`` covers, plus ours,
    plus PyTorch's own decomposition of ``nll_loss_forward``: its ONNX translation returns a
    wrong ``total_weight`` (unused by a forward graph, but the backward divides by it)."""
    table = dict(
        _decomp.create_onnx_friendly_decomposition_table(
            set(_decomp.get_onnx_implemented_overloads(translations))
        )
    )
    table[aten.convolution_backward.default] = _convolution_input_backward
    table[aten._native_batch_norm_legit_no_training.default] = _batch_norm_inference
    table[aten.nll_loss_forward.default] = decomposition_table[aten.nll_loss_forward.default]
    return table


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
    functional = torch.func.functionalize(program, remove="mutations")
    with compiling_flag(), _frozen(module):
        graph = make_fx(
            functional,
            tracing_mode="symbolic",
            decomposition_table=decompositions(translations),
            _allow_non_fake_inputs=True,
        )(*inputs)
    _expand_symbolic_numel(graph)
    return graph, names


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
