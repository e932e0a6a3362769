"""Run one case on a backend and compare with the reference backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

from lossport.export.gradient import gradient_names
from lossport.registry import Spec
from lossport.validation.backends import Backend, Outputs
from lossport.validation.cases import Case
from lossport.validation.compare import Comparison, compare
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
        return {"spec": self.spec, "backend": self.backend, "case": self.case, "seed": self.seed,
                "passed": self.passed, "error": self.error,
                "comparisons": [c.to_json() for c in self.comparisons]}


def compare_outputs(spec: Spec, reference: Outputs, actual: Outputs,
                    tolerance: Tolerance) -> List[Comparison]:
    """Every output of the spec must be present; gradients are compared where provided."""
    grads = set(gradient_names(spec))
    results = []
    for name, expected in reference.items():
        if name not in actual:
            if name in grads:
                continue
            results.append(Comparison(name, False, float("inf"), float("inf"), tolerance.atol,
                                      tolerance.rtol, "output missing from the artifact"))
            continue
        results.append(compare(name, expected, actual[name], tolerance, gradient=name in grads))
    return results


def run_case(spec: Spec, reference: Backend, backend: Backend, case: Case,
             tolerance: Tolerance) -> CaseResult:
    result = CaseResult(spec.name, backend.name, case.name, case.seed)
    try:
        expected = reference.run(case.inputs)
        actual = backend.run(case.inputs)
    except Exception as exc:  # a runtime refusing an input is a finding, not a crash
        result.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return result
    result.comparisons = compare_outputs(spec, expected, actual, tolerance)
    return result
