"""Classification losses: cross-entropy, sigmoid focal, softmax focal, multi-token prediction.

Logits are float ``[N, C]`` or ``[N, C, d1, ...]`` (class dimension 1) unless stated;
class-index targets are int64.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from lossport.errors import ConfigError, InvalidInputError
from lossport.losses._reduce import REDUCTIONS, masked_mean, reduce_loss
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import Binary, ClassIndex, Real

__all__ = [
    "binary_cross_entropy_with_logits",
    "CrossEntropyLoss",
    "FocalLoss",
    "MTPLoss",
    "SoftmaxFocalLoss",
    "cross_entropy_loss",
    "focal_loss",
    "mtp_loss",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]


def binary_cross_entropy_with_logits(
    logits: torch.Tensor, targets: torch.Tensor, pos_weight: float = 1.0
) -> torch.Tensor:
    """Element-wise ``-[w t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))]``, ``w = pos_weight``.

    Written as ``w t softplus(-x) + (1 - t) softplus(x)``: the same numbers and gradient as
    ``F.binary_cross_entropy_with_logits(reduction="none", pos_weight=w)``, finite for any
    finite logit, and exported to ONNX as ``Softplus``, which ONNX Runtime evaluates
    accurately. (Torch's exporter turns ``binary_cross_entropy_with_logits`` into
    ``Log(Sigmoid(x))``, which ONNX Runtime evaluates to -inf from about ``|x| = 17`` on.)
    Every sigmoid-BCE in the library goes through this function.
    """
    return pos_weight * targets * F.softplus(-logits) + (1 - targets) * F.softplus(logits)


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Element-wise sigmoid focal loss (Lin et al., "Focal Loss for Dense Object Detection").

    ``FL = -alpha_t (1 - p_t)^gamma log(p_t)`` with ``p = sigmoid(logits)``,
    ``p_t = p t + (1 - p)(1 - t)``, ``alpha_t = alpha t + (1 - alpha)(1 - t)``; ``alpha < 0``
    disables the alpha weighting. ``targets`` are floats in [0, 1] of the logits' shape.
    The log term is :func:`binary_cross_entropy_with_logits`. The gradient is finite for any finite
    logit and any ``gamma >= 0`` (see :func:`_focal_factor`). Returns the unreduced loss,
    same shape as ``logits``.
    """
    probability = torch.sigmoid(logits)
    ce = binary_cross_entropy_with_logits(logits, targets)
    p_t = probability * targets + (1 - probability) * (1 - targets)
    loss = ce * _focal_factor(1 - p_t, gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


# -- shared pieces ---------------------------------------------------------------------------


def _focal_factor(base: torch.Tensor, gamma: float) -> torch.Tensor:
    """The focal modulation ``base^gamma`` (``base = 1 - p_t``) with a finite gradient.

    Where ``base`` is exactly 0 (a saturated, correct prediction) the factor is the constant
    ``0^gamma`` and passes no gradient: the loss term's true derivative there is 0, while
    ``pow`` would give ``inf * 0 = NaN`` for ``0 < gamma < 1``.
    """
    saturated = base <= 0
    safe = torch.where(saturated, torch.ones_like(base), base)
    return torch.where(saturated, torch.full_like(base, 0.0**gamma), safe.pow(gamma))


def _classes_last(logits: torch.Tensor, class_dim_last: bool) -> torch.Tensor:
    """``logits`` with the class dimension moved last (``[N, C, d...]`` -> ``[N, d..., C]``)."""
    if class_dim_last:
        return logits
    return logits.movedim(1, -1)


def _target_log_prob(
    log_prob: torch.Tensor, target: torch.Tensor, ignore_index: int
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gather ``log_prob[..., target]`` (classes last) without touching ignored entries.

    Returns ``(log p_target, valid, safe_target)``: ignored entries read class 0 (their value
    is masked later) so no out-of-range index reaches ``gather``.
    """
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    picked = log_prob.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return picked, valid, safe


def _ratio(total: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``total / denominator``, with a zero denominator read as 1 (an empty selection gives 0)."""
    return total / torch.where(denominator > 0, denominator, torch.ones_like(denominator))


def _ce_terms(
    logits_last: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor],
    ignore_index: int,
    label_smoothing: float,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-element cross-entropy (classes last) and its normaliser.

    Returns ``(loss, norm)`` of the target's shape: ``loss = (1 - eps) w[y] (-log p_y) +
    eps * mean_c(w[c] (-log p_c))``, 0 where ignored; ``norm = w[y]`` (1 without weights), 0
    where ignored. ``sum(loss) / sum(norm)`` is torch's ``reduction="mean"``.
    """
    log_prob = F.log_softmax(logits_last, dim=-1)
    picked, valid, safe = _target_log_prob(log_prob, target, ignore_index)
    if weight is None:
        norm = torch.ones_like(picked)
        loss = -picked
    else:
        class_weight = weight.to(log_prob.dtype)
        norm = class_weight[safe]
        loss = -picked * norm
    if label_smoothing > 0:
        if weight is None:
            smooth = -log_prob.mean(-1)
        else:
            smooth = -(log_prob * weight.to(log_prob.dtype)).mean(-1)
        loss = (1 - label_smoothing) * loss + label_smoothing * smooth
    zero = torch.zeros_like(loss)
    return torch.where(valid, loss, zero), torch.where(valid, norm, zero)


def _check_class_target(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_dim_last: bool,
    ignore_index: Optional[int],
    allow_negative: bool = False,
    name: str = "target",
) -> None:
    """Eager checks of class-index targets against logits ``[N, C, d...]`` (or ``[..., C]``)."""
    checks.check_float(logits, "logits")
    checks.check_min_rank(logits, "logits", 2, "[..., C]" if class_dim_last else "[N, C] or [N, C, d1, ...]")
    checks.check_index(target, name)
    if class_dim_last:
        expected = list(logits.shape[:-1])
        human = "logits[..., C] without its last dimension"
    else:
        expected = [logits.shape[0]] + list(logits.shape[2:])
        human = "[N] or [N, d1, ...] matching logits [N, C, d1, ...]"
    checks.check_shape(target, name, expected, f"{expected} ({human})")
    num_classes = logits.shape[-1] if class_dim_last else logits.shape[1]
    checks.check_class_index(target, name, num_classes, ignore_index, allow_negative)


def _check_focal_options(gamma: float, reduction: str) -> None:
    if gamma < 0:
        raise ConfigError(f"gamma must be >= 0, got {gamma}")
    checks.check_choice(reduction, "reduction", REDUCTIONS)


def _class_weight_buffer(
    value: Optional[Union[torch.Tensor, Sequence[float]]], name: str
) -> Optional[torch.Tensor]:
    """A 1-D float tensor of per-class values (or None), for ``register_buffer``."""
    if value is None:
        return None
    tensor = torch.as_tensor(value).detach().clone()
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    if tensor.dim() != 1:
        raise ConfigError(
            f"{name} must be a 1-D tensor with one value per class, got shape {list(tensor.shape)}"
        )
    if not bool(torch.isfinite(tensor).all()) or bool((tensor < 0).any()):
        raise ConfigError(f"{name} must hold finite values >= 0, got {tensor.tolist()}")
    return tensor


def _check_class_count(weight: Optional[torch.Tensor], name: str, num_classes: int) -> None:
    if weight is not None and weight.numel() != num_classes:
        raise InvalidInputError(
            f"{name} has {weight.numel()} values but the logits have {num_classes} classes"
        )


# -- cross-entropy ---------------------------------------------------------------------------


def cross_entropy_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    class_dim_last: bool = False,
) -> torch.Tensor:
    """Softmax cross-entropy with class-index targets, as ``torch.nn.functional.cross_entropy``.

    Shapes: ``logits`` float ``[N, C]`` or ``[N, C, d1, ...]`` (class dimension 1), or with
    ``class_dim_last=True`` any ``[..., C]`` such as language-model logits ``[B, T, V]``;
    ``target`` int64 of the logits' shape without the class dimension, values in ``[0, C)`` or
    ``ignore_index``. ``weight`` optional float ``[C]`` per-class weights.

    Per element: ``l = (1 - eps) w[y] (-log p_y) + (eps / C) sum_c w[c] (-log p_c)`` with
    ``p = softmax(logits)`` over the class dimension and ``eps = label_smoothing`` (torch's
    smoothing: the uniform part is weighted by the class weights too); ignored elements give 0.
    ``"mean"`` is ``sum(l) / sum(w[y])`` over non-ignored elements (the count without
    weights), as torch. ``"sum"`` sums, ``"none"`` returns ``l`` of the target's shape.

    Edge behaviour (the one difference from torch): when every target is ignored (or the
    weights of all non-ignored targets are 0) the mean divides by 1 instead of 0, so the loss
    is 0 (torch returns NaN). Finite for any finite logits.
    """
    loss, norm = _ce_terms(
        _classes_last(logits, class_dim_last), target, weight, ignore_index, label_smoothing
    )
    if reduction == "mean":
        return _ratio(loss.sum(), norm.sum())
    return reduce_loss(loss, reduction)


class CrossEntropyLoss(nn.Module):
    """Module form of :func:`cross_entropy_loss`; ``weight`` is a buffer (moves with ``.to``)."""

    def __init__(
        self,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        weight: Optional[Union[torch.Tensor, Sequence[float]]] = None,
        reduction: str = "mean",
        class_dim_last: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing <= 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        checks.check_choice(reduction, "reduction", REDUCTIONS)
        self.ignore_index = ignore_index
        self.label_smoothing = float(label_smoothing)
        self.reduction = reduction
        self.class_dim_last = class_dim_last
        self.register_buffer("weight", _class_weight_buffer(weight, "weight"))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            _check_class_target(logits, target, self.class_dim_last, self.ignore_index)
            _check_class_count(
                self.weight, "weight", logits.shape[-1] if self.class_dim_last else logits.shape[1]
            )
        return cross_entropy_loss(
            logits,
            target,
            self.weight,
            self.ignore_index,
            self.label_smoothing,
            self.reduction,
            self.class_dim_last,
        )


# -- sigmoid focal ---------------------------------------------------------------------------


def _one_vs_all(index: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """One-hot float targets ``[N, C, d...]`` from indices ``[N, d...]``; negatives give all 0."""
    num_classes = logits.shape[1]
    view: List[int] = [1, num_classes] + [1] * (index.dim() - 1)
    classes = torch.arange(num_classes, device=index.device).view(view)
    return (index.unsqueeze(1) == classes).to(logits.dtype)


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Sigmoid focal loss (RetinaNet) with two target conventions, chosen by ``target``'s dtype.

    Element-wise term: :func:`sigmoid_focal_loss` (``-alpha_t (1 - p_t)^gamma log p_t``,
    ``p = sigmoid(logits)``; ``alpha < 0`` disables alpha).

    - Float ``target`` of the logits' shape (any shape): binary / multi-label targets in
      [0, 1]. ``"mean"`` averages over all elements, ``"sum"`` sums, ``"none"`` returns the
      element-wise loss (``torchvision.ops.sigmoid_focal_loss``'s convention).
    - int64 ``target`` of class indices, ``[N]`` for logits ``[N, C]`` or ``[N, H, W]`` for
      logits ``[N, C, H, W]`` (generally the logits' shape without dimension 1): one-vs-all
      one-hot targets over the C classes; a negative index marks an ignored sample, whose
      whole row contributes 0. The loss of a sample is the sum over classes; ``"mean"`` is
      the mean of that over non-ignored samples (0 if all are ignored), ``"sum"`` sums it,
      ``"none"`` returns it with the target's shape (0 where ignored).

    The path depends only on the dtype, never on the values. Finite with finite gradient for
    any finite logits.
    """
    if target.is_floating_point():
        return reduce_loss(sigmoid_focal_loss(logits, target, alpha, gamma), reduction)
    valid = target >= 0
    per_sample = sigmoid_focal_loss(logits, _one_vs_all(target, logits), alpha, gamma).sum(1)
    per_sample = torch.where(valid, per_sample, torch.zeros_like(per_sample))
    if reduction == "mean":
        return masked_mean(per_sample, valid)
    return reduce_loss(per_sample, reduction)


class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss`."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, reduction: str = "mean") -> None:
        super().__init__()
        _check_focal_options(gamma, reduction)
        if alpha > 1:
            raise ConfigError(f"alpha must be in [0, 1] (or < 0 to disable it), got {alpha}")
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            checks.check_float(logits, "logits")
            checks.check_tensor(target, "target")
            if target.is_floating_point():
                checks.check_same_shape(logits, "logits", target, "target")
                checks.check_range(target, "target", 0.0, 1.0, "binary targets")
            elif target.dtype == torch.int64:
                _check_class_target(logits, target, False, None, allow_negative=True)
            else:
                raise InvalidInputError(
                    f"target must be a float tensor of the logits' shape (binary/multi-label "
                    f"targets) or an int64 tensor of class indices, got {target.dtype}"
                )
        return focal_loss(logits, target, self.alpha, self.gamma, self.reduction)


# -- softmax focal ---------------------------------------------------------------------------


def softmax_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    alpha: Optional[torch.Tensor] = None,
    gamma: float = 2.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-class focal loss on the softmax: ``-alpha[y] (1 - p_y)^gamma log p_y``.

    Shapes: ``logits`` float ``[N, C]`` or ``[N, C, d1, ...]`` (class dimension 1);
    ``target`` int64 ``[N]`` or ``[N, d1, ...]`` in ``[0, C)`` or ``ignore_index``;
    ``alpha`` optional float ``[C]`` per-class weights (None = 1 for every class).
    ``log p`` is ``log_softmax`` over the classes.

    ``"mean"`` divides the sum by the number of non-ignored elements (not by their alpha
    weights; 0 if all are ignored); ``"sum"`` sums; ``"none"`` returns the target's shape with
    0 where ignored. ``kornia.losses.focal_loss`` computes the same terms but its ``"mean"``
    divides by ``C`` times *all* elements, ignored ones included, and its scalar ``alpha``
    means ``1 - alpha`` for class 0 and ``alpha`` for the others (pass that as an alpha
    tensor here). Finite, with finite gradient, for any finite logits and any ``gamma >= 0``.
    """
    log_prob = F.log_softmax(logits.movedim(1, -1), dim=-1)
    picked, valid, safe = _target_log_prob(log_prob, target, ignore_index)
    loss = -_focal_factor(-torch.expm1(picked), gamma) * picked
    if alpha is not None:
        loss = alpha.to(loss.dtype)[safe] * loss
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    if reduction == "mean":
        return masked_mean(loss, valid)
    return reduce_loss(loss, reduction)


class SoftmaxFocalLoss(nn.Module):
    """Module form of :func:`softmax_focal_loss`; ``alpha`` is a buffer (moves with ``.to``)."""

    def __init__(
        self,
        alpha: Optional[Union[torch.Tensor, Sequence[float]]] = None,
        gamma: float = 2.0,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        _check_focal_options(gamma, reduction)
        self.gamma = float(gamma)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.register_buffer("alpha", _class_weight_buffer(alpha, "alpha"))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            _check_class_target(logits, target, False, self.ignore_index)
            _check_class_count(self.alpha, "alpha", logits.shape[1])
        return softmax_focal_loss(logits, target, self.alpha, self.gamma, self.ignore_index, self.reduction)


# -- multi-token prediction ------------------------------------------------------------------


def _shifted_labels(labels: torch.Tensor, depth: int, ignore_index: int) -> torch.Tensor:
    """``[D, B, T]``: row ``k - 1`` is ``labels`` shifted left by ``k``, padded with ignore."""
    length = labels.shape[1]
    pad = torch.full((labels.shape[0], depth), ignore_index, dtype=labels.dtype, device=labels.device)
    padded = torch.cat([labels, pad], dim=1)
    return torch.stack([padded[:, k : k + length] for k in range(1, depth + 1)])


def mtp_loss(
    logits: torch.Tensor,
    mtp_logits: torch.Tensor,
    labels: torch.Tensor,
    mtp_lambda: float = 0.3,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Multi-token prediction loss of DeepSeek-V3: ``CE_0 + (lambda / D) sum_k CE_k``.

    Shapes: ``logits`` float ``[B, T, V]`` (main next-token head), ``mtp_logits`` float
    ``[D, B, T, V]`` (the D extra heads, stacked), ``labels`` int64 ``[B, T]``.

    Alignment: ``labels`` are the main head's targets, already shifted by the caller as for
    any causal LM loss: ``logits[:, t]`` is scored against ``labels[:, t]``. Head ``k``
    (``k = 1..D``, ``mtp_logits[k - 1]``) predicts ``k`` tokens further: ``mtp_logits[k - 1,
    :, t]`` is scored against ``labels[:, t + k]`` for ``t = 0 .. T - 1 - k``; its last ``k``
    positions have no target and are ignored (as are targets equal to ``ignore_index``).

    Each ``CE`` is :func:`cross_entropy_loss` with classes last, the same ``ignore_index`` and
    ``label_smoothing``, averaged over that head's own non-ignored positions (0 if it has none,
    e.g. ``T <= k``). The DeepSeek-V3 report writes the depth-k loss as a sum over the scored
    positions divided by ``T``; here each head is a plain mean over its scored positions, the
    usual token-mean cross-entropy. Returns a scalar.
    """
    main, main_norm = _ce_terms(logits, labels, None, ignore_index, label_smoothing)
    depth = mtp_logits.shape[0]
    shifted = _shifted_labels(labels, depth, ignore_index)
    heads, heads_norm = _ce_terms(mtp_logits, shifted, None, ignore_index, label_smoothing)
    per_head = _ratio(heads.sum((1, 2)), heads_norm.sum((1, 2)))
    return _ratio(main.sum(), main_norm.sum()) + mtp_lambda / depth * per_head.sum()


class MTPLoss(nn.Module):
    """Module form of :func:`mtp_loss`; the heads come as a list of ``D`` tensors
    ``[B, T, V]`` or one stacked tensor ``[D, B, T, V]`` (``D = mtp_depth``)."""

    def __init__(
        self,
        mtp_depth: int = 3,
        mtp_lambda: float = 0.3,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if mtp_depth < 1:
            raise ConfigError(f"mtp_depth must be >= 1, got {mtp_depth}")
        if mtp_lambda < 0:
            raise ConfigError(f"mtp_lambda must be >= 0, got {mtp_lambda}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.mtp_depth = mtp_depth
        self.mtp_lambda = float(mtp_lambda)
        self.ignore_index = ignore_index
        self.label_smoothing = float(label_smoothing)

    def forward(
        self, logits: torch.Tensor, mtp_logits: Union[torch.Tensor, List[torch.Tensor]], labels: torch.Tensor
    ) -> torch.Tensor:
        if isinstance(mtp_logits, torch.Tensor):
            heads = mtp_logits
        else:
            if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
                self._check_head_list(mtp_logits, logits)
            heads = torch.stack(mtp_logits)
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(logits, heads, labels)
        return mtp_loss(logits, heads, labels, self.mtp_lambda, self.ignore_index, self.label_smoothing)

    @torch.jit.unused
    def _check_head_list(self, heads: List[torch.Tensor], logits: torch.Tensor) -> None:
        if len(heads) != self.mtp_depth:
            raise InvalidInputError(
                f"mtp_logits must hold mtp_depth = {self.mtp_depth} heads, got a list of {len(heads)}"
            )
        for k, head in enumerate(heads):
            checks.check_float(head, f"mtp_logits[{k}]")
            checks.check_same_shape(logits, "logits", head, f"mtp_logits[{k}]")

    @torch.jit.unused
    def _check(self, logits: torch.Tensor, heads: torch.Tensor, labels: torch.Tensor) -> None:
        checks.check_rank(logits, "logits", [3], "[B, T, V]")
        _check_class_target(logits, labels, True, self.ignore_index, name="labels")
        checks.check_float(heads, "mtp_logits")
        expected = [self.mtp_depth] + list(logits.shape)
        checks.check_shape(
            heads, "mtp_logits", expected, f"{expected} ([mtp_depth, B, T, V] matching logits)"
        )


# -- specs -----------------------------------------------------------------------------------


def _ce_edges(dtype: torch.dtype):
    extreme = torch.tensor([[30.0, -30.0, 0.0], [-30.0, 30.0, -30.0]], dtype=dtype)
    return {
        "extreme_logits": (extreme, torch.tensor([1, 1])),
        "all_ignored": (extreme, torch.tensor([-100, -100])),
        "batch_of_one": (extreme[:1].clone(), torch.tensor([2])),
        "class_missing": (torch.zeros(2, 3, dtype=dtype), torch.tensor([0, 0])),
    }


register(
    Spec(
        name="cross_entropy",
        build=CrossEntropyLoss,
        inputs=(
            TensorSpec("logits", ("batch", "classes"), Real(scale=2.0), differentiable=True),
            TensorSpec("target", ("batch",), ClassIndex("classes", ignore_index=-100)),
        ),
        outputs=("loss",),
        shapes=({"batch": 6, "classes": 5}, {"batch": 3, "classes": 2}, {"batch": 1, "classes": 7}),
        source="loss-library catalog",
        summary="softmax CE on class dim 1 (class_dim_last for [B, T, V]), torch's label smoothing "
        "and class weights; mean over non-ignored, all ignored -> 0",
        peer="torch.nn.functional.cross_entropy",
        edge_cases=_ce_edges,
    )
)


def _focal_edges(dtype: torch.dtype):
    extreme = torch.tensor([[30.0, -30.0], [-30.0, 30.0]], dtype=dtype)
    return {
        "extreme_logits_right": (extreme, torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)),
        "extreme_logits_wrong": (extreme, torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=dtype)),
        "all_negative": (torch.zeros(2, 2, dtype=dtype), torch.zeros(2, 2, dtype=dtype)),
        "batch_of_one": (extreme[:1].clone(), torch.tensor([[1.0, 1.0]], dtype=dtype)),
    }


register(
    Spec(
        name="focal",
        build=FocalLoss,
        inputs=(
            TensorSpec("logits", ("batch", "classes"), Real(scale=2.0), differentiable=True),
            TensorSpec("target", ("batch", "classes"), Binary(p=0.3)),
        ),
        outputs=("loss",),
        shapes=({"batch": 4, "classes": 3}, {"batch": 2, "classes": 5}, {"batch": 1, "classes": 1}),
        source="loss-library catalog; AutoTimm loss guide",
        summary="sigmoid focal (RetinaNet), alpha < 0 disables alpha; float targets = binary/"
        "multi-label (this spec); int64 class indices = one-vs-all, negatives ignored, "
        "sum over classes, mean over valid samples",
        peer="kornia.losses.binary_focal_loss_with_logits (torchvision.ops.sigmoid_focal_loss)",
        edge_cases=_focal_edges,
    )
)


def _softmax_focal_edges(dtype: torch.dtype):
    extreme = torch.tensor([[30.0, -30.0, 0.0], [-30.0, 30.0, -30.0]], dtype=dtype).unsqueeze(-1)
    return {
        "extreme_logits_right": (extreme, torch.tensor([[0], [1]])),
        "extreme_logits_wrong": (extreme, torch.tensor([[1], [2]])),
        "all_ignored": (extreme, torch.tensor([[-100], [-100]])),
        "batch_of_one": (extreme[:1].clone(), torch.tensor([[2]])),
    }


register(
    Spec(
        name="softmax_focal",
        build=SoftmaxFocalLoss,
        inputs=(
            TensorSpec("logits", ("batch", "classes", "length"), Real(scale=2.0), differentiable=True),
            TensorSpec("target", ("batch", "length"), ClassIndex("classes", ignore_index=-100)),
        ),
        outputs=("loss",),
        shapes=(
            {"batch": 3, "classes": 4, "length": 5},
            {"batch": 2, "classes": 2, "length": 3},
            {"batch": 1, "classes": 6, "length": 1},
        ),
        source="loss-library catalog",
        summary="-alpha[y] (1 - p_y)^gamma log p_y on log_softmax over dim 1, optional per-class "
        "alpha; mean over non-ignored, all ignored -> 0",
        peer="kornia.losses.focal_loss (sum / non-ignored count)",
        edge_cases=_softmax_focal_edges,
    )
)


def _mtp_edges(dtype: torch.dtype):
    extreme = torch.tensor([[[30.0, -30.0, 0.0], [-30.0, 30.0, -30.0]]], dtype=dtype)
    heads = torch.stack([-extreme, extreme, -extreme])
    return {
        "extreme_logits": (extreme, heads, torch.tensor([[1, 0]])),
        "all_ignored": (extreme, heads, torch.tensor([[-100, -100]])),
        "sequence_shorter_than_depth": (extreme, heads, torch.tensor([[0, 2]])),
    }


register(
    Spec(
        name="mtp",
        build=MTPLoss,
        inputs=(
            TensorSpec("logits", ("batch", "time", "vocab"), Real(scale=2.0), differentiable=True),
            TensorSpec(
                "mtp_logits", ("mtp_depth", "batch", "time", "vocab"), Real(scale=2.0), differentiable=True
            ),
            TensorSpec("labels", ("batch", "time"), ClassIndex("vocab", ignore_index=-100)),
        ),
        outputs=("loss",),
        shapes=(
            {"batch": 2, "time": 6, "vocab": 5},
            {"batch": 3, "time": 2, "vocab": 4},
            {"batch": 1, "time": 9, "vocab": 3},
        ),
        source="loss-library catalog",
        summary="DeepSeek-V3 MTP: CE(logits, labels) + lambda/D sum_k CE(head k at t, labels[t + k]); "
        "the last k positions of head k ignored; heads stacked [D, B, T, V] or a list",
        edge_cases=_mtp_edges,
    )
)
