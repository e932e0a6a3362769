"""Validation reports as files: JSON (every number) and JUnit XML (one test case per spec x
backend x case). The terminal text is :mod:`lossport.validation.results`'."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from lossport.io.atomic import atomic_path
from lossport.validation.results import SpecReport


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
