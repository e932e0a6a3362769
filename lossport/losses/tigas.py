"""The TIGAS-based losses: the TIGAS training loss and TIGAS as a generator loss.

``tigas_combined`` (TIGAS's training loss): score regression + real/fake classification +
ranking. Inputs are the scorer's outputs for a batch: ``scores`` float ``[B]`` in ``[0, 1]``
(1 = real), ``logits`` float ``[B, 2]`` (class 1 = real), and ``labels`` float ``[B]`` in
``[0, 1]`` (soft labels allowed; ``label > 0.5`` means real).

``tigas_generator``: ``1 - mean(TIGAS score)`` of generated images, differentiable w.r.t. the
images, around a frozen scorer (:mod:`lossport.models.tigas`).
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from lossport.errors import ConfigError
from lossport.losses._reduce import masked_mean
from lossport.models.tigas.model import TIGASModel
from lossport.models.tigas.specs import DEFAULT_IMG_SIZE, TIGAS_COMMON, build_tigas
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import Interval, Real

__all__ = ["CombinedLoss", "TIGASGeneratorLoss", "pairwise_ranking_loss", "tigas_combined_loss"]

REGRESSION_TYPES = ("mse", "smoothl1")


def pairwise_ranking_loss(scores: torch.Tensor, real: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """Margin ranking over every (real, fake) pair, as one ``[B, B]`` pair matrix.

    ``mean over pairs (i real, j fake) of max(0, margin - (s_i - s_j))``, i.e.
    ``F.margin_ranking_loss(s_i, s_j, +1, margin)`` averaged over all ``n_real * n_fake``
    pairs. ``real`` is a ``[B]`` bool (or 0/1) mask. The pair weights ``real_i * fake_j`` select
    the pairs, so no data-dependent shape arises; with no real or no fake sample the loss is 0
    (and so is its gradient).
    """
    real = real.to(scores.dtype)
    pair_weight = real.unsqueeze(1) * (1 - real).unsqueeze(0)
    hinge = torch.clamp(margin - (scores.unsqueeze(1) - scores.unsqueeze(0)), min=0.0)
    return masked_mean(hinge, pair_weight)


def _regression_loss(scores: torch.Tensor, labels: torch.Tensor, regression_type: str) -> torch.Tensor:
    if regression_type == "smoothl1":
        return F.smooth_l1_loss(scores, labels, beta=1.0)
    return F.mse_loss(scores, labels)


def _raise_if_not_finite(value: torch.Tensor, what: str) -> None:
    if not bool(torch.isfinite(value).all()):
        raise RuntimeError("NaN/Inf detected in " + what)


def tigas_combined_loss(
    scores: torch.Tensor,
    logits: torch.Tensor,
    labels: torch.Tensor,
    regression_weight: float = 1.0,
    classification_weight: float = 0.3,
    ranking_weight: float = 0.2,
    regression_type: str = "mse",
    margin: float = 0.5,
) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """TIGAS ``CombinedLoss``: ``w_reg L_reg + w_cls L_cls + w_rank L_rank``.

    - ``L_reg``: MSE (or smooth L1 with beta 1, ``regression_type="smoothl1"``) between
      ``scores`` and the float ``labels``, mean over the batch.
    - ``L_cls``: cross-entropy of ``logits [B, 2]`` against ``labels > 0.5`` (1 = real),
      mean over the batch.
    - ``L_rank``: :func:`pairwise_ranking_loss` with ``margin`` over all real x fake pairs;
      0 when the batch lacks either class.

    Returns ``(total, {"regression", "classification", "ranking", "total"})``, all 0-d tensors.
    Differences from upstream's code (seed 000's documented behaviour is followed): upstream
    binarises labels with ``.long()`` (truncation: a soft label 0.7 becomes fake) where its
    docs and this function use ``labels > 0.5``; upstream samples at most 64 random pairs
    with a seeded generator where this function averages over every pair, deterministically.
    Non-finite checks are the module's job (:class:`CombinedLoss`).
    """
    real = labels > 0.5
    regression = _regression_loss(scores, labels, regression_type)
    classification = F.cross_entropy(logits, real.to(torch.int64))
    ranking = pairwise_ranking_loss(scores, real, margin)
    total = regression_weight * regression + classification_weight * classification + ranking_weight * ranking
    return total, {
        "regression": regression,
        "classification": classification,
        "ranking": ranking,
        "total": total,
    }


class CombinedLoss(nn.Module):
    """Module form of :func:`tigas_combined_loss`, with upstream's fail-fast policy.

    ``forward(scores [B], logits [B, 2], labels [B])`` raises ``RuntimeError`` when
    ``scores``, ``logits`` or ``labels`` hold NaN/Inf, or when the total is not finite —
    in eager mode and in TorchScript (where it surfaces in Python as ``torch.jit.Error``
    carrying the ``RuntimeError`` message, and in C++ as ``c10::Error``). The ONNX export
    (dynamo) cannot express raising, so these checks are skipped there
    (``torch.compiler.is_compiling()``): the exported graph returns NaN/Inf instead.
    Shape, dtype and label-range checks run in eager mode only and raise
    ``InvalidInputError``.
    """

    def __init__(
        self,
        regression_weight: float = 1.0,
        classification_weight: float = 0.3,
        ranking_weight: float = 0.2,
        regression_type: str = "mse",
        margin: float = 0.5,
    ) -> None:
        super().__init__()
        checks.check_choice(regression_type, "regression_type", REGRESSION_TYPES)
        if min(regression_weight, classification_weight, ranking_weight) < 0:
            raise ConfigError(
                f"loss weights must be >= 0, got regression_weight="
                f"{regression_weight}, classification_weight="
                f"{classification_weight}, ranking_weight={ranking_weight}"
            )
        self.regression_weight = float(regression_weight)
        self.classification_weight = float(classification_weight)
        self.ranking_weight = float(ranking_weight)
        self.regression_type = regression_type
        self.margin = float(margin)

    def forward(
        self, scores: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            _check_inputs(scores, logits, labels)
        if not torch.compiler.is_compiling():
            _raise_if_not_finite(scores, "scores")
            _raise_if_not_finite(logits, "logits")
            _raise_if_not_finite(labels, "labels")
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            checks.check_range(labels, "labels", 0.0, 1.0, "soft labels (1 = real)")
        total, parts = tigas_combined_loss(
            scores,
            logits,
            labels,
            self.regression_weight,
            self.classification_weight,
            self.ranking_weight,
            self.regression_type,
            self.margin,
        )
        if not torch.compiler.is_compiling():
            _raise_if_not_finite(total, "total loss")
        return total, parts


def _check_inputs(scores: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
    checks.check_float(scores, "scores")
    checks.check_rank(scores, "scores", [1], "[B] (squeeze the model's [B, 1] score)")
    batch = scores.shape[0]
    checks.check_float(logits, "logits")
    checks.check_shape(logits, "logits", [batch, 2], f"[B, 2] = [{batch}, 2] matching scores [{batch}]")
    checks.check_float(labels, "labels")
    checks.check_shape(labels, "labels", [batch], f"[B] = [{batch}] matching scores [{batch}]")


def _sample(spec: Spec, sizes, generator: torch.Generator, dtype: torch.dtype):
    """Scores in [0, 1], logits, and labels mixing hard and soft values with both classes."""
    batch = int(sizes["batch"])
    scores = torch.rand(batch, generator=generator, dtype=dtype)
    logits = torch.randn(batch, 2, generator=generator, dtype=dtype) * 2
    labels = torch.rand(batch, generator=generator, dtype=dtype)
    hard = torch.rand(batch, generator=generator) < 0.5
    labels = torch.where(hard, (labels > 0.5).to(dtype), labels)
    if batch >= 2:
        labels = torch.cat([torch.tensor([1.0, 0.0], dtype=dtype), labels[2:]])
    return scores, logits, labels


def _edges(dtype: torch.dtype):
    scores = torch.tensor([0.9, 0.2, 0.6, 0.4], dtype=dtype)
    logits = torch.tensor([[-2.0, 2.0], [1.0, -1.0], [0.0, 0.5], [0.3, 0.0]], dtype=dtype)
    labels = torch.tensor([1.0, 0.0, 0.7, 0.3], dtype=dtype)
    return {
        "all_real": (scores, logits, torch.ones_like(labels)),
        "all_fake": (scores, logits, torch.zeros_like(labels)),
        "label_at_threshold": (scores, logits, torch.full_like(labels, 0.5)),
        "extreme_logits": (
            scores,
            torch.tensor([[-30.0, 30.0], [30.0, -30.0], [30.0, -30.0], [30.0, -30.0]], dtype=dtype),
            labels,
        ),
        "saturated_scores": (torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=dtype), logits, labels),
        "tied_scores": (torch.full_like(scores, 0.5), logits, labels),
        "batch_of_one": (scores[:1].clone(), logits[:1].clone(), labels[:1].clone()),
    }


register(
    Spec(
        name="tigas_combined",
        build=CombinedLoss,
        inputs=(
            TensorSpec("scores", ("batch",), Interval(0.0, 1.0, "score (1 = real)"), differentiable=True),
            TensorSpec("logits", ("batch", 2), Real(scale=2.0), differentiable=True),
            TensorSpec("labels", ("batch",), Interval(0.0, 1.0, "soft label (> 0.5 = real)")),
        ),
        outputs=("loss", "regression", "classification", "ranking", "total"),
        shapes=({"batch": 6}, {"batch": 9}, {"batch": 2}),
        source="TIGAS docs: training loss",
        summary="w_reg * MSE|SmoothL1(scores, labels) + w_cls * CE(logits, labels > 0.5) + w_rank * "
        "mean margin ranking over all real x fake pairs (0 if a class is missing); "
        "RuntimeError on NaN/Inf in eager and TorchScript",
        peer="F.mse_loss / F.cross_entropy / F.margin_ranking_loss over explicit pairs",
        sampler=_sample,
        edge_cases=_edges,
    )
)


# -- TIGAS as a generator loss ---------------------------------------------------------------


class TIGASGeneratorLoss(nn.Module):
    """``loss(images) = 1 - mean(TIGAS score)``, differentiable w.r.t. ``images``.

    ``images``: ``[B, 3, H, W]`` generated images in the model's input range (``[0, 1]`` for
    the default ``input_range``), ``H, W >= 32``. Returns a scalar in ``[0, 1]``; minimising it
    pushes the generator towards images TIGAS scores as real. The wrapped model is frozen
    (no parameter gradients) and stays in eval mode even when the loss module is put in
    train mode with its parent.
    """

    def __init__(self, model: TIGASModel) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "TIGASGeneratorLoss":
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        score, _ = self.model(images)
        return 1.0 - score.mean()


def build_generator_loss(
    mode: str = "fast",
    base_channels: int = 32,
    feature_dim: int = 256,
    num_attention_heads: int = 8,
    input_range: str = "[0,1]",
    img_size: int = DEFAULT_IMG_SIZE,
    seed: int = 0,
) -> TIGASGeneratorLoss:
    """:class:`TIGASGeneratorLoss` around :func:`~lossport.models.tigas.specs.build_tigas` of
    the same arguments (seeded random weights; wrap a model loaded with
    :func:`~lossport.models.tigas.load_model` for trained ones)."""
    return TIGASGeneratorLoss(
        build_tigas(mode, base_channels, feature_dim, num_attention_heads, input_range, img_size, seed)
    )


register(
    Spec(
        name="tigas_generator",
        kind="loss",
        build=build_generator_loss,
        outputs=("loss",),
        source="TIGAS docs: TIGAS as a generator loss",
        summary="1 - mean(TIGAS score) of generated images in [0,1]; differentiable w.r.t. the "
        "images, TIGAS frozen (seeded random weights)",
        **TIGAS_COMMON,
    )
)
