"""What a validation found: :class:`SpecReport` per spec, and how reports read as text (the
table, skipped backends, notes, one line per mismatch, arbiter verdicts, image agreement).

A table cell is the worst error of that spec on that backend as a fraction of its tolerance
budget (``max_i |a_i - r_i| / (atol + rtol * |r_i|)`` over every case, output and element, see
:mod:`lossport.validation.compare`): ``pass 0.002`` is 0.2% of what is allowed, and a cell
passes exactly when that is at most 1. The ``eager`` column is eager PyTorch in float32 against
the float64 reference; where a spec's reference is float32 eager itself (no float64), the
column would compare the reference with itself and shows ``= ref`` instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from lossport.validation.arbiter import REFEREE, Verdict, kinds_of
from lossport.validation.case_run import CaseResult
from lossport.validation.images import ImageAgreement
from lossport.validation.localize import Localization
from lossport.validation.policy import Tolerance
from lossport.validation.registry import ALL_BACKENDS

LEGEND = (
    "cells: worst error as a fraction of its tolerance budget (pass <= 1); eager: float32 eager "
    "vs the float64 reference ('= ref': the reference is float32 eager itself)"
)


@dataclass
class SpecReport:
    """Validation of one spec (or artifact): results per backend x case, and skipped backends.

    ``reference``: the backend every other is compared with (``eager-float64`` or
    ``eager-float32``); ``verdicts``: the arbiter's kind of every failing ONNX check (with
    ``onnx-ref``); ``localizations``: ``--localize`` per failing ONNX backend; ``images``:
    ``--images`` agreement per artifact backend; ``dropped``: backends not run because they
    would compare the reference with itself (``eager`` where the reference is float32 eager).
    """

    spec: str
    config: Dict[str, Any]
    results: List[CaseResult] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)
    tolerance: Optional[Tolerance] = None
    localized: Dict[str, str] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)  # "export", "run": wall time
    notes: Dict[str, str] = field(default_factory=dict)  # backend -> how its artifact was made
    reference: str = ""
    verdicts: List[Verdict] = field(default_factory=list)
    localizations: List[Localization] = field(default_factory=list)
    images: List[ImageAgreement] = field(default_factory=list)
    dropped: Dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results) and all(i.passed for i in self.images)

    def to_json(self) -> Dict[str, Any]:
        return {
            "spec": self.spec,
            "config": self.config,
            "passed": self.passed,
            "reference": self.reference,
            "tolerance": vars(self.tolerance) if self.tolerance else None,
            "skipped": self.skipped,
            "dropped": self.dropped,
            "localized": self.localized,
            "seconds": self.seconds,
            "notes": self.notes,
            "budgets": budgets(self),
            "verdicts": [v.to_json() for v in self.verdicts],
            "localizations": [loc.to_json() for loc in self.localizations],
            "images": [i.to_json() for i in self.images],
            "results": [r.to_json() for r in self.results],
        }

    def summary(self) -> str:
        """The report as ``lossport validate`` prints it (see :func:`summary`)."""
        return summary([self])


def budgets(report: SpecReport) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """backend -> output -> the worst over cases: ``budget`` (fraction used), ``min_atol`` and
    ``min_rtol`` (the smallest ``--atol`` / ``--rtol`` that pass every case, the other one as
    applied), ``passed``, and the case with the largest fraction."""
    table: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for result in report.results:
        for c in result.comparisons:
            entry = table.setdefault(result.backend, {}).setdefault(
                c.output,
                {"budget": 0.0, "min_atol": 0.0, "min_rtol": 0.0, "passed": True, "worst_case": result.case},
            )
            if c.budget > entry["budget"] or (not c.passed and entry["passed"]):
                entry["worst_case"] = result.case
            entry["budget"] = max(entry["budget"], c.budget)
            entry["min_atol"] = max(entry["min_atol"], c.min_atol)
            entry["min_rtol"] = max(entry["min_rtol"], c.min_rtol)
            entry["passed"] = entry["passed"] and c.passed
    return table


def fraction(value: float) -> str:
    """A budget fraction, two significant digits: ``0.002``, ``1.2e-05``, ``31``, ``inf``."""
    if math.isinf(value) or math.isnan(value):
        return "inf" if math.isinf(value) else "nan"
    return f"{value:.2g}"


def worst_fraction(report: SpecReport, backend: str) -> float:
    """The largest budget fraction of ``backend`` over every case and output (inf on an error)."""
    results = [r for r in report.results if r.backend == backend]
    if any(r.error for r in results):
        return float("inf")
    return max((c.budget for r in results for c in r.comparisons), default=0.0)


def cell(report: SpecReport, backend: str) -> str:
    """``pass 0.002`` / ``FAIL 2/9 31 export`` (worst budget fraction over cases and outputs,
    the arbiter's kinds) / ``skip`` / ``= ref``."""
    results = [r for r in report.results if r.backend == backend]
    if not results:
        if backend in report.dropped:
            return "= ref"
        return "skip" if backend in report.skipped else "-"
    failed = sum(not r.passed for r in results)
    status = "pass" if not failed else f"FAIL {failed}/{len(results)}"
    kinds = " ".join(kinds_of(report.verdicts, backend))
    return f"{status} {fraction(worst_fraction(report, backend))}" + (f" {kinds}" if kinds else "")


def _time(report: SpecReport) -> str:
    """Wall time of the spec's artifact exports and of running and comparing every backend."""
    return f"{report.seconds.get('export', 0.0):.1f} + {report.seconds.get('run', 0.0):.1f} s"


def backend_columns(reports: Sequence[SpecReport]) -> List[str]:
    """The backends any report ran, skipped or dropped, in :data:`ALL_BACKENDS` order."""
    seen = {r.backend for report in reports for r in report.results}
    seen |= {b for report in reports for b in (*report.skipped, *report.dropped)}
    return [b for b in ALL_BACKENDS if b in seen] + sorted(seen - set(ALL_BACKENDS))


def table(reports: Sequence[SpecReport]) -> str:
    """spec x backend: pass/fail/skip with the worst budget fraction over every case and output,
    and the time taken (exports + runs)."""
    backends = backend_columns(reports)
    header = ["spec"] + list(backends) + ["export + run"]
    rows: List[List[str]] = []
    for report in reports:
        rows.append([report.spec] + [cell(report, backend) for backend in backends] + [_time(report)])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def failures(reports: Sequence[SpecReport]) -> List[str]:
    """One line per failing spec x backend x case x output, naming errors, tolerances and the
    budget fraction; and one per unmet ``--images`` criterion."""
    lines = []
    for report in reports:
        for result in report.results:
            where = f"{result.spec} / {result.backend} / {result.case} (seed {result.seed})"
            if result.error:
                lines.append(f"{where}: {result.error}")
            for c in result.comparisons:
                if not c.passed:
                    lines.append(
                        f"{where}: {c.output} max abs {c.max_abs:.3g}, max rel "
                        f"{c.max_rel:.3g} (allowed atol {c.atol:.3g} + rtol {c.rtol:.3g}"
                        f"*|ref|; {fraction(c.budget)} of budget)"
                        f"{'; ' + c.detail if c.detail else ''}"
                    )
        for agreement in report.images:
            lines += [f"{report.spec} / {agreement.backend} / images: {why}" for why in agreement.failures]
    return lines


def skips(reports: Sequence[SpecReport]) -> Dict[str, str]:
    return {backend: reason for report in reports for backend, reason in report.skipped.items()}


def skip_lines(reports: Sequence[SpecReport]) -> List[str]:
    """``skipped <backend>: <reason>`` once where every report skips it for the same reason
    (a missing GPU), else ``skipped <spec> / <backend>: <reason>`` per report."""
    reasons: Dict[str, List[tuple]] = {}
    for report in reports:
        for backend, reason in report.skipped.items():
            reasons.setdefault(backend, []).append((report.spec, reason))
    lines = []
    for backend, found in reasons.items():
        if len({reason for _, reason in found}) == 1:
            lines.append(f"skipped {backend}: {found[0][1]}")
        else:
            lines += [f"skipped {spec} / {backend}: {reason}" for spec, reason in found]
    return lines


def verdict_lines(report: SpecReport) -> List[str]:
    """One line per backend and kind: how many failing checks, which outputs, the first detail."""
    lines = []
    groups: Dict[tuple, List[Verdict]] = {}
    for verdict in report.verdicts:
        groups.setdefault((verdict.backend, verdict.kind), []).append(verdict)
    for (backend, kind), found in groups.items():
        outputs = ", ".join(dict.fromkeys(v.output for v in found))
        lines.append(
            f"{report.spec} / {backend} vs {REFEREE}: {kind} on {len(found)} failing check(s) "
            f"({outputs}): {found[0].detail}"
        )
    return lines


def summary(reports: Sequence[SpecReport]) -> str:
    """Table, legend, skipped backends, notes, mismatches, arbiter verdicts, image agreement
    and localized divergences, one per line."""
    lines = [table(reports), LEGEND]
    lines += skip_lines(reports)
    lines += [f"note {r.spec} / {backend}: {note}" for r in reports for backend, note in r.notes.items()]
    lines += [f"mismatch: {line}" for line in failures(reports)]
    lines += [f"arbiter {line}" for r in reports for line in verdict_lines(r)]
    lines += [
        f"images {r.spec} / {a.backend}: {a.describe()} -- {'pass' if a.passed else 'FAIL'}"
        for r in reports
        for a in r.images
    ]
    lines += [
        f"localized {r.spec} / {backend}: {where}" for r in reports for backend, where in r.localized.items()
    ]
    return "\n".join(lines)
