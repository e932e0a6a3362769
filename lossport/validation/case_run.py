"""Run one case on a backend and compare every output (and gradient) with the reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from lossport.export.gradient import gradient_names
from lossport.spec import Spec
from lossport.validation.backends import Backend, NotApplicable, Outputs
from lossport.validation.cases import Case
from lossport.validation.compare import Comparison, compare, failed_comparison
from lossport.validation.policy import Tolerance


@dataclass
class CaseResult:
    """One spec x backend x case: every compared output, or the error that stopped the run."""

    spec: str
    backend: str
    case: str
    seed: int
    comparisons: List[Comparison] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and all(c.passed for c in self.comparisons)

    def to_json(self) -> Dict[str, Any]:
        return {
            "spec": self.spec,
            "backend": self.backend,
            "case": self.case,
            "seed": self.seed,
            "passed": self.passed,
            "error": self.error,
            "comparisons": [c.to_json() for c in self.comparisons],
        }


def compare_outputs(
    spec: Spec, reference: Outputs, actual: Outputs, tolerance: Tolerance, gradients_required: bool = True
) -> List[Comparison]:
    """Every output of the spec must be present, and every gradient where
    ``gradients_required`` (the backend claims to compute them)."""
    grads = set(gradient_names(spec))
    results = []
    for name, expected in reference.items():
        if name not in actual:
            if name in grads and not gradients_required:
                continue
            results.append(
                failed_comparison(name, tolerance, tolerance.atol, "output missing from the artifact")
            )
            continue
        results.append(compare(name, expected, actual[name], tolerance, gradient=name in grads))
    return results


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def run_case(
    spec: Spec,
    reference: Backend,
    backend: Backend,
    case: Case,
    tolerance: Tolerance,
    record: Optional[Dict[str, Outputs]] = None,
) -> CaseResult:
    """Run ``case`` on both backends and compare. A reference output that is not finite fails
    the case (NaN agreeing with NaN proves nothing) unless the spec lists the case in
    ``nonfinite_cases``. ``record`` receives ``expected`` (the reference's outputs, once they
    are usable) and ``actual`` (the backend's, where it ran). :class:`NotApplicable` from the
    backend propagates: the backend cannot run at all."""
    result = CaseResult(spec.name, backend.name, case.name, case.seed)
    try:
        expected = reference.run(case.inputs)
    except Exception as exc:  # a reference that cannot run the case fails it, with the reason
        result.error = _error(exc)
        return result
    nonfinite = [
        name
        for name, value in expected.items()
        if np.issubdtype(np.asarray(value).dtype, np.floating) and not np.isfinite(value).all()
    ]
    if nonfinite and case.name not in spec.nonfinite_cases:
        result.error = (
            f"the eager reference gives non-finite values (NaN/Inf) in "
            f"{', '.join(nonfinite)}: check the config and inputs"
        )
        return result
    if record is not None:
        record["expected"] = expected
    try:
        actual = backend.run(case.inputs)
    except NotApplicable:
        raise
    except Exception as exc:  # a runtime refusing an input is a finding, not a crash
        result.error = _error(exc)
        return result
    if record is not None:
        record["actual"] = actual
    result.comparisons = compare_outputs(spec, expected, actual, tolerance, backend.provides_gradients)
    return result
