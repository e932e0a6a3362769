"""Element-wise comparison of one output against the reference, Polygraphy-style: max abs
error, max rel error, the smallest tolerances that would have passed, and every error as a
fraction of its budget.

For reference values ``r`` and actual values ``a``, element ``i`` has the error
``e_i = |a_i - r_i|`` and the budget ``b_i = atol + rtol * |r_i|``; it passes when
``e_i <= b_i``. Its budget fraction is ``f_i = e_i / b_i`` (0 where ``e_i = 0``, inf where the
budget is 0 and the error is not), so an output passes exactly when ``max_i f_i <= 1``.
Non-finite values equal in both (the same Inf, NaN against NaN) count as no error; any other
NaN is an infinite error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Tuple

import numpy as np

from lossport.validation.policy import Tolerance

# Upper edges of the budget-fraction histogram's bins; a bin holds f in (previous edge, edge].
BUDGET_EDGES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
# Bin labels: exactly 0, one per edge, above the last edge (finite), infinite (or NaN).
BUDGET_BINS = ("0",) + tuple(f"<={edge:g}" for edge in BUDGET_EDGES) + (f">{BUDGET_EDGES[-1]:g}", "inf")


@dataclass(frozen=True)
class Comparison:
    """Result for one output.

    ``max_abs`` is also the smallest atol that would have passed with rtol 0, and ``max_rel``
    the smallest rtol that would have passed with atol 0 (Polygraphy's "minimum required
    tolerance"). ``atol``/``rtol`` are the tolerances applied (for a gradient, ``atol`` is
    ``grad_atol * max|r| + grad_floor``). ``budget`` is ``max_i f_i`` (pass: ``<= 1``);
    ``histogram`` counts the ``f_i`` in the bins of :data:`BUDGET_BINS`. ``min_atol`` is the
    smallest ``--atol`` that passes with the applied rtol and ``min_rtol`` the smallest
    ``--rtol`` that passes with the applied atol: ``min_atol = max_i(e_i - rtol |r_i|)``, for a
    gradient in ``--atol``'s unit there (a fraction of ``max|r|``:
    ``(max_i(e_i - rtol |r_i|) - grad_floor) / max|r|``); ``min_rtol = max_i (e_i - atol) /
    |r_i|`` over the elements with ``e_i > atol``. Both are clipped at 0.
    """

    output: str
    passed: bool
    max_abs: float
    max_rel: float
    atol: float
    rtol: float
    detail: str = ""
    budget: float = 0.0
    min_atol: float = 0.0
    min_rtol: float = 0.0
    histogram: Tuple[int, ...] = ()

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["histogram"] = dict(zip(BUDGET_BINS, self.histogram))
        return data


def failed_comparison(output: str, tolerance: Tolerance, atol: float, detail: str) -> Comparison:
    """An output that could not be compared at all (missing, wrong shape): infinitely off."""
    inf = float("inf")
    return Comparison(output, False, inf, inf, atol, tolerance.rtol, detail, inf, inf, inf)


def deviation(reference: np.ndarray, actual: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(e, |r|)`` element-wise, in float64: matching non-finite values count as no error (and
    no magnitude), a NaN anywhere else as an infinite error. Shapes must be equal."""
    reference = np.asarray(reference, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    matched = ((~np.isfinite(reference)) & (reference == actual)) | (np.isnan(reference) & np.isnan(actual))
    error = np.where(matched, 0.0, np.abs(actual - reference))
    error = np.where(np.isnan(error), np.inf, error)
    return error, np.where(matched, 0.0, np.abs(reference))


def budget_fractions(error: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """``f_i = e_i / b_i``: 0 where ``e_i = 0``, inf where ``b_i = 0 < e_i``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(error == 0, 0.0, error / np.broadcast_to(allowed, error.shape))


def histogram(fractions: np.ndarray) -> Tuple[int, ...]:
    """Counts of ``fractions`` in the bins of :data:`BUDGET_BINS`."""
    fractions = np.asarray(fractions, dtype=np.float64).ravel()
    finite = fractions[np.isfinite(fractions)]
    positive = finite[finite > 0]
    counts = np.bincount(
        np.searchsorted(np.asarray(BUDGET_EDGES), positive, side="left"), minlength=len(BUDGET_EDGES) + 1
    )
    return (int(np.sum(finite == 0)), *map(int, counts), int(fractions.size - finite.size))


def scale_of(reference: np.ndarray) -> float:
    """``max |r|`` over the finite reference values (0 for none)."""
    reference = np.asarray(reference, dtype=np.float64)
    finite = np.abs(reference[np.isfinite(reference)])
    return float(np.max(finite)) if finite.size else 0.0


def compare(
    output: str, reference: np.ndarray, actual: np.ndarray, tolerance: Tolerance, gradient: bool = False
) -> Comparison:
    reference = np.asarray(reference, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    scale = scale_of(reference)
    atol = tolerance.grad_atol * scale + tolerance.grad_floor if gradient else tolerance.atol
    rtol = tolerance.rtol
    if reference.shape != actual.shape:
        return failed_comparison(
            output, tolerance, atol, f"shape {list(actual.shape)} != reference {list(reference.shape)}"
        )
    if reference.size == 0:
        return Comparison(output, True, 0.0, 0.0, atol, rtol, histogram=histogram(np.zeros(0)))
    error, magnitude = deviation(reference, actual)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(error == 0, 0.0, error / magnitude)
    allowed = atol + rtol * magnitude
    fractions = budget_fractions(error, allowed)
    passed = bool(np.all(error <= allowed))
    detail = ""
    if not passed:
        worst = np.unravel_index(int(np.argmax(error - rtol * magnitude)), error.shape)
        detail = f"worst at index {list(map(int, worst))}: got {float(actual[worst])!r}, expected {float(reference[worst])!r}"
    needed_atol = max(0.0, float(np.max(error - rtol * magnitude)))
    if gradient:
        beyond_floor = max(0.0, needed_atol - tolerance.grad_floor)
        min_atol = beyond_floor / scale if scale > 0 else (0.0 if beyond_floor == 0 else float("inf"))
    else:
        min_atol = needed_atol
    over = error > atol
    with np.errstate(divide="ignore", invalid="ignore"):
        needed_rtol = np.where(over, (error - atol) / magnitude, 0.0)
    min_rtol = max(0.0, float(np.max(np.nan_to_num(needed_rtol, nan=np.inf, posinf=np.inf))))
    return Comparison(
        output,
        passed,
        float(np.max(error)),
        float(np.max(relative)),
        atol,
        rtol,
        detail,
        float(np.max(fractions)),
        min_atol,
        min_rtol,
        histogram(fractions),
    )
