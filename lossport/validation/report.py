"""Validation reports as files: JSON (every number), JUnit XML (one test case per spec x
backend x case) and the node tables of ``--nodes`` (CSV or JSON). The terminal text is
:mod:`lossport.validation.results`', the HTML page :mod:`lossport.validation.html_report`'s."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from lossport.errors import ConfigError
from lossport.io.atomic import atomic_path, check_writable
from lossport.validation.compare import BUDGET_BINS
from lossport.validation.results import SpecReport

NODE_FORMATS = (".csv", ".json")
NODE_COLUMNS = (
    "spec",
    "backend",
    "case",
    "index",
    "graph",
    "value",
    "fx_node",
    "fx_op",
    "onnx_node",
    "onnx_op",
    "shape",
    "reference_shape",
    "dtype",
    "max_abs",
    "max_rel",
    "budget",
    "passed",
)


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
        kinds = {
            (name, v.case, v.output): v.kind for v in report.verdicts for name in v.failing
        }  # the arbiter's classification, where onnx-ref ran
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
                    kind = kinds.get((result.backend, result.case, check.output))
                    ET.SubElement(
                        case,
                        "failure",
                        message=(
                            (f"{kind}: " if kind else "")
                            + f"max abs {check.max_abs:.3g}, max rel {check.max_rel:.3g}, "
                            f"atol {check.atol:.3g}, rtol {check.rtol:.3g} "
                            f"({check.budget:.3g} of budget). {check.detail}"
                        ),
                    )
        for agreement in report.images:
            cases += 1
            case = ET.SubElement(suite, "testcase", classname=report.spec, name=f"{agreement.backend}:images")
            if not agreement.passed:
                ET.SubElement(
                    case, "failure", message=f"{agreement.describe()}: {'; '.join(agreement.failures)}"
                )
        for backend, reason in report.skipped.items():
            cases += 1
            case = ET.SubElement(suite, "testcase", classname=report.spec, name=backend)
            ET.SubElement(case, "skipped", message=reason)
        suite.set("tests", str(cases))
        suite.set(
            "failures",
            str(
                sum(1 for r in report.results for c in r.comparisons if not c.passed)
                + sum(not a.passed for a in report.images)
            ),
        )
        suite.set("errors", str(sum(1 for r in report.results if r.error)))
    with atomic_path(Path(path)) as temp:
        ET.ElementTree(suites).write(temp, encoding="utf-8", xml_declaration=True)


def check_nodes_path(path: Optional[Path]) -> None:
    """Fail before any work unless ``path`` is a writable ``.csv`` or ``.json`` file name."""
    if path is None:
        return
    if Path(path).suffix.lower() not in NODE_FORMATS:
        raise ConfigError(f"--nodes {path}: give a .csv or .json file name")
    check_writable(Path(path))


def node_rows(reports: Sequence[SpecReport]) -> List[Dict[str, Any]]:
    """Every paired node of every localized failure, with its spec, backend and case."""
    rows = []
    for report in reports:
        for found in report.localizations:
            for node in found.nodes:
                rows.append(
                    {"spec": report.spec, "backend": found.backend, "case": found.case, **node.to_json()}
                )
    return rows


def write_nodes(reports: Sequence[SpecReport], path: Path) -> int:
    """``--nodes``: one row per paired node (:class:`~lossport.validation.localize.NodeRow`),
    as CSV (one column per histogram bin, ``hist <bin>``) or JSON (``{"nodes": [...]}``, the
    histogram as ``{bin: count}``). Returns the number of rows."""
    rows = node_rows(reports)
    with atomic_path(Path(path)) as temp:
        if Path(path).suffix.lower() == ".json":
            temp.write_text(json.dumps({"bins": list(BUDGET_BINS), "nodes": rows}, indent=1))
        else:
            with temp.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow([*NODE_COLUMNS, *(f"hist {b}" for b in BUDGET_BINS)])
                for row in rows:
                    values = [row[c] for c in NODE_COLUMNS]
                    writer.writerow([*values, *(row["histogram"][b] for b in BUDGET_BINS)])
    return len(rows)
