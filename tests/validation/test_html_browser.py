"""The ``--html`` report rendered in real headless Chromium (Debian's ``chromium``, driven by
Playwright as in tests/examples/test_web.py), with every network request refused: the page must
render all of itself from the one file (tables coloured by budget fraction, inline SVG bars and
histograms, node table, repro command), and ask for nothing else. Skips without chromium or the
playwright package, except under CI (the ``CI`` environment variable), where it fails."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest
from browser import launch_chromium

from lossport.validation.html_report import write_html
from lossport.validation.suite import ValidationOptions, validate_spec

pytestmark = pytest.mark.examples  # a real browser, as the browser example's tests


def _require_browser() -> None:
    missing = [] if shutil.which("chromium") else ["chromium"]
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright Python package")
    if missing:
        reason = f"{', '.join(missing)} not found"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; the CI machine must have it")
        pytest.skip(reason)


def test_the_html_report_renders_offline_in_chromium(erf_sum, wrong_erf, tmp_path):
    _require_browser()
    from playwright.sync_api import sync_playwright

    options = ValidationOptions(backends=("ort-cpu", "onnx-ref"), localize=True, nodes=True, repro=True)
    page_path = tmp_path / "report.html"
    write_html([validate_spec(erf_sum, options=options)], page_path, seed=options.seed)
    requested, errors = [], []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console", lambda message: errors.append(message.text) if message.type == "error" else None
            )

            def refuse_others(route):
                requested.append(route.request.url)
                if route.request.url == page_path.as_uri():
                    route.continue_()
                else:
                    route.abort()

            page.route("**/*", refuse_others)
            page.goto(page_path.as_uri())
            assert page.title() == "lossport validate: FAIL"
            failing = page.eval_on_selector(
                "table td.fail", "cell => [cell.textContent, getComputedStyle(cell).backgroundColor]"
            )
            assert failing[0].startswith("FAIL 2/2") and failing[0].endswith("export")
            assert failing[1] == "rgb(246, 196, 196)"  # coloured by budget fraction
            boxes = page.eval_on_selector_all(
                "svg",
                "svgs => svgs.map(s => [s.getBoundingClientRect().width, s.querySelectorAll('rect').length])",
            )
            assert len(boxes) >= 8 and all(width > 0 and rects > 0 for width, rects in boxes)
            text = page.inner_text("body")
            assert "first divergence at Tanh node output 'erf'" in text
            assert "aten.erf.default" in text and "REPRODUCED" in text
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert requested == [page_path.as_uri()]
    assert errors == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
