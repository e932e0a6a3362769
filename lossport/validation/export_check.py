"""The built-in check of ``lossport export``: the written file, run from disk, must match eager
PyTorch on the export shape and on a shape different in every dynamic axis, within the
tolerance class of the artifact's precision (:func:`~lossport.validation.policy.tolerance_class`).
A reduced-precision artifact that no runtime here can run (e.g. a float16 op ONNX Runtime's CPU
provider lacks) fails the check with that reason: it is checked wherever ONNX Runtime runs it.

:func:`verify_export` is the ``verify`` callback of :func:`lossport.export.export_artifact`;
the CLI and the public API pass it in, so export itself never imports validation.
"""

from __future__ import annotations

from typing import List

from lossport.artifact.metadata import read_any_metadata
from lossport.errors import ExportError
from lossport.export import EXPORT_SEED, ExportRequest
from lossport.validation.backends import reference_backend
from lossport.validation.case_run import CaseResult, run_case
from lossport.validation.cases import check_cases
from lossport.validation.policy import tolerance_class, tolerance_for
from lossport.validation.registry import artifact_backends


def verify_export(request: ExportRequest) -> List[CaseResult]:
    """Every result of the check; raises :class:`ExportError` on the first disagreement."""
    spec = request.spec
    reference = reference_backend(request.module, spec)
    tolerance = tolerance_for(tolerance_class(spec.tolerance, request.precision))
    # the file export just wrote: trusted, on the device it was compiled for
    device = read_any_metadata(request.path).get("device", "cpu")
    backends = artifact_backends(request.path, spec, request.fmt, device=device, trusted=True)
    skipped = [f"{b.name}: {b.skip_reason()}" for b in backends if b.skip_reason() is not None]
    if len(skipped) == len(backends):
        raise ExportError(
            f"{spec.name}: the written {request.precision} artifact cannot be checked here "
            f"({'; '.join(skipped)}); nothing was written (--no-check writes it unchecked, to "
            f"validate with `lossport validate artifact` where it runs)"
        )
    results = [
        run_case(spec, reference, backend, case, tolerance)
        for backend in backends
        if backend.skip_reason() is None
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
