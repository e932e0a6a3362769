"""Comparison policy: tolerance classes, per spec.

Backends run float32; the reference is eager PyTorch in float64 where the spec allows it, so
the tolerances bound float32 round-off of the backend (plus the float32 reference's own when a
spec cannot run in float64). An element passes when ``|a - r| <= atol + rtol * |r|``.
Gradients use ``atol = grad_atol * max|r| + grad_floor`` instead: a gradient's scale is
arbitrary, so an error is judged relative to the largest component (as the TIGAS fixtures
are), with an absolute floor of float32 noise for gradients that are ~0 everywhere (e.g. a
saturated focal loss, where float64 gives 1e-40 and float32 gives 0).

The classes are :data:`TOLERANCES`, each with what it is used for.
``--atol``/``--rtol`` override atol/rtol (and grad_atol takes the ``--atol`` value too).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from lossport.errors import UnknownNameError


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    grad_atol: float
    grad_floor: float

    def overridden(self, atol: Optional[float] = None, rtol: Optional[float] = None) -> "Tolerance":
        result = self
        if atol is not None:
            result = replace(result, atol=atol, grad_atol=atol)
        if rtol is not None:
            result = replace(result, rtol=rtol)
        return result


TOLERANCES = {
    # losses
    "default": Tolerance(atol=1e-5, rtol=1e-4, grad_atol=1e-4, grad_floor=1e-6),
    # FFT / mel losses: long float32 sums
    "loose": Tolerance(atol=1e-4, rtol=1e-3, grad_atol=1e-3, grad_floor=1e-5),
    # TIGAS (its fixtures: 1e-5 absolute, 1e-4 of max |grad|)
    "model": Tolerance(atol=1e-5, rtol=1e-4, grad_atol=1e-4, grad_floor=1e-7),
}


def tolerance_for(name: str) -> Tolerance:
    try:
        return TOLERANCES[name]
    except KeyError:
        raise UnknownNameError(f"unknown tolerance class {name!r}; known: {', '.join(TOLERANCES)}") from None
