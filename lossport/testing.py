"""lossport in your own test suite: a CI gate that fails when a module stops exporting with
the same outputs and gradients.

    from lossport.testing import assert_portable

    def test_my_loss_is_portable():
        x = torch.randn(4, 10, requires_grad=True)
        assert_portable(MyLoss(), (x, torch.randn(4, 10)), dynamic={"x": {0: "batch"}})

Installed with lossport, a pytest plugin also provides the fixture ``assert_portable`` (the same
function), with the backends from ``--lossport-backends`` (default: every backend; CUDA ones are
skipped with the reason where they cannot run).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pytest


def assert_portable(
    module: Any, example_inputs: Sequence[Any], *, backends: Optional[Sequence[str]] = None, **options: Any
) -> Any:
    """:func:`lossport.validate_module` that raises ``AssertionError`` with the report (table and
    one line per mismatch) unless every backend agrees; returns the report otherwise."""
    from lossport.api import validate_module

    report = validate_module(module, example_inputs, backends=backends, **options)
    if not report.passed:
        raise AssertionError(f"{type(module).__name__} is not portable:\n{report.summary()}")
    return report


def pytest_addoption(parser: Any) -> None:
    parser.addoption(
        "--lossport-backends",
        default=None,
        help="lossport backends for the assert_portable fixture (comma list)",
    )


@pytest.fixture(name="assert_portable")
def assert_portable_fixture(request: Any):
    """:func:`assert_portable` with the backends of ``--lossport-backends``."""
    chosen = request.config.getoption("--lossport-backends")
    backends = [b.strip() for b in chosen.split(",")] if chosen else None

    def check(module: Any, example_inputs: Sequence[Any], **options: Any) -> Any:
        options.setdefault("backends", backends)
        return assert_portable(module, example_inputs, **options)

    return check
