"""Comparison policy: tolerance classes, per spec.

Backends run float32; the reference is eager PyTorch in float64 where the spec allows it, so
the tolerances bound float32 round-off of the backend (plus the float32 reference's own when a
spec cannot run in float64). An element passes when ``|a - r| <= atol + rtol * |r|``.
Gradients use ``atol = grad_atol * max|r| + grad_floor`` instead: a gradient's scale is
arbitrary, so an error is judged relative to the largest component (as the TIGAS fixtures
are), with an absolute floor of float32 noise for gradients that are ~0 everywhere (e.g. a
saturated focal loss, where float64 gives 1e-40 and float32 gives 0).

The classes are :data:`TOLERANCES`, each with what it is used for. An artifact of a reduced
precision (``lossport export --precision fp16|int8|bf16``) is judged by its precision's class instead
of its spec's (:func:`tolerance_class`), in the export check and in ``validate artifact``.
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
    # artifacts of another precision (--precision), whatever the spec's class: float16 weights
    # and activations (10-bit mantissa, 2^-11 = 4.9e-4 relative per rounding, accumulating
    # over tens of layers)
    "fp16": Tolerance(atol=2e-3, rtol=1e-2, grad_atol=1e-2, grad_floor=1e-5),
    # int8 QDQ: activations rounded to 1/255 of their calibrated range at every quantized op;
    # judged on random and edge-case inputs outside the calibration images' statistics (the
    # ranking on real images is judged by --images: Spearman, flips)
    "int8": Tolerance(atol=5e-2, rtol=5e-2, grad_atol=5e-2, grad_floor=1e-3),
    # pt2/AOTInductor bfloat16 weights and compute, float32 inputs/outputs (8-bit mantissa,
    # 2^-9 = 2e-3 relative per rounding, accumulating over the layers)
    "bf16": Tolerance(atol=2e-2, rtol=5e-2, grad_atol=5e-2, grad_floor=1e-4),
}
# the tolerance class of an artifact of each precision other than fp32
PRECISION_CLASSES = {"fp16": "fp16", "int8": "int8", "bf16": "bf16"}


def tolerance_class(spec_class: str, precision: str = "fp32") -> str:
    """The class an artifact is judged by: its precision's (:data:`PRECISION_CLASSES`), else
    the spec's own."""
    return PRECISION_CLASSES.get(precision, spec_class)


def tolerance_for(name: str) -> Tolerance:
    try:
        return TOLERANCES[name]
    except KeyError:
        raise UnknownNameError(f"unknown tolerance class {name!r}; known: {', '.join(TOLERANCES)}") from None
