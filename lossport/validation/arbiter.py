"""The arbiter: when an ONNX check fails, ONNX Runtime and ONNX's reference evaluator
(``onnx-ref``, an independent implementation of the same operator specifications) ran the same
artifact on the same case, so who differs says what kind of failure it is.

For each output (and gradient) of each case on which ``ort-<device>`` or ``onnx-ref`` fails its
tolerance against the eager reference, each runtime's distance from eager is measured in
float32 ulps of the output's scale::

    ulps(x) = max_i |x_i - eager_i| / (eps32 * max_i |eager_i|),   eps32 = 2**-23

A runtime is *off* when it fails the tolerance and ``ulps > PRECISION_ULPS`` (or raised). Then:

- ``precision``: no runtime is off. Both are within a few ulps of eager (so of each other) yet
  outside the tolerance: the tolerance asks for more than float32 gives, the artifact is fine.
- ``export``: both runtimes are off. Two independent implementations agree that the graph
  computes something else: the exported graph (op translation, weights, shapes) is wrong.
- ``runtime``: exactly one runtime is off while the other matches eager: the graph is right and
  that runtime computes it differently (a kernel, a graph optimization, a provider).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lossport.validation.case_run import CaseResult
from lossport.validation.compare import deviation, scale_of

REFEREE = "onnx-ref"
PRECISION_ULPS = 64.0
EPS32 = float(np.finfo(np.float32).eps)
KINDS = ("export", "runtime", "precision")


@dataclass(frozen=True)
class Verdict:
    """The kind of one failing check of ``backend`` (``ort-<device>``) arbitrated by
    ``onnx-ref``: ``failing`` lists the runtimes outside the tolerance, ``ulps`` each runtime's
    distance from eager and theirs from each other (key ``"<a> vs <b>"``)."""

    backend: str
    case: str
    output: str
    kind: str
    failing: Tuple[str, ...]
    ulps: Dict[str, float]
    detail: str

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["failing"] = list(self.failing)
        return data


def ulps(
    reference: Optional[np.ndarray], actual: Optional[np.ndarray], scale: Optional[float] = None
) -> float:
    """``max_i |a_i - r_i| / (eps32 * s)`` with ``s = max|r|`` unless ``scale`` is given (inf
    for a missing or misshapen array)."""
    if reference is None or actual is None or np.shape(reference) != np.shape(actual):
        return float("inf")
    if np.size(reference) == 0:
        return 0.0
    error, _ = deviation(reference, actual)
    worst = float(np.max(error))
    scale = max(scale_of(reference) if scale is None else scale, float(np.finfo(np.float32).tiny))
    return 0.0 if worst == 0 else worst / (EPS32 * scale)


def _judge(
    backend: str,
    case: str,
    output: str,
    passed: Dict[str, bool],
    distances: Dict[str, float],
    between: float,
    errors: Dict[str, str],
) -> Verdict:
    off = [name for name in passed if not passed[name] and distances[name] > PRECISION_ULPS]
    failing = tuple(name for name in passed if not passed[name])
    shown = {name: distances[name] for name in passed}
    shown[f"{backend} vs {REFEREE}"] = between
    numbers = ", ".join(
        f"{name} raised ({errors[name]})" if errors.get(name) else f"{name} {distances[name]:.3g} ulps"
        for name in passed
    )
    if not off:
        kind = "precision"
        detail = (
            f"{' and '.join(failing)} outside the tolerance, but every runtime within "
            f"{PRECISION_ULPS:g} float32 ulps of eager ({numbers}): the tolerance asks for "
            f"more than float32 gives"
        )
    elif len(off) == len(passed):
        kind = "export"
        detail = (
            f"{backend} and {REFEREE} both differ from eager ({numbers}; {between:.3g} ulps "
            f"from each other): the exported graph computes something else"
        )
    else:
        (alone,) = off
        other = next(name for name in passed if name != alone)
        kind = "runtime"
        detail = (
            f"{alone} alone differs from eager ({numbers}): {other} runs the same graph "
            f"{'within the tolerance' if passed[other] else 'within a few ulps'}, so {alone} computes "
            f"it differently"
        )
    return Verdict(backend, case, output, kind, failing, shown, detail)


def classify(
    results: Sequence[CaseResult],
    records: Mapping[str, Mapping[str, Mapping[str, Any]]],
    outputs: Sequence[str],
    gradients: Mapping[str, bool],
) -> List[Verdict]:
    """Verdicts for every failing check of every ``ort-*`` backend or of ``onnx-ref``, where both
    ran the case. ``records[backend][case]`` holds ``expected`` (eager, where the reference ran
    cleanly) and ``actual`` (the backend's outputs, absent where it raised). ``outputs``: the
    spec's outputs (the rest of ``expected`` are gradients); ``gradients``: whether each
    backend's artifact computes the gradients (a gradient is arbitrated where both do)."""
    by_key = {(r.backend, r.case): r for r in results}
    verdicts = []
    for backend in sorted(name for name in records if name.startswith("ort-")):
        for case, record in records[backend].items():
            referee_record = records.get(REFEREE, {}).get(case)
            result, referee = by_key.get((backend, case)), by_key.get((REFEREE, case))
            expected = record.get("expected")
            if referee_record is None or result is None or referee is None or expected is None:
                continue
            actual = {backend: record.get("actual") or {}, REFEREE: referee_record.get("actual") or {}}
            runs = {backend: result, REFEREE: referee}
            for output, reference in expected.items():
                if output not in outputs and not all(gradients.get(name, True) for name in runs):
                    continue  # a gradient not every artifact computes
                passed = {name: _passed(run, output) for name, run in runs.items()}
                if None in passed.values() or all(passed.values()):
                    continue  # not compared (a gradient a runtime does not provide), or agreed
                values = {name: actual[name].get(output) for name in actual}
                distances = {name: ulps(reference, values[name]) for name in values}
                between = ulps(values[REFEREE], values[backend], scale=scale_of(reference))
                errors = {name: run.error for name, run in runs.items()}
                verdicts.append(_judge(backend, case, output, passed, distances, between, errors))
    return verdicts


def _passed(result: CaseResult, output: str) -> Optional[bool]:
    """Whether ``output`` passed (every output fails where the run raised; ``None``: not
    compared)."""
    if result.error:
        return False
    return next((c.passed for c in result.comparisons if c.output == output), None)


def kinds_of(verdicts: Sequence[Verdict], backend: str) -> List[str]:
    """The kinds of the verdicts in which ``backend`` fails, most severe first."""
    found = {v.kind for v in verdicts if backend in v.failing}
    return [kind for kind in KINDS if kind in found]
