"""Our decompositions: ops, mostly backward ops, rewritten as forward ops the ONNX exporter
translates (correctly).

A gradient graph is traced with the ONNX exporter's own decomposition table (ops with an ONNX
translation stay whole, the rest become core aten). Some ops survive that with no translation
(most backward ops: ``convolution_backward``, ``avg_pool2d_backward``, ...), some decompose
into ops that have none (``prims.as_strided_scatter``, in-place ``prims.copy_to``), and a few
translate into graphs that compute something else. :func:`decompositions` adds, for each, a
function computing the op from forward ops; each docstring gives its formula. They are
checked against eager autograd op by op by ``benchmarks/coverage_opinfo.py``.

Shapes stay symbolic: sizes are read from the tensors, index grids are ``arange``-built.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any, Callable, Dict, Iterator, List, Sequence

import torch

from lossport.export.onnx.torch_internals import (
    DispatchKey,
    DispatchKeySet,
    OpTranslations,
    _decomp,
    decomposition_table,
    force_dispatch_keys,
    local_exclude_keys,
    local_include_keys,
)

aten = torch.ops.aten
prims = torch.ops.prims


# -- convolution ------------------------------------------------------------------------------


def _expand(values: Sequence[int], spatial: int) -> List[int]:
    """A convolution or pooling argument given once for all spatial dims (``[k]``) or per dim."""
    return list(values) * spatial if len(values) == 1 else list(values)


def _convolution_input_grad(grad_output, input, weight, stride, padding, dilation, groups):
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
    """
    spatial = len(stride)
    kernel = weight.shape[2:]
    full_padding = [d * (k - 1) - p for d, k, p in zip(dilation, kernel, padding)]
    if all(step == 1 for step in stride) and min(full_padding) >= 0:
        out_per_group, in_per_group = weight.shape[0] // groups, weight.shape[1]
        swapped = weight.reshape(groups, out_per_group, in_per_group, *kernel).transpose(1, 2)
        swapped = swapped.reshape(groups * in_per_group, out_per_group, *kernel)
        flipped = aten.flip(swapped, list(range(2, 2 + spatial)))
        return aten.convolution(
            grad_output, flipped, None, stride, full_padding, dilation, False, [0] * spatial, groups
        )
    full = aten.convolution(
        grad_output, weight, None, stride, [0] * spatial, dilation, True, [0] * spatial, groups
    )
    pads: List[int] = []
    for dim in reversed(range(spatial)):
        pads += [0, stride[dim] - 1]
    grad_input = aten.constant_pad_nd(full, pads, 0.0)
    return _crop(grad_input, input.shape[2:], start=padding)


def _crop(tensor, sizes, start: Sequence[int] = ()):
    """``tensor[:, :, start_0 : start_0 + sizes_0, start_1 : ...]`` (``start`` default 0)."""
    for dim, size in enumerate(sizes):
        begin = start[dim] if start else 0
        tensor = aten.slice(tensor, 2 + dim, begin, begin + size)
    return tensor


def _convolution_weight_grad(input, grad_output, kernel, stride, padding, dilation, groups):
    """Weight gradient of a (non-transposed) convolution, ``[C_out, C_in / groups, *kernel]``:

    ``dW[o, c, k] = sum_{n, j} dY[n, o, j] * X_padded[n, g(o) * C_in/groups + c, j * stride +
    k * dilation]``, which is itself a convolution: batch ``c`` (input channels per group),
    channels ``(group, n)``, kernel ``dY`` as ``[C_out, N, *out]``, stride and dilation
    swapped, the same padding, ``groups`` groups; its output (at least ``kernel`` long per
    spatial dim) is cropped to ``kernel``.
    """
    spatial = input.shape[2:]
    batch, channels = input.shape[0], input.shape[1]
    per_group = channels // groups
    images = input.reshape(batch, groups, per_group, *spatial).transpose(0, 2)
    images = images.reshape(per_group, groups * batch, *spatial)
    filters = grad_output.transpose(0, 1)
    zeros = [0] * len(spatial)
    grad = aten.convolution(images, filters, None, dilation, padding, stride, False, zeros, groups)
    return _crop(grad.transpose(0, 1), kernel)


def convolution_backward(
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
    """Input, weight and bias gradients (as ``output_mask`` asks) of an N-d convolution.

    - bias: ``dY`` summed over batch and space;
    - convolution: input gradient by :func:`_convolution_input_grad`, weight gradient by
      :func:`_convolution_weight_grad`;
    - transposed convolution ``Y = conv_transpose(X, W)``: the input gradient is the plain
      convolution ``conv(dY, W)`` with the same stride, padding, dilation and groups (cropped to
      the input's size: ``output_padding`` may add positions), and the weight gradient is the
      weight gradient of the convolution with ``dY`` as its input and ``X`` as its output
      gradient (``[C_in, C_out / groups, *kernel]``, the transposed weight's layout).

    Parameters are graph constants in lossport's own exports, so their gradients are only
    asked for where a weight is an input. ``stride``, ``padding``, ``dilation`` may come as one
    value for every spatial dim (``padding="valid"`` passes ``[0]``).
    """
    spatial = input.dim() - 2
    stride, padding, dilation = (_expand(values, spatial) for values in (stride, padding, dilation))
    zeros = [0] * spatial
    grad_input = grad_weight = grad_bias = None
    if output_mask[0] and transposed:
        grad = aten.convolution(grad_output, weight, None, stride, padding, dilation, False, zeros, groups)
        grad_input = _crop(grad, input.shape[2:])
    elif output_mask[0]:
        grad_input = _convolution_input_grad(grad_output, input, weight, stride, padding, dilation, groups)
    if output_mask[1]:
        image, grad = (grad_output, input) if transposed else (input, grad_output)
        kernel = weight.shape[2:]
        grad_weight = _convolution_weight_grad(image, grad, kernel, stride, padding, dilation, groups)
    if output_mask[2]:
        grad_bias = grad_output.sum([0, *range(2, grad_output.dim())])
    return grad_input, grad_weight, grad_bias


# -- pooling, padding, resampling --------------------------------------------------------------


def _avg_pool_backward(
    spatial,
    grad_output,
    input,
    kernel_size,
    stride,
    padding,
    ceil_mode,
    count_include_pad,
    divisor_override=None,
):
    """Input gradient of an N-d average pooling.

    ``dX = sum_pool_backward(dY / divisor)``, where ``sum_pool_backward`` is the input gradient
    of the convolution of each channel with a ``ones`` kernel (stride, padding as the pooling;
    :func:`_convolution_input_grad`, channels folded into the batch), and the divisor of
    output ``o`` is the product over spatial dims of
    ``min(s + k, in + p) - s`` (``count_include_pad``) or ``min(s + k, in) - max(s, 0)``
    (otherwise), with window start ``s = o * stride - p``; ``divisor_override`` if given.
    """
    kernel = _expand(kernel_size, spatial)
    stride = _expand(stride, spatial) if stride else kernel
    padding = _expand(padding, spatial)
    divisor: Any = 1
    if divisor_override:
        divisor = divisor_override
    else:
        for dim in range(spatial):
            size = input.shape[input.dim() - spatial + dim]
            start = (
                torch.arange(grad_output.shape[grad_output.dim() - spatial + dim]) * stride[dim]
                - padding[dim]
            )
            if count_include_pad:
                count = torch.clamp(start + kernel[dim], max=size + padding[dim]) - start
            else:
                count = torch.clamp(start + kernel[dim], max=size) - torch.clamp(start, min=0)
            divisor = divisor * count.reshape([-1] + [1] * (spatial - 1 - dim))
    scaled = grad_output / divisor
    ones = torch.ones([1, 1, *kernel], dtype=grad_output.dtype)
    grad = _convolution_input_grad(
        scaled.reshape(-1, 1, *scaled.shape[-spatial:]),
        input.reshape(-1, 1, *input.shape[-spatial:]),
        ones,
        stride,
        padding,
        [1] * spatial,
        1,
    )
    return grad.reshape(input.shape)


def _avg_pool_with_divisor(
    spatial,
    input,
    kernel_size,
    stride=(),
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """N-d average pooling with ``divisor_override`` (which the exporter's translation ignores):
    the window sums, a convolution of each channel with a ``ones`` kernel (zero padding, and
    with ``ceil_mode`` the trailing windows padded too), divided by ``divisor_override``."""
    if not divisor_override:
        return NotImplemented
    kernel = _expand(kernel_size, spatial)
    stride = _expand(stride, spatial) if stride else kernel
    padding = _expand(padding if isinstance(padding, (list, tuple)) else [padding], spatial)
    pads: List[Any] = []
    for dim in reversed(range(spatial)):
        size, k, step, pad = input.shape[input.dim() - spatial + dim], kernel[dim], stride[dim], padding[dim]
        span = size + 2 * pad - k
        out = (-(-span // step) if ceil_mode else span // step) + 1
        if ceil_mode and (out - 1) * step >= size + pad:
            out -= 1
        pads += [pad, pad + max((out - 1) * step + k - (size + 2 * pad), 0)]
    planes = aten.constant_pad_nd(input.reshape(-1, 1, *input.shape[-spatial:]), pads, 0.0)
    ones = torch.ones([1, 1, *kernel], dtype=input.dtype)
    sums = aten.convolution(planes, ones, None, stride, [0] * spatial, [1] * spatial, False, [0] * spatial, 1)
    return (sums / divisor_override).reshape(*input.shape[:-spatial], *sums.shape[2:])


def _trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim=1):
    """``_trilinear`` (``F.bilinear``): each input unsqueezed at its ``expand`` dims, the three
    multiplied and summed over ``sumdim``, as one ``einsum`` (no broadcast product is built)."""
    rank = i1.dim() + len(expand1)
    letters = "abcdefghijklmnopqrstuvwxyz"[:rank]
    terms = [
        "".join(c for d, c in enumerate(letters) if d not in expand) for expand in (expand1, expand2, expand3)
    ]
    output = "".join(c for d, c in enumerate(letters) if d not in sumdim)
    return torch.einsum(f"{terms[0]},{terms[1]},{terms[2]}->{output}", i1, i2, i3)


def _max_pool_backward(spatial, grad_output, input, *args):
    """Input gradient of an N-d max pooling (plain or adaptive), whose last argument holds the
    flat in-plane index of each output's maximum: ``dX.flat[index[o]] += dY[o]`` per plane."""
    indices = args[-1]
    flat = torch.zeros_like(input).flatten(-spatial)
    grad = flat.scatter_add(-1, indices.flatten(-spatial), grad_output.flatten(-spatial))
    return grad.reshape(input.shape)


def _along_dims(tensor, matrices: Sequence[torch.Tensor]):
    """``tensor`` with each of its last ``len(matrices)`` dims ``d`` multiplied by ``M_d``
    (``[size_d, new size_d]``): ``x_d -> x_d M_d``."""
    spatial = len(matrices)
    for dim, matrix in enumerate(matrices):
        axis = tensor.dim() - spatial + dim
        tensor = torch.matmul(tensor.movedim(axis, -1), matrix).movedim(-1, axis)
    return tensor


def _adaptive_windows(size, out, dtype):
    """Adaptive average pooling along one dim as a matrix ``A^T`` ``[in, out]``:
    ``A[o, i] = 1 / (e_o - s_o)`` for ``s_o <= i < e_o``, ``s_o = floor(o * in / out)``,
    ``e_o = ceil((o + 1) * in / out)``."""
    outputs = torch.arange(out)
    start = torch.div(outputs * size, out, rounding_mode="floor")
    end = torch.div((outputs + 1) * size + out - 1, out, rounding_mode="floor")
    inputs = torch.arange(size).unsqueeze(1)
    inside = (inputs >= start) & (inputs < end)
    return inside.to(dtype) / (end - start).to(dtype)


def _adaptive_avg_pool(spatial, input, output_size):
    """N-d adaptive average pooling, separable: ``Y = X x_1 A_1 x_2 A_2 ...`` with
    :func:`_adaptive_windows` (the mean over the spatial dims for output size 1). ONNX has no
    translation; PyTorch's decomposition of the 2-d op holds only for input sizes with the
    example's divisibility by the output size, and there is none of the 3-d op."""
    if all(size == 1 for size in output_size):
        return input.mean(list(range(-spatial, 0)), keepdim=True)
    sizes = input.shape[-spatial:]
    return _along_dims(input, [_adaptive_windows(n, m, input.dtype) for n, m in zip(sizes, output_size)])


def _adaptive_avg_pool_backward(spatial, grad_output, input):
    """Input gradient of N-d adaptive average pooling: ``dX = dY x_1 A_1^T x_2 A_2^T ...``
    (:func:`_adaptive_windows`)."""
    sizes, out = input.shape[-spatial:], grad_output.shape[-spatial:]
    matrices = [_adaptive_windows(n, m, grad_output.dtype).t() for n, m in zip(sizes, out)]
    return _along_dims(grad_output, matrices).reshape(input.shape)


def _upsample_bilinear2d_aa_backward(
    grad_output, output_size, input_size, align_corners, scales_h=None, scales_w=None
):
    """Input gradient of anti-aliased bilinear resizing, a separable linear map
    ``Y = X x_1 R_1 x_2 R_2``: ``dX = dY x_1 R_1^T x_2 R_2^T``, where ``R_d`` ``[in_d, out_d]``
    is the resizing itself applied to the identity along dim ``d`` (a batch of ``in_d``
    one-hot images; the other dim 1 -> 1, which it leaves unchanged)."""
    scales = [scales_h, scales_w]
    matrices = []
    for dim, (size, out) in enumerate(zip(input_size[-2:], output_size)):
        shape, sizes, dim_scales = [1, 1], [1, 1], [None, None]
        shape[dim], sizes[dim], dim_scales[dim] = size, out, scales[dim]
        images = torch.eye(size, dtype=grad_output.dtype).reshape(1, size, *shape)
        resized = aten._upsample_bilinear2d_aa(images, sizes, align_corners, *dim_scales)
        matrices.append(resized.reshape(size, out).t())
    return _along_dims(grad_output, matrices)


def _replication_pad_backward(spatial, grad_output, input, padding):
    """Input gradient of replicate padding: each output position ``o`` of a padded dim reads
    input ``clamp(o - pad_left, 0, in - 1)``, so per dim ``dX[i] = sum_{o -> i} dY[o]``
    (a scatter-add along that dim)."""
    grad = grad_output
    for dim in range(spatial):
        axis = grad.dim() - spatial + dim
        size = input.shape[axis]
        left = padding[2 * (spatial - 1 - dim)]
        index = torch.clamp(torch.arange(grad.shape[axis]) - left, 0, size - 1)
        index = index.reshape([-1] + [1] * (grad.dim() - 1 - axis)).expand_as(grad)
        shape = list(grad.shape)
        shape[axis] = size
        grad = grad.new_zeros(shape).scatter_add(axis, index, grad)
    return grad


# -- views, scatters, indexing -----------------------------------------------------------------


def _diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """``input`` with its ``offset`` diagonal over ``(dim1, dim2)`` replaced by ``src``:
    ``where(j - i == offset, src[min(i, j)-th diagonal entry], input)`` on the ``(i, j)``
    planes (``src``'s last dim is the diagonal, zero-padded to the plane's size)."""
    plane = input.movedim((dim1, dim2), (-2, -1))
    rows, cols = plane.shape[-2], plane.shape[-1]
    mask = (torch.arange(cols) - torch.arange(rows).unsqueeze(-1)) == offset
    length = src.shape[-1]
    if offset >= 0:
        values = aten.constant_pad_nd(src, [0, rows - length], 0.0).unsqueeze(-1)
    else:
        values = aten.constant_pad_nd(src, [0, cols - length], 0.0).unsqueeze(-2)
    return torch.where(mask, values, plane).movedim((-2, -1), (dim1, dim2))


def _as_strided_scatter(input, src, size, stride, storage_offset=None):
    """``input`` (contiguous) with the view ``as_strided(size, stride, offset)`` replaced by
    ``src``: ``flat(input)[offset + sum_d i_d * stride_d] = src[i]`` (one scatter)."""
    if not input.is_contiguous():
        return NotImplemented
    index = torch.full([1] * len(size), storage_offset or 0, dtype=torch.int64)
    for dim, (length, step) in enumerate(zip(size, stride)):
        index = index + torch.arange(length).reshape([-1] + [1] * (len(size) - 1 - dim)) * step
    index = index.expand(size).flatten()
    flat = aten.index_put(input.flatten(), [index], src.flatten())
    return flat.reshape(input.shape)


def _index_put_int64(input, indices, values, accumulate=False):
    """``index_put`` with int64 indices: ONNX's ScatterND takes no others (PyTorch's
    ``unfold_backward`` indexes with int32)."""
    if all(index is None or index.dtype in (torch.int64, torch.bool) for index in indices):
        return NotImplemented
    indices = [index if index is None or index.dtype == torch.bool else index.long() for index in indices]
    return aten.index_put(input, indices, values, accumulate)


def _put(input, index, source, accumulate=False):
    """``flat(input)[index] = source`` (``+=`` with ``accumulate``); negative indices count
    from the end."""
    flat = input.flatten()
    index = index.flatten()
    index = torch.where(index < 0, index + flat.shape[0], index)
    return aten.index_put(flat, [index], source.flatten(), accumulate).reshape(input.shape)


def _masked_scatter_backward(grad_output, mask, sizes):
    """Gradient of ``masked_scatter``'s source: the ``k``-th selected position of ``dY`` (in
    row-major order) goes to ``dsource.flat[k]``, ``k = cumsum(mask) - 1``; the rest is 0."""
    mask = mask.expand_as(grad_output).flatten()
    position = torch.cumsum(mask.to(torch.int64), 0) - 1
    index = torch.where(mask, position, 0)
    values = torch.where(mask, grad_output.flatten(), 0.0)
    numel = math.prod(sizes)
    return grad_output.new_zeros([numel]).scatter_add(0, index, values).reshape(sizes)


def _efficient_zero_tensor(size, dtype=None, layout=None, device=None, pin_memory=None):
    """Autograd's "zero" gradient (``sgn``, ...): plain zeros."""
    return torch.zeros(size, dtype=dtype, device=device)


def _mv(matrix, vector):
    """``matrix @ vector`` as ``(matrix @ vector[:, None])[:, 0]``: ONNX Runtime (1.2x, CPU)
    miscomputes ``MatMul(Transpose(A), v)`` for a 1-D ``v`` (its MatMul+Transpose fusion), the
    form the gradient of ``mv``/``addmv`` takes; with a 2-D ``v`` the fusion is correct."""
    return aten.mm(matrix, vector.unsqueeze(1)).squeeze(1)


def _prims_prod(input, dims, *, output_dtype=None):
    """``prims.prod`` (PyTorch's ``cumprod`` and ``prod`` backward decompose into it) as
    ``aten.prod`` over one dim at a time."""
    for dim in sorted(dims, reverse=True):
        input = aten.prod.dim_int(input, dim, dtype=output_dtype)
    return input


# Numerical Recipes' ``erfcc``: erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z / 2), z >= 0, with a
# relative error below 1.2e-7 for every z; P's coefficients, constant term first.
_ERFC_COEFFICIENTS = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def _log_ndtr(input):
    """``log Phi(x)`` without underflow: with ``z = |x| / sqrt 2``, ``log erfc(z) = log t - z^2
    + P(t)`` (``_ERFC_COEFFICIENTS``) is finite for any ``z``, and
    ``log Phi(x) = log erfc(z) - log 2`` for ``x < 0``, ``log1p(-erfc(z) / 2)`` otherwise.
    (The exporter's ``erfc`` and ``erfcx`` are ``1 - erf`` and ``exp(z^2) (1 - erf)``:
    ``-inf`` from ``x ~ -13`` on, and imprecise well before.)"""
    z = input.abs() * math.sqrt(0.5)
    t = 1 / (1 + z / 2)
    poly: Any = _ERFC_COEFFICIENTS[-1]
    for coefficient in reversed(_ERFC_COEFFICIENTS[:-1]):
        poly = poly * t + coefficient
    log_erfc = torch.log(t) - z * z + poly
    return torch.where(input < 0, log_erfc - math.log(2), torch.log1p(-torch.exp(log_erfc) / 2))


def _embedding_bags(indices, offsets):
    """The bag of each index: ``bag[k] = #{b : offsets[b] <= k} - 1`` (a trailing offset
    equal to ``len(indices)``, ``include_last_offset``, counts for no index)."""
    positions = torch.arange(indices.shape[0]).unsqueeze(1)
    return (offsets.unsqueeze(0) <= positions).sum(1) - 1


def _embedding_bag_backward(
    grad,
    indices,
    offsets,
    offset2bag,
    bag_size,
    maximum_indices,
    num_weights,
    scale_grad_by_freq,
    mode,
    sparse,
    per_sample_weights,
    padding_idx=-1,
):
    """Weight gradient of ``embedding_bag`` (dense), accumulated per weight row:

    - sum/mean: ``dW[indices[k]] += dY[bag[k]] * w_k`` with ``w_k`` the per-sample weight (sum)
      or ``1 / #{non-padding indices in bag[k]}`` (mean); padding indices contribute nothing;
      with ``scale_grad_by_freq`` each contribution is divided by the count of its index;
    - max: ``dW[argmax[b, d], d] += dY[b, d]`` with the forward's ``maximum_indices``
      (``-1`` for an empty bag: no contribution).

    Bags are recomputed from ``offsets`` (:func:`_embedding_bags`), not read from the
    forward's ``offset2bag``.
    """
    dim = grad.shape[1]
    if mode == 2:
        valid = maximum_indices >= 0
        flat = torch.where(valid, maximum_indices, 0) * dim + torch.arange(dim)
        values = torch.where(valid, grad, 0.0)
        return (
            grad.new_zeros([num_weights * dim])
            .scatter_add(0, flat.flatten(), values.flatten())
            .reshape(num_weights, dim)
        )
    bags = _embedding_bags(indices, offsets)
    keep = indices != padding_idx if padding_idx >= 0 else torch.ones_like(indices, dtype=torch.bool)
    rows = grad[bags]
    if mode == 1:
        counts = (bags.unsqueeze(1) == torch.arange(grad.shape[0])) & keep.unsqueeze(1)
        rows = rows / torch.clamp(counts.sum(0)[bags], min=1).unsqueeze(1)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.unsqueeze(1)
    if scale_grad_by_freq:
        rows = rows / (indices.unsqueeze(0) == indices.unsqueeze(1)).sum(1).unsqueeze(1)
    rows = torch.where(keep.unsqueeze(1), rows, 0.0)
    return aten.index_put(grad.new_zeros([num_weights, dim]), [indices], rows, True)


def _embedding_bag_per_sample_weights_backward(
    grad, weight, indices, offsets, offset2bag, mode, padding_idx=-1
):
    """Gradient of ``embedding_bag``'s per-sample weights (mode sum):
    ``dw_k = <dY[bag[k]], W[indices[k]]>``, 0 for padding indices."""
    products = (grad[_embedding_bags(indices, offsets)] * weight[indices]).sum(1)
    return torch.where(indices == padding_idx, 0.0, products) if padding_idx >= 0 else products


# -- complex tensors ------------------------------------------------------------------------------
# The exporter represents a complex tensor by its real view (a trailing dim of 2); ops without a
# complex translation run on that view.


def _real_view(tensor, dtype):
    """The real view ``[..., 2]`` of ``tensor`` as complex ``dtype`` (a real tensor gets a zero
    imaginary part)."""
    if tensor.is_complex():
        return torch.view_as_real(tensor.to(dtype))
    real = tensor.to(dtype.to_real())
    return torch.stack((real, torch.zeros_like(real)), -1)


def _complex_new_zeros(input, size, dtype=None, layout=None, device=None, pin_memory=None):
    """Complex zeros as the complex view of real zeros ``[*size, 2]``."""
    dtype = dtype or input.dtype
    if not dtype.is_complex:
        return NotImplemented
    return torch.view_as_complex(torch.zeros([*size, 2], dtype=dtype.to_real(), device=input.device))


def _complex_slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """Complex ``slice_scatter`` as the same scatter of the real views (``dim`` from the front)."""
    if not input.is_complex():
        return NotImplemented
    real = aten.slice_scatter(
        torch.view_as_real(input), torch.view_as_real(src), dim % input.dim(), start, end, step
    )
    return torch.view_as_complex(real)


def _complex_where(condition, input, other):
    """Complex ``where`` as ``where`` of the real views, the condition broadcast over the
    trailing (real, imaginary) dim."""
    if not (input.is_complex() or other.is_complex()):
        return NotImplemented
    dtype = input.dtype if input.is_complex() else other.dtype
    real = torch.where(condition.unsqueeze(-1), _real_view(input, dtype), _real_view(other, dtype))
    return torch.view_as_complex(real)


def _complex_copy(input, src, non_blocking=False):
    """Complex (functional) ``copy``: ``src`` in ``input``'s dtype, broadcast to its shape."""
    if not input.is_complex():
        return NotImplemented
    real = _real_view(src, input.dtype).expand(*input.shape, 2)
    return torch.view_as_complex(real.clone(memory_format=torch.contiguous_format))


def _mul_scalar(input, other):
    """``input * other`` for a number the exporter cannot take as an attribute: a symbolic one
    (``1 / (H * W)`` of a dynamic size, in the group-norm backward) as a 0-d tensor; a complex
    tensor times ``a + bi`` on the real view ``(x, y)``: ``(a x - b y, b x + a y)``."""
    if isinstance(other, torch.SymFloat):
        return aten.mul.Tensor(input, aten.scalar_tensor(other, dtype=input.dtype))
    if not input.is_complex():
        return NotImplemented
    other = complex(other)
    real, imag = torch.view_as_real(input).unbind(-1)
    parts = (real * other.real - imag * other.imag, real * other.imag + imag * other.real)
    return torch.view_as_complex(torch.stack(parts, -1))


def _complex_conj_physical(input):
    """Complex conjugate on the real view: ``(x, y) -> (x, -y)``."""
    if not input.is_complex():
        return NotImplemented
    real, imag = torch.view_as_real(input).unbind(-1)
    return torch.view_as_complex(torch.stack((real, -imag), -1))


def _complex_unsqueeze(input, dim):
    """Complex ``unsqueeze`` as the same of the real view (``dim`` from the front)."""
    if not input.is_complex():
        return NotImplemented
    return torch.view_as_complex(torch.view_as_real(input).unsqueeze(dim % (input.dim() + 1)))


def _complex_expand(input, size, implicit=False):
    """Complex ``expand`` as the same of the real view, its trailing dim kept."""
    if not input.is_complex():
        return NotImplemented
    return torch.view_as_complex(torch.view_as_real(input).expand(*size, 2))


# -- autograd of PyTorch's forward decomposition ------------------------------------------------

_AUTOGRAD_KEYS = functools.reduce(
    DispatchKeySet.add,
    [DispatchKey.AutogradOther, DispatchKey.AutogradNestedTensor, DispatchKey.ADInplaceOrView],
    DispatchKeySet(DispatchKey.AutogradFunctionality),
)


@contextlib.contextmanager
def _autograd_inside_trace() -> Iterator[None]:
    """Autograd recording re-enabled inside a decomposition. A decomposition runs below
    autograd (the dispatcher excludes its keys while the trace records the op), so
    ``torch.autograd.grad`` there would see no graph; inside this block the ops it calls are
    recorded by autograd first, then by the trace, and so is their backward."""
    with (
        force_dispatch_keys(local_include_keys(), local_exclude_keys() - _AUTOGRAD_KEYS),
        torch.enable_grad(),
    ):
        yield


def _vjp_of_decomposition(forward: Callable, differentiable: int) -> Callable:
    """A backward op ``(grad_output, *forward_args, output_mask) -> grads`` as autograd's
    vector-Jacobian product of ``forward`` (PyTorch's decomposition of the forward op into
    ops that have backward formulas), traced in place: ``dX_i = (dY^T dF/dX_i)`` for the first
    ``differentiable`` arguments, ``None`` where ``output_mask`` says not needed."""

    def backward(grad_output, *args):
        *forward_args, output_mask = args
        with _autograd_inside_trace():
            inputs = [a.detach().requires_grad_(True) for a in forward_args[:differentiable]]
            output = forward(*inputs, *forward_args[differentiable:])
            wanted = [x for x, flag in zip(inputs, output_mask) if flag]
            grads = iter(torch.autograd.grad(output, wanted, grad_output))
        return tuple(next(grads) if flag else None for flag in output_mask)

    return backward


# -- the table -----------------------------------------------------------------------------------


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


OURS: Dict[Any, Callable] = {
    aten.convolution_backward.default: convolution_backward,
    aten._native_batch_norm_legit_no_training.default: _batch_norm_inference,
    aten.avg_pool2d.default: functools.partial(_avg_pool_with_divisor, 2),
    aten.avg_pool3d.default: functools.partial(_avg_pool_with_divisor, 3),
    aten._trilinear.default: _trilinear,
    aten.avg_pool2d_backward.default: functools.partial(_avg_pool_backward, 2),
    aten.avg_pool3d_backward.default: functools.partial(_avg_pool_backward, 3),
    aten.max_pool2d_with_indices_backward.default: functools.partial(_max_pool_backward, 2),
    aten.max_pool3d_with_indices_backward.default: functools.partial(_max_pool_backward, 3),
    aten.adaptive_max_pool2d_backward.default: functools.partial(_max_pool_backward, 2),
    aten.adaptive_max_pool3d_backward.default: functools.partial(_max_pool_backward, 3),
    aten._adaptive_avg_pool2d.default: functools.partial(_adaptive_avg_pool, 2),
    aten._adaptive_avg_pool3d.default: functools.partial(_adaptive_avg_pool, 3),
    aten._adaptive_avg_pool2d_backward.default: functools.partial(_adaptive_avg_pool_backward, 2),
    aten._adaptive_avg_pool3d_backward.default: functools.partial(_adaptive_avg_pool_backward, 3),
    aten._upsample_bilinear2d_aa_backward.default: _upsample_bilinear2d_aa_backward,
    aten.replication_pad1d_backward.default: functools.partial(_replication_pad_backward, 1),
    aten.replication_pad2d_backward.default: functools.partial(_replication_pad_backward, 2),
    aten.replication_pad3d_backward.default: functools.partial(_replication_pad_backward, 3),
    aten.grid_sampler_2d_backward.default: _vjp_of_decomposition(
        decomposition_table[aten.grid_sampler_2d.default], 2
    ),
    aten.diagonal_scatter.default: _diagonal_scatter,
    aten.as_strided_scatter.default: _as_strided_scatter,
    aten.put.default: _put,
    aten.index_put.default: _index_put_int64,
    aten._unsafe_index_put.default: _index_put_int64,
    aten.masked_scatter_backward.default: _masked_scatter_backward,
    aten._efficientzerotensor.default: _efficient_zero_tensor,
    aten.mv.default: _mv,
    prims.prod.default: _prims_prod,
    aten.special_log_ndtr.default: _log_ndtr,
    aten._embedding_bag_backward.default: _embedding_bag_backward,
    aten._embedding_bag_per_sample_weights_backward.default: _embedding_bag_per_sample_weights_backward,
    aten.new_zeros.default: _complex_new_zeros,
    aten.slice_scatter.default: _complex_slice_scatter,
    aten.where.self: _complex_where,
    aten.copy.default: _complex_copy,
    aten.mul.Scalar: _mul_scalar,
    aten._conj_physical.default: _complex_conj_physical,
    aten.unsqueeze.default: _complex_unsqueeze,
    aten.expand.default: _complex_expand,
}

# PyTorch's own, for ops whose ONNX translation is missing or wrong (see :func:`decompositions`).
PYTORCH_DECOMPOSED = (
    aten.nll_loss_forward.default,
    aten.addmv.default,
)


def decompositions(translations: OpTranslations) -> Dict[Any, Callable]:
    """The ONNX exporter's decomposition table for the ops ``translations`` covers, plus ours
    (``OURS``), plus PyTorch's own decompositions of ``PYTORCH_DECOMPOSED``:

    - ``nll_loss_forward``: its ONNX translation returns a wrong ``total_weight`` (unused by a
      forward graph, but the backward divides by it);
    - ``addmv``: ``beta * self + alpha * mv(mat, vec)``, so that the ``mv`` is ours
      (:func:`_mv`).
    """
    table = dict(
        _decomp.create_onnx_friendly_decomposition_table(
            set(_decomp.get_onnx_implemented_overloads(translations))
        )
    )
    table.update(OURS)
    table.update({op: decomposition_table[op] for op in PYTORCH_DECOMPOSED})
    return table
