"""The built-in check of ``lossport export``: the written file, run from disk, must match eager
PyTorch on the export shape and on a shape different in every dynamic axis.

:func:`verify_export` is the ``verify`` callback of :func:`lossport.export.export_artifact`;
the CLI and the public API pass it in, so export itself never imports validation.
"""

from __future__ import annotations

from typing import List

from lossport.errors import ExportError
from lossport.export import EXPORT_SEED, ExportRequest
from lossport.validation.backends import reference_backend
from lossport.validation.case_run import CaseResult, run_case
from lossport.validation.cases import check_cases
from lossport.validation.policy import tolerance_for
from lossport.validation.registry import artifact_backends


def verify_export(request: ExportRequest) -> List[CaseResult]:
    """Every result of the check; raises :class:`ExportError` on the first disagreement."""
    spec = request.spec
    reference = reference_backend(request.module, spec)
    tolerance = tolerance_for(spec.tolerance)
    results = [
        run_case(spec, reference, backend, case, tolerance)
        for backend in artifact_backends(request.path, spec, request.fmt)
        for case in check_cases(spec, request.config, request.dynamic, EXPORT_SEED)
    ]
    failed = [r for r in results if not r.passed]
    if failed:
        raise ExportError(
            f"{spec.name}: the written artifact does not match eager PyTorch "
            f"({describe_failure(failed[0])}); nothing was written "
            f"(--no-check skips this check)"
        )
    return results


def describe_failure(result: CaseResult) -> str:
    """One line: backend, case, and the worst output or the error."""
    if result.error:
        return f"{result.backend} on {result.case}: {result.error}"
    worst = next(c for c in result.comparisons if not c.passed)
    return (
        f"{result.backend} on {result.case}: {worst.output} max abs error {worst.max_abs:.3g}, "
        f"allowed {worst.atol:.3g} + {worst.rtol:.3g}*|ref|; {worst.detail}"
    )
