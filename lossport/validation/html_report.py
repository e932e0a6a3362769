"""``--html FILE``: the validation as one self-contained page (inline CSS and SVG, no script, no
network needed to open it).

It shows the summary table coloured by budget fraction (the worst error as a fraction of its
tolerance budget, :mod:`lossport.validation.compare`), then per spec: each backend x output's
worst fraction as a bar on a log scale from 1e-6 to 1e2 (the budget is the line at 1), the
histogram of every element's fraction over all cases, the arbiter's verdicts, the image
agreement, and for each localized failure its first divergence, the repro command and the node
table (each node's fraction histogram inline).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple

from lossport.io.atomic import atomic_path
from lossport.validation.compare import BUDGET_BINS
from lossport.validation.results import (
    LEGEND,
    SpecReport,
    backend_columns,
    budgets,
    cell,
    failures,
    fraction,
    skip_lines,
    worst_fraction,
)

LOG_RANGE = (-6.0, 2.0)  # decades of the budget bars
BAR_WIDTH = 240
MAX_NODE_ROWS = 5000  # per localization; --nodes FILE has every row

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: middle; }
th { background: #f3f3f3; }
td.num { font-family: monospace; text-align: right; }
.ok { background: #d9f2d9; } .low { background: #eef7d0; } .near { background: #fff0b3; }
.fail { background: #f6c4c4; } .skip { background: #eee; color: #666; }
pre { background: #f6f6f6; padding: 0.5em; white-space: pre-wrap; word-break: break-all; }
h1 .FAIL { color: #b00; } h1 .PASS { color: #070; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def shade(value: float, failed: bool = False) -> str:
    """CSS class of a budget fraction: ``ok`` (<= 0.01), ``low`` (<= 0.1), ``near`` (<= 1),
    ``fail`` (beyond 1, or a failed check)."""
    if failed or not value <= 1.0:
        return "fail"
    return "ok" if value <= 0.01 else "low" if value <= 0.1 else "near"


def bar(value: float) -> str:
    """An inline SVG bar of ``log10(value)`` on :data:`LOG_RANGE`, with the budget (1) marked."""
    low, high = LOG_RANGE
    span = high - low

    def x(v: float) -> float:
        if v <= 0:
            return 0.0
        if math.isinf(v) or math.isnan(v):
            return float(BAR_WIDTH)
        return max(0.0, min(1.0, (math.log10(v) - low) / span)) * BAR_WIDTH

    limit = x(1.0)
    colour = "#c33" if not value <= 1.0 else "#3a3"
    return (
        f'<svg width="{BAR_WIDTH}" height="14" role="img" aria-label="{_e(fraction(value))} of budget">'
        f"<title>{_e(fraction(value))} of budget</title>"
        f'<rect x="0" y="2" width="{x(value):.1f}" height="10" fill="{colour}"/>'
        f'<line x1="{limit:.1f}" y1="0" x2="{limit:.1f}" y2="14" stroke="#000" stroke-dasharray="2,1"/>'
        "</svg>"
    )


def histogram_svg(counts: Sequence[int], width: int = 12, height: int = 36) -> str:
    """Inline SVG bars of ``counts`` over :data:`~lossport.validation.compare.BUDGET_BINS`
    (heights by ``log(1 + count)`` so that single elements show); bins beyond the budget red."""
    top = max((math.log1p(c) for c in counts), default=0.0) or 1.0
    failing = {i for i, label in enumerate(BUDGET_BINS) if label.startswith(">") or label == "inf"}
    parts = []
    for i, (label, count) in enumerate(zip(BUDGET_BINS, counts)):
        h = math.log1p(count) / top * (height - 2)
        parts.append(
            f'<rect x="{i * width}" y="{height - h:.1f}" width="{width - 2}" height="{h:.1f}" '
            f'fill="{"#c33" if i in failing else "#48a"}"><title>{_e(label)}: {count}</title></rect>'
        )
    return (
        f'<svg width="{len(counts) * width}" height="{height}" role="img" '
        f'aria-label="histogram of error as a fraction of budget">{"".join(parts)}</svg>'
    )


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(text: object, css: str = "") -> str:
    return f'<td class="{css}">{_e(text)}</td>' if css else f"<td>{_e(text)}</td>"


def _summary_table(reports: Sequence[SpecReport]) -> str:
    backends = backend_columns(reports)
    rows = []
    for report in reports:
        row = [f'<td><a href="#{_anchor(report.spec)}">{_e(report.spec)}</a></td>']
        for backend in backends:
            text = cell(report, backend)
            ran = [r for r in report.results if r.backend == backend]
            css = shade(worst_fraction(report, backend), any(not r.passed for r in ran)) if ran else "skip"
            row.append(_td(text, css))
        rows.append(row)
    return _table(["spec", *backends], rows)


def _anchor(name: str) -> str:
    return "spec-" + "".join(ch if ch.isalnum() else "-" for ch in name)


def _histograms(report: SpecReport) -> List[Tuple[str, str, List[int]]]:
    """(backend, output, summed histogram over cases)."""
    sums: dict = {}
    for result in report.results:
        for c in result.comparisons:
            counts = sums.setdefault((result.backend, c.output), [0] * len(BUDGET_BINS))
            for i, n in enumerate(c.histogram):
                counts[i] += n
    return [(b, o, counts) for (b, o), counts in sums.items()]


def _spec_section(report: SpecReport) -> str:
    parts = [f'<section id="{_anchor(report.spec)}"><h2>{_e(report.spec)}</h2>']
    tolerance = report.tolerance
    parts.append(
        f"<p>reference: {_e(report.reference)}; "
        + (
            f"tolerance atol {tolerance.atol:g}, rtol {tolerance.rtol:g}, gradients atol "
            f"{tolerance.grad_atol:g} x max|ref| + {tolerance.grad_floor:g}"
            if tolerance
            else ""
        )
        + "</p>"
    )
    for title, entries in (("skipped", report.skipped), ("dropped", report.dropped), ("note", report.notes)):
        parts += [f"<p>{title} {_e(b)}: {_e(why)}</p>" for b, why in entries.items()]
    rows = []
    histograms = {(b, o): counts for b, o, counts in _histograms(report)}
    for backend, outputs in budgets(report).items():
        for output, entry in outputs.items():
            css = shade(entry["budget"], not entry["passed"])
            rows.append(
                [
                    _td(backend),
                    _td(output),
                    _td("pass" if entry["passed"] else "FAIL", css),
                    _td(fraction(entry["budget"]), "num " + css),
                    f"<td>{bar(entry['budget'])}</td>",
                    _td(f"{entry['min_atol']:.3g}", "num"),
                    _td(f"{entry['min_rtol']:.3g}", "num"),
                    _td(entry["worst_case"]),
                    f"<td>{histogram_svg(histograms.get((backend, output), []))}</td>",
                ]
            )
    parts.append("<h3>Error vs budget, per output</h3>")
    parts.append(
        _table(
            [
                "backend",
                "output",
                "",
                "of budget",
                "log scale 1e-6 .. 1e2 (line: budget)",
                "min --atol",
                "min --rtol",
                "worst case",
                "histogram: " + " ".join(BUDGET_BINS),
            ],
            rows,
        )
    )
    if report.verdicts:
        parts.append("<h3>Arbiter (ONNX Runtime vs the ONNX reference evaluator)</h3>")
        parts.append(
            _table(
                ["backend", "case", "output", "kind", "detail"],
                [
                    [_td(v.backend), _td(v.case), _td(v.output), _td(v.kind, "fail"), _td(v.detail)]
                    for v in report.verdicts
                ],
            )
        )
    if report.images:
        parts.append("<h3>Agreement on images</h3>")
        parts.append(
            _table(
                ["backend", "images", "max |Δscore|", "Spearman", "Kendall τ-b", "flips", "threshold", ""],
                [
                    [
                        _td(a.backend),
                        _td(len(a.paths), "num"),
                        _td(f"{a.max_delta:.3g}", "num"),
                        _td(f"{a.spearman:.4f}", "num"),
                        _td(f"{a.kendall:.4f}", "num"),
                        _td(a.flips, "num"),
                        _td(f"{a.threshold:g}", "num"),
                        _td(
                            "pass" if a.passed else "FAIL: " + "; ".join(a.failures),
                            "ok" if a.passed else "fail",
                        ),
                    ]
                    for a in report.images
                ],
            )
        )
    for found in report.localizations:
        parts.append(f"<h3>Localized: {_e(found.backend)} on {_e(found.case)} (seed {found.seed})</h3>")
        parts.append(f"<p>{_e(found.describe())}</p>")
        if found.repro is not None:
            parts.append(
                f"<p>Minimal repro: {len(found.repro.op_types)} node(s) "
                f"({_e(', '.join(sorted(set(found.repro.op_types))))}); in the bundle's folder "
                f"(<code>--repro DIR</code>), ONNX Runtime alone:</p><pre>{_e(found.repro.command())}</pre>"
            )
        elif found.repro_note:
            parts.append(f"<p>No repro bundle: {_e(found.repro_note)}</p>")
        if found.nodes:
            shown = found.nodes[:MAX_NODE_ROWS]
            parts.append(
                _table(
                    [
                        "#",
                        "graph",
                        "FX node",
                        "FX op",
                        "ONNX node",
                        "ONNX op",
                        "shape",
                        "max abs",
                        "max rel",
                        "of budget",
                        "histogram",
                    ],
                    [
                        [
                            _td(n.index, "num"),
                            _td(n.graph),
                            _td(n.fx_node),
                            _td(n.fx_op),
                            _td(n.onnx_node),
                            _td(n.onnx_op),
                            _td(list(n.shape)),
                            _td(f"{n.max_abs:.3g}", "num"),
                            _td(f"{n.max_rel:.3g}", "num"),
                            _td(fraction(n.budget), "num " + shade(n.budget, not n.passed)),
                            f"<td>{histogram_svg(n.histogram, width=6, height=16)}</td>",
                        ]
                        for n in shown
                    ],
                )
            )
            if len(found.nodes) > len(shown):
                parts.append(f"<p>{len(found.nodes) - len(shown)} more node(s): see --nodes FILE.</p>")
    parts.append("</section>")
    return "".join(parts)


def render(reports: Sequence[SpecReport], seed: int) -> str:
    """The page (see the module docstring)."""
    passed = all(r.passed for r in reports)
    status = "PASS" if passed else "FAIL"
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>lossport validate: {status}</title><style>{_STYLE}</style></head><body>",
        f'<h1>lossport validate: <span class="{status}">{status}</span></h1>',
        f"<p>seed {seed} (replay with --seed {seed}). {_e(LEGEND)}.</p>",
        "<h2>Summary</h2>",
        _summary_table(reports),
    ]
    skipped = skip_lines(reports)
    if skipped:
        lines.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in skipped) + "</ul>")
    problems = failures(reports)
    if problems:
        lines.append("<h2>Mismatches</h2><ul>" + "".join(f"<li>{_e(p)}</li>" for p in problems) + "</ul>")
    lines += [_spec_section(report) for report in reports]
    lines.append("</body></html>")
    return "\n".join(lines)


def write_html(reports: Sequence[SpecReport], path: Path, seed: int) -> None:
    with atomic_path(Path(path)) as temp:
        temp.write_text(render(reports, seed), encoding="utf-8")
