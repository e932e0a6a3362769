"""Input checks at the API boundary of losses and models.

Every check raises :class:`~lossport.errors.InvalidInputError` with a message that names the
argument, what it got and what was expected. Losses call these from ``forward`` only in eager
mode, under the guard::

    if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
        ...checks...

so that neither TorchScript nor the ONNX exporter sees a data-dependent branch. Value-domain
checks (``check_range``, ``check_class_index``) read the data and cost a reduction each; they
are not meant for hot inner loops.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from lossport.errors import ConfigError, InvalidInputError


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def check_tensor(value: object, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise InvalidInputError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_float(t: torch.Tensor, name: str) -> None:
    """``t`` is a floating-point tensor."""
    check_tensor(t, name)
    if not t.is_floating_point():
        raise InvalidInputError(
            f"{name} must be a floating-point tensor, got {t.dtype}; convert with .float()"
        )


def check_index(t: torch.Tensor, name: str) -> None:
    """``t`` holds integer class indices (int64 expected; other integer types are refused)."""
    check_tensor(t, name)
    if t.dtype != torch.int64:
        raise InvalidInputError(
            f"{name} must be an int64 tensor of class indices, got {t.dtype}; convert with .long()"
        )


def check_rank(t: torch.Tensor, name: str, ranks: Sequence[int], expected: str) -> None:
    """``t.dim()`` is one of ``ranks``; ``expected`` is the human shape, e.g. ``"[N, C]"``."""
    check_tensor(t, name)
    if t.dim() not in ranks:
        raise InvalidInputError(
            f"{name} must have shape {expected} ({' or '.join(map(str, ranks))}"
            f"-D), got {t.dim()}-D shape {_shape(t)}"
        )


def check_min_rank(t: torch.Tensor, name: str, rank: int, expected: str) -> None:
    check_tensor(t, name)
    if t.dim() < rank:
        raise InvalidInputError(
            f"{name} must have shape {expected} (at least {rank}-D), got shape {_shape(t)}"
        )


def check_same_shape(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    check_tensor(a, a_name)
    check_tensor(b, b_name)
    if a.shape != b.shape:
        raise InvalidInputError(f"{b_name} must have the same shape as {a_name} {_shape(a)}, got {_shape(b)}")


def check_shape(t: torch.Tensor, name: str, shape: Sequence[Optional[int]], expected: str) -> None:
    """``t`` has exactly ``shape``, where ``None`` matches any size; ``expected`` is human text."""
    check_tensor(t, name)
    ok = t.dim() == len(shape) and all(s is None or s == d for s, d in zip(shape, t.shape))
    if not ok:
        raise InvalidInputError(f"{name} must have shape {expected}, got {_shape(t)}")


def check_dim(t: torch.Tensor, name: str, dim: int, size: int, what: str) -> None:
    """``t.shape[dim] == size``; ``what`` says what the size is (e.g. ``"num_classes = 4"``)."""
    if t.shape[dim] != size:
        raise InvalidInputError(
            f"{name} must have size {size} ({what}) in dimension {dim}, got shape {_shape(t)}"
        )


def check_finite(t: torch.Tensor, name: str) -> None:
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise InvalidInputError(f"{name} contains NaN or Inf; the loss is defined for finite values only")


def check_range(t: torch.Tensor, name: str, low: float, high: float, what: str = "values") -> None:
    """Every element of ``t`` lies in ``[low, high]`` (NaN fails too)."""
    if t.numel() == 0:
        return
    inside = (t >= low) & (t <= high)
    if not bool(inside.all()):
        bad = t[~inside].flatten()[0].item()
        raise InvalidInputError(f"{name} must hold {what} in [{low:g}, {high:g}], found {bad!r}")


def check_class_index(
    t: torch.Tensor,
    name: str,
    num_classes: int,
    ignore_index: Optional[int] = None,
    allow_negative: bool = False,
) -> None:
    """Every index is in ``[0, num_classes)``, or equals ``ignore_index``, or (with
    ``allow_negative``) is negative, meaning "background/ignored"."""
    check_index(t, name)
    if t.numel() == 0:
        return
    valid = (t >= 0) & (t < num_classes)
    if ignore_index is not None:
        valid |= t == ignore_index
    if allow_negative:
        valid |= t < 0
    if not bool(valid.all()):
        bad = int(t[~valid].flatten()[0].item())
        extra = f" or {ignore_index} (ignore_index)" if ignore_index is not None else ""
        extra += " or negative (ignored)" if allow_negative else ""
        raise InvalidInputError(f"{name} holds class index {bad}; expected [0, {num_classes}){extra}")


def check_choice(value: str, name: str, choices: Sequence[str]) -> None:
    """A constructor option is one of ``choices`` (raises :class:`ConfigError`)."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
