"""What a validation found: :class:`SpecReport` per spec, and how reports read as text (the
table, skipped backends, notes, one line per mismatch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from lossport.validation.case_run import CaseResult
from lossport.validation.policy import Tolerance

BACKENDS = ("eager", "torchscript", "ort-cpu", "ort-cuda")


@dataclass
class SpecReport:
    """Validation of one spec (or artifact): results per backend x case, and skipped backends."""

    spec: str
    config: Dict[str, Any]
    results: List[CaseResult] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)
    tolerance: Optional[Tolerance] = None
    localized: Dict[str, str] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)  # "export", "run": wall time
    notes: Dict[str, str] = field(default_factory=dict)  # backend -> how its artifact was made

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def to_json(self) -> Dict[str, Any]:
        return {
            "spec": self.spec,
            "config": self.config,
            "passed": self.passed,
            "tolerance": vars(self.tolerance) if self.tolerance else None,
            "skipped": self.skipped,
            "localized": self.localized,
            "seconds": self.seconds,
            "notes": self.notes,
            "results": [r.to_json() for r in self.results],
        }

    def summary(self) -> str:
        """The report as ``lossport validate`` prints it (see :func:`summary`)."""
        return summary([self])


def _cell(report: SpecReport, backend: str) -> str:
    """``pass 3.1e-07`` / ``FAIL 2/9 4.0e-02`` (worst abs error over cases and outputs) / ``skip``."""
    results = [r for r in report.results if r.backend == backend]
    if not results:
        return "skip" if backend in report.skipped else "-"
    worst_abs = max((c.max_abs for r in results for c in r.comparisons), default=0.0)
    failed = sum(not r.passed for r in results)
    status = "pass" if not failed else f"FAIL {failed}/{len(results)}"
    return f"{status} {worst_abs:.1e}"


def _time(report: SpecReport) -> str:
    """Wall time of the spec's artifact exports and of running and comparing every backend."""
    return f"{report.seconds.get('export', 0.0):.1f} + {report.seconds.get('run', 0.0):.1f} s"


def table(reports: Sequence[SpecReport]) -> str:
    """spec x backend: pass/fail/skip with the worst abs error over every case and output, and
    the time taken (exports + runs)."""
    seen = {r.backend for report in reports for r in report.results}
    seen |= {b for report in reports for b in report.skipped}
    backends = [b for b in BACKENDS if b in seen] + sorted(seen - set(BACKENDS))
    header = ["spec"] + list(backends) + ["export + run"]
    rows: List[List[str]] = []
    for report in reports:
        rows.append([report.spec] + [_cell(report, backend) for backend in backends] + [_time(report)])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def failures(reports: Sequence[SpecReport]) -> List[str]:
    """One line per failing spec x backend x case x output, naming errors and tolerances."""
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
                        f"*|ref|){'; ' + c.detail if c.detail else ''}"
                    )
    return lines


def skips(reports: Sequence[SpecReport]) -> Dict[str, str]:
    return {backend: reason for report in reports for backend, reason in report.skipped.items()}


def summary(reports: Sequence[SpecReport]) -> str:
    """Table, skipped backends, notes, mismatches and localized divergences, one per line."""
    lines = [table(reports)]
    lines += [f"skipped {backend}: {reason}" for backend, reason in skips(reports).items()]
    lines += [f"note {r.spec} / {backend}: {note}" for r in reports for backend, note in r.notes.items()]
    lines += [f"mismatch: {line}" for line in failures(reports)]
    lines += [
        f"localized {r.spec} / {backend}: {where}" for r in reports for backend, where in r.localized.items()
    ]
    return "\n".join(lines)
