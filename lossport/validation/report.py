"""Validation reports: a terminal table, JSON (every number), JUnit XML (one test case per
spec x backend x case)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Sequence

from lossport.io.atomic import atomic_path
from lossport.validation.suite import BACKENDS as BACKEND_ORDER
from lossport.validation.suite import SpecReport


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
    backends = [b for b in BACKEND_ORDER if b in seen] + sorted(seen - set(BACKEND_ORDER))
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


def write_json(reports: Sequence[SpecReport], path: Path, seed: int) -> None:
    with atomic_path(Path(path)) as temp:
        temp.write_text(
            json.dumps(
                {
                    "seed": seed,
                    "passed": all(r.passed for r in reports),
                    "specs": [r.to_json() for r in reports],
                },
                indent=2,
            )
        )


def write_junit(reports: Sequence[SpecReport], path: Path) -> None:
    suites = ET.Element("testsuites", name="lossport validate")
    for report in reports:
        suite = ET.SubElement(suites, "testsuite", name=report.spec)
        cases = 0
        for result in report.results:
            for check in result.comparisons or [None]:
                cases += 1
                name = f"{result.backend}:{result.case}" + (f":{check.output}" if check else "")
                case = ET.SubElement(suite, "testcase", classname=report.spec, name=name)
                if result.error:
                    ET.SubElement(case, "error", message=result.error)
                elif check is not None and not check.passed:
                    ET.SubElement(
                        case,
                        "failure",
                        message=(
                            f"max abs {check.max_abs:.3g}, max rel {check.max_rel:.3g}, "
                            f"atol {check.atol:.3g}, rtol {check.rtol:.3g}. {check.detail}"
                        ),
                    )
        for backend, reason in report.skipped.items():
            cases += 1
            case = ET.SubElement(suite, "testcase", classname=report.spec, name=backend)
            ET.SubElement(case, "skipped", message=reason)
        suite.set("tests", str(cases))
        suite.set("failures", str(sum(1 for r in report.results for c in r.comparisons if not c.passed)))
        suite.set("errors", str(sum(1 for r in report.results if r.error)))
    with atomic_path(Path(path)) as temp:
        ET.ElementTree(suites).write(temp, encoding="utf-8", xml_declaration=True)
