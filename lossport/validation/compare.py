"""Element-wise comparison of one output against the reference, Polygraphy-style: max abs
error, max rel error, and the smallest tolerances that would have passed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict

import numpy as np

from lossport.validation.policy import Tolerance


@dataclass(frozen=True)
class Comparison:
    """Result for one output.

    ``max_abs`` is also the smallest atol that would have passed with rtol 0, and ``max_rel``
    the smallest rtol that would have passed with atol 0 (Polygraphy's "minimum required
    tolerance"). ``atol``/``rtol`` are the tolerances applied.
    """

    output: str
    passed: bool
    max_abs: float
    max_rel: float
    atol: float
    rtol: float
    detail: str = ""

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


def compare(
    output: str, reference: np.ndarray, actual: np.ndarray, tolerance: Tolerance, gradient: bool = False
) -> Comparison:
    reference = np.asarray(reference, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    finite = np.abs(reference[np.isfinite(reference)])
    scale = float(np.max(finite)) if finite.size else 0.0
    atol = tolerance.grad_atol * scale + tolerance.grad_floor if gradient else tolerance.atol
    rtol = tolerance.rtol
    if reference.shape != actual.shape:
        return Comparison(
            output,
            False,
            float("inf"),
            float("inf"),
            atol,
            rtol,
            f"shape {list(actual.shape)} != reference {list(reference.shape)}",
        )
    if reference.size == 0:
        return Comparison(output, True, 0.0, 0.0, atol, rtol)
    same_nonfinite = (~np.isfinite(reference)) & (reference == actual)
    nan_both = np.isnan(reference) & np.isnan(actual)
    matched = same_nonfinite | nan_both
    error = np.where(matched, 0.0, np.abs(actual - reference))
    error = np.where(np.isnan(error), np.inf, error)
    magnitude = np.where(matched, 0.0, np.abs(reference))
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(error == 0, 0.0, error / magnitude)
    max_abs = float(np.max(error))
    max_rel = float(np.max(relative))
    passed = bool(np.all(error <= atol + rtol * magnitude))
    detail = ""
    if not passed:
        worst = np.unravel_index(int(np.argmax(error - rtol * magnitude)), error.shape)
        detail = (
            f"worst at index {list(map(int, worst))}: got {actual[worst]!r}, expected {reference[worst]!r}"
        )
    return Comparison(output, passed, max_abs, max_rel, atol, rtol, detail)
