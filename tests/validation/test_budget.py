"""Tolerance budgets: errors as a fraction of what the tolerance allows, the minimum atol / rtol
that would pass (and do pass when given back), the histogram of fractions, and an ``eager``
column that says what it compares."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from lossport import catalog
from lossport.cli import main
from lossport.validation.compare import BUDGET_BINS, compare, histogram
from lossport.validation.policy import TOLERANCES
from lossport.validation.results import budgets, cell, fraction, worst_fraction
from lossport.validation.suite import ValidationOptions, validate_spec


@pytest.mark.parametrize("gradient", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_min_atol_and_min_rtol_are_the_smallest_that_pass(seed, gradient):
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=50) * 10.0 ** rng.integers(-3, 4)
    reference[rng.integers(50)] = 0.0
    actual = reference + rng.normal(size=50) * 1e-4 * np.abs(reference).max()
    tolerance = TOLERANCES["default"]
    result = compare("x", reference, actual, tolerance, gradient=gradient)
    assert result.passed == (result.budget <= 1.0)
    assert sum(result.histogram) == reference.size and len(result.histogram) == len(BUDGET_BINS)
    assert compare("x", reference, actual, tolerance.overridden(atol=result.min_atol), gradient).passed
    if np.isfinite(result.min_rtol):  # inf where the reference is 0 and the error beyond atol
        assert compare("x", reference, actual, tolerance.overridden(rtol=result.min_rtol), gradient).passed
    else:
        assert not compare("x", reference, actual, tolerance.overridden(rtol=1e30), gradient).passed
    if result.min_atol > 0:
        assert not compare(
            "x", reference, actual, tolerance.overridden(atol=result.min_atol * 0.99), gradient
        ).passed
    if 0 < result.min_rtol < np.inf:
        assert not compare(
            "x", reference, actual, tolerance.overridden(rtol=result.min_rtol * 0.99), gradient
        ).passed


def test_budget_fraction_of_a_large_gradient_is_small():
    """The issue's ciou case: 8e-2 absolute on a gradient of magnitude 4e5 is 2e-7 relative,
    a small fraction of its budget (1e-4 * max|ref|)."""
    tolerance = TOLERANCES["default"]
    reference = np.array([4.0e5, -3.0e5, 1.0])
    result = compare("grad", reference, reference + np.array([0.081, 0.0, 0.0]), tolerance, gradient=True)
    assert result.passed and result.max_abs == pytest.approx(0.081)
    assert result.budget == pytest.approx(0.081 / (1e-4 * 4e5 + 1e-6 + 1e-4 * 4e5), rel=1e-6)
    assert fraction(result.budget) == "0.001"


def test_histogram_bins_and_edges():
    fractions = np.array([0.0, 1e-7, 1e-6, 5e-3, 1.0, 1.5, 200.0, np.inf, np.nan])
    counts = dict(zip(BUDGET_BINS, histogram(fractions)))
    assert counts["0"] == 1 and counts["<=1e-06"] == 2 and counts["<=0.01"] == 1
    assert counts["<=1"] == 1 and counts["<=10"] == 1 and counts[">100"] == 1 and counts["inf"] == 2
    assert sum(counts.values()) == fractions.size


def test_table_cells_are_budget_fractions_and_eager_says_what_it_compares():
    report = validate_spec(catalog.get_spec("rmse"), options=ValidationOptions(backends=("eager", "ort-cpu")))
    assert report.reference == "eager-float64"
    for backend in ("eager", "ort-cpu"):
        text = cell(report, backend)
        assert text == f"pass {fraction(worst_fraction(report, backend))}"
        assert 0 < worst_fraction(report, backend) < 1
    summary = report.summary()
    assert (
        "fraction of its tolerance budget" in summary and "float32 eager vs the float64 reference" in summary
    )
    table = budgets(report)
    assert set(table["ort-cpu"]) == {"loss", "grad_prediction"}
    assert {"budget", "min_atol", "min_rtol", "passed", "worst_case"} <= set(table["ort-cpu"]["loss"])


def test_min_tolerances_in_the_json_pass_when_given_back(tmp_path):
    runner = CliRunner()
    first = tmp_path / "a.json"
    args = ["validate", "losses", "rmse", "--backends", "ort-cpu", "--atol", "0"]
    result = runner.invoke(main, [*args, "--rtol", "1e-12", "--json", str(first)])
    assert result.exit_code == 1
    assert re.search(r"rmse\s+FAIL \d+/\d+ \S+", result.output), result.output
    data = json.loads(first.read_text())
    comparison = data["specs"][0]["results"][0]["comparisons"][0]
    assert {"budget", "min_atol", "min_rtol", "histogram"} <= set(comparison)
    assert set(comparison["histogram"]) == set(BUDGET_BINS)
    needed = max(entry["min_rtol"] for entry in data["specs"][0]["budgets"]["ort-cpu"].values())
    again = runner.invoke(main, [*args, "--rtol", repr(needed)])
    assert again.exit_code == 0, again.output


def test_the_eager_column_is_dropped_where_it_is_the_reference_itself(erf_sum_float32):
    report = validate_spec(erf_sum_float32, options=ValidationOptions(backends=("eager", "ort-cpu")))
    assert report.reference == "eager-float32"
    assert "eager" in report.dropped and "reference itself" in report.dropped["eager"]
    assert not [r for r in report.results if r.backend == "eager"]
    assert cell(report, "eager") == "= ref"
    assert report.summary().splitlines()[0].split()[:3] == ["spec", "eager", "ort-cpu"]
    assert report.to_json()["dropped"] == report.dropped
