"""Knowledge-distillation losses: Hinton-style KD and Learning without Forgetting.

Logits are float ``[N, C]`` (batch, classes); language-model logits ``[B, T, V]`` are
flattened to ``[B * T, V]`` by the caller. Hard targets are int64 class indices ``[N]``.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from lossport.errors import ConfigError, InvalidInputError
from lossport.losses._reduce import safe_mean
from lossport.losses.classification import cross_entropy_loss
from lossport.spec import Spec, TensorSpec, checks, register
from lossport.spec.domains import ClassIndex, Real

__all__ = ["DistillationLoss", "LwFLoss", "distillation_loss", "kd_loss", "lwf_loss"]


def kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0
) -> torch.Tensor:
    """Soft-target term: ``T^2 * KL(softmax(t / T) || softmax(s / T))``, batch mean.

    ``sum_{n,c} q_nc (log q_nc - log p_nc) / N`` with ``q = softmax(teacher / T)``,
    ``p = softmax(student / T)`` over the classes (torch's ``KLDivLoss(reduction="batchmean")``
    on ``log p`` and ``q``), times ``T^2`` so that gradient magnitudes do not shrink with the
    temperature (Hinton et al., 2015). Both distributions come from ``log_softmax``, so the
    term is finite for any finite logits, saturated teachers included. ``teacher_logits`` are
    not detached: pass them detached, as usual, if the teacher must not train. An empty batch
    gives 0.
    """
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    log_q = F.log_softmax(teacher_logits / temperature, dim=-1)
    per_row = (log_q.exp() * (log_q - log_p)).sum(-1)
    return temperature * temperature * safe_mean(per_row)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    hard_targets: Optional[torch.Tensor] = None,
    temperature: float = 4.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """Knowledge distillation (Hinton et al., 2015).

    With ``hard_targets``: ``alpha * kd + (1 - alpha) * CE(student, hard_targets)``, where
    ``kd`` is :func:`kd_loss` and CE is the mean softmax cross-entropy at temperature 1
    (:func:`~lossport.losses.classification.cross_entropy_loss`; targets equal to -100 are
    ignored). Without them the loss is ``kd`` alone, unweighted by ``alpha`` (there is
    nothing to balance it against).

    Shapes: ``student_logits`` and ``teacher_logits`` float ``[N, C]``; ``hard_targets``
    int64 ``[N]`` in ``[0, C)``. Returns a scalar.
    """
    soft = kd_loss(student_logits, teacher_logits, temperature)
    if hard_targets is None:
        return soft
    return alpha * soft + (1 - alpha) * cross_entropy_loss(student_logits, hard_targets)


def lwf_loss(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """Learning without Forgetting (Li and Hoiem, 2016).

    ``alpha * kd(new_logits[:, :C_old], old_logits) + (1 - alpha) * CE(new_logits, targets)``:
    the new model's logits on the old classes (its first ``C_old`` columns) are distilled
    towards the old model's logits with :func:`kd_loss` (``T^2``-scaled KL, batch mean), and
    all its logits are trained on the new targets with mean cross-entropy (targets equal to
    -100 ignored).

    The paper writes the old-task term as the cross-entropy of the temperature-scaled
    distributions, without ``T^2``; the KL used here differs from it by the old model's
    entropy, a constant, so the gradients are the same up to the ``T^2`` factor. With
    ``C_old = C`` this equals :func:`distillation_loss` with hard targets.

    Shapes: ``new_logits`` float ``[N, C]``, ``old_logits`` float ``[N, C_old]`` with
    ``C_old <= C``, ``targets`` int64 ``[N]`` in ``[0, C)``. Returns a scalar.
    """
    old_classes = old_logits.shape[1]
    soft = kd_loss(new_logits[:, :old_classes], old_logits, temperature)
    return alpha * soft + (1 - alpha) * cross_entropy_loss(new_logits, targets)


def _check_options(temperature: float, alpha: float) -> None:
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha}")


def _check_targets(targets: torch.Tensor, name: str, logits: torch.Tensor) -> None:
    checks.check_index(targets, name)
    checks.check_shape(targets, name, [logits.shape[0]], f"[{logits.shape[0]}] ([N] for logits [N, C])")
    checks.check_class_index(targets, name, logits.shape[1], ignore_index=-100)


class DistillationLoss(nn.Module):
    """Module form of :func:`distillation_loss`."""

    def __init__(self, temperature: float = 4.0, alpha: float = 0.5) -> None:
        super().__init__()
        _check_options(temperature, alpha)
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        hard_targets: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            checks.check_float(student_logits, "student_logits")
            checks.check_rank(student_logits, "student_logits", [2], "[N, C]")
            checks.check_float(teacher_logits, "teacher_logits")
            checks.check_same_shape(student_logits, "student_logits", teacher_logits, "teacher_logits")
            if hard_targets is not None:
                _check_targets(hard_targets, "hard_targets", student_logits)
        return distillation_loss(student_logits, teacher_logits, hard_targets, self.temperature, self.alpha)


class LwFLoss(nn.Module):
    """Module form of :func:`lwf_loss`."""

    def __init__(self, temperature: float = 2.0, alpha: float = 0.5) -> None:
        super().__init__()
        _check_options(temperature, alpha)
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def forward(
        self, new_logits: torch.Tensor, old_logits: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            checks.check_float(new_logits, "new_logits")
            checks.check_rank(new_logits, "new_logits", [2], "[N, C]")
            checks.check_float(old_logits, "old_logits")
            checks.check_rank(old_logits, "old_logits", [2], "[N, C_old]")
            batch, classes = new_logits.shape
            if old_logits.shape[0] != batch or old_logits.shape[1] > classes:
                raise InvalidInputError(
                    f"old_logits must have shape [N, C_old] with N = {batch} and "
                    f"C_old <= {classes} (new_logits [N, C]), got "
                    f"{list(old_logits.shape)}"
                )
            _check_targets(targets, "targets", new_logits)
        return lwf_loss(new_logits, old_logits, targets, self.temperature, self.alpha)


def _kd_edges(dtype: torch.dtype):
    extreme = torch.tensor([[30.0, -30.0, 0.0], [-30.0, 30.0, -30.0]], dtype=dtype)
    return {
        "extreme_logits": (extreme, -extreme, torch.tensor([0, 1])),
        "identical": (extreme, extreme.clone(), torch.tensor([0, 1])),
        "batch_of_one": (extreme[:1].clone(), extreme[1:].clone(), torch.tensor([2])),
        "all_ignored": (extreme, -extreme, torch.tensor([-100, -100])),
    }


register(
    Spec(
        name="distillation",
        build=DistillationLoss,
        inputs=(
            TensorSpec("student_logits", ("batch", "classes"), Real(scale=2.0), differentiable=True),
            TensorSpec("teacher_logits", ("batch", "classes"), Real(scale=2.0)),
            TensorSpec("hard_targets", ("batch",), ClassIndex("classes")),
        ),
        outputs=("loss",),
        shapes=({"batch": 4, "classes": 5}, {"batch": 2, "classes": 3}, {"batch": 1, "classes": 8}),
        source="loss-library catalog",
        summary="alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) (batchmean) + (1 - alpha) * "
        "CE(s, y); without hard targets the T^2-scaled KL alone",
        peer="torch.nn.KLDivLoss(reduction='batchmean') * T^2 + torch.nn.functional.cross_entropy",
        edge_cases=_kd_edges,
    )
)


def _lwf_edges(dtype: torch.dtype):
    extreme = torch.tensor([[30.0, -30.0, 0.0], [-30.0, 30.0, -30.0]], dtype=dtype)
    return {
        "extreme_logits": (extreme, -extreme[:, :2], torch.tensor([2, 1])),
        "identical_old": (extreme, extreme[:, :2].clone(), torch.tensor([0, 2])),
        "batch_of_one": (extreme[:1].clone(), extreme[1:, :1].clone(), torch.tensor([2])),
    }


register(
    Spec(
        name="lwf",
        build=LwFLoss,
        inputs=(
            TensorSpec("new_logits", ("batch", "classes"), Real(scale=2.0), differentiable=True),
            TensorSpec("old_logits", ("batch", "old_classes"), Real(scale=2.0)),
            TensorSpec("targets", ("batch",), ClassIndex("classes")),
        ),
        outputs=("loss",),
        shapes=(
            {"batch": 4, "classes": 5, "old_classes": 3},
            {"batch": 2, "classes": 4, "old_classes": 2},
            {"batch": 1, "classes": 6, "old_classes": 6},
        ),
        source="loss-library catalog",
        summary="alpha * T^2 * KL(softmax(old/T) || softmax(new[:, :C_old]/T)) (batchmean) + "
        "(1 - alpha) * CE(new, targets)",
        edge_cases=_lwf_edges,
    )
)
