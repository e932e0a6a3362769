"""Validate specs and artifacts: every backend against the eager reference, on every case.

For a spec, the artifacts are exported into a work folder first (TorchScript: the plain scripted
module, whose gradients come from autograd through the loaded file; ONNX: the gradient graph
where the spec is differentiable, which also carries every output), then each backend runs the
*saved* file. For an existing artifact, the spec and config recorded in its (schema-checked)
metadata rebuild the reference, with trained weights only from a checkpoint the user passes
and whose sha256 the artifact recorded: nothing in the artifact names a file or grants trust.

The reference runs once per case, whatever the number of backends. With ``onnx-ref`` next to an
ORT backend, the arbiter (:mod:`.arbiter`) classifies every failing ONNX check; ``--localize``
(also implied by ``--nodes``, ``--repro`` and ``--html``) pairs the failing ONNX backend's
values with PyTorch's (:mod:`.localize`) and cuts a minimal repro (:mod:`.repro`); ``--images``
compares the artifacts' scores on an image folder with the reference's (:mod:`.images`).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from lossport import catalog
from lossport.artifact.metadata import read_artifact_info
from lossport.artifact.runtime import artifact_preprocess
from lossport.errors import ArtifactError, ConfigError, ExportError, UnknownNameError, brief_reason
from lossport.export import default_path, export_artifact
from lossport.export.gradient import gradient_names
from lossport.io.digest import FileRecord
from lossport.spec import Spec
from lossport.spec.preprocess import Preprocess
from lossport.validation import arbiter
from lossport.validation.backends import (
    Backend,
    Cached,
    EagerBackend,
    EvaluatorError,
    NotApplicable,
    OnnxBackend,
    OnnxRefBackend,
    OrtBackend,
    TorchScriptBackend,
    Unavailable,
    reference_backend,
)
from lossport.validation.case_run import CaseResult, run_case
from lossport.validation.cases import Case, validation_cases
from lossport.validation.images import ImageCriteria, check_scorer, image_agreements
from lossport.validation.localize import Localization, side_by_side, trace_reference
from lossport.validation.policy import Tolerance, tolerance_class, tolerance_for
from lossport.validation.registry import (
    ALL_BACKENDS,
    BACKENDS,
    CUDA_BACKENDS,
    Recipe,
    artifact_backends,
    check_trusted,
    in_order,
)
from lossport.validation.repro import minimal_repro
from lossport.validation.results import SpecReport

DEFAULT_SEED = 20240229
MAX_SEED = 2**62  # cases use seed + i


@dataclass
class ValidationOptions:
    """What to run and how to judge it: backends (from ``ALL_BACKENDS``; default
    ``BACKENDS``), the seed of the random cases, tolerance overrides (finite, >= 0), whether an
    unavailable CUDA fails, whether to localize ONNX mismatches, and with it to keep every
    paired node (``nodes``) and cut minimal repro bundles (``repro``), and the image folder and
    criteria of ``--images`` (``images``)."""

    backends: Sequence[str] = BACKENDS
    seed: int = DEFAULT_SEED
    atol: Optional[float] = None
    rtol: Optional[float] = None
    require_cuda: bool = False
    localize: bool = False
    nodes: bool = False
    repro: bool = False
    images: Optional[ImageCriteria] = None

    def __post_init__(self) -> None:
        unknown = [n for n in self.backends if n not in ALL_BACKENDS]
        if unknown or not self.backends:
            raise ConfigError(
                f"unknown backend {', '.join(unknown) or '(none given)'}; choose from {', '.join(ALL_BACKENDS)}"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"--seed {self.seed}: use 0 to {MAX_SEED}")
        for name, value in (("atol", self.atol), ("rtol", self.rtol)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"--{name} {value}: a tolerance must be a finite number >= 0")
        if self.require_cuda and not set(CUDA_BACKENDS) & set(self.backends):
            raise ConfigError(
                f"--require-cuda needs a CUDA backend in --backends ({', '.join(CUDA_BACKENDS)})"
            )
        if self.images is not None:
            self.images.check()

    @property
    def localizing(self) -> bool:
        return self.localize or self.nodes or self.repro


def _run(
    spec: Spec,
    config: Mapping[str, Any],
    module: nn.Module,
    backends: List[Backend],
    cases: Sequence[Case],
    options: ValidationOptions,
    precision: str = "fp32",
) -> SpecReport:
    """Every backend on every case against the reference, judged by the tolerance class of
    ``precision`` (the artifact's; see :func:`tolerance_class`) with the options' overrides."""
    tolerance = tolerance_for(tolerance_class(spec.tolerance, precision)).overridden(
        options.atol, options.rtol
    )
    reference = Cached(reference_backend(module, spec))
    report = SpecReport(spec.name, dict(config), tolerance=tolerance, reference=reference.name)
    if reference.name == "eager":
        report.reference = "eager-float32"
    runnable = [b for b in backends if b.skip_reason() is None]
    arbitrate = any(isinstance(b, OrtBackend) for b in runnable) and any(
        isinstance(b, OnnxRefBackend) for b in runnable
    )
    records: Dict[str, Dict[str, Dict[str, Any]]] = {}
    traces: Dict[str, Any] = {}
    for backend in backends:
        if isinstance(backend, EagerBackend) and backend.dtype == reference.backend.dtype:
            report.dropped[backend.name] = (
                f"it is the reference itself (eager {str(backend.dtype).split('.')[-1]}: "
                f"{spec.name} is not compared in float64)"
            )
            continue
        if backend.note:
            report.notes[backend.name] = backend.note
        reason = backend.skip_reason()
        if reason is not None:
            if isinstance(backend, Unavailable) and backend.failed:
                report.results.append(
                    CaseResult(spec.name, backend.name, "export", options.seed, error=reason)
                )
                continue
            report.skipped[backend.name] = reason
            if backend.name in CUDA_BACKENDS and options.require_cuda:
                report.results.append(
                    CaseResult(
                        spec.name,
                        backend.name,
                        "cuda-required",
                        options.seed,
                        error=f"--require-cuda: {reason}",
                    )
                )
            continue
        keep = arbitrate and isinstance(backend, OnnxBackend)
        results: List[CaseResult] = []
        try:
            for case in cases:
                record: Optional[Dict[str, Any]] = {} if keep else None
                results.append(run_case(spec, reference, backend, case, tolerance, record))
                if record is not None:
                    records.setdefault(backend.name, {})[case.name] = record
        except NotApplicable as exc:
            report.skipped[backend.name] = str(exc)
            records.pop(backend.name, None)
            continue
        if isinstance(backend, OnnxRefBackend):
            results = _referee_limits(backend.name, results, report, records)
            if not results:
                continue
        report.results += results
        first_mismatch = next((c for c, r in zip(cases, results) if not r.error and not r.passed), None)
        if options.localizing and first_mismatch is not None and isinstance(backend, OnnxBackend):
            found = _localize(spec, module, backend, first_mismatch, tolerance, options, traces)
            report.localizations.append(found)
            report.localized[backend.name] = found.describe()
    if arbitrate:
        gradients = {b.name: b.provides_gradients for b in runnable}
        report.verdicts = arbiter.classify(report.results, records, spec.outputs, gradients)
    if options.images is not None:
        report.images = _images(spec, module, backends, options.images)
    return report


def _referee_limits(
    name: str, results: List[CaseResult], report: SpecReport, records: Dict[str, Dict[str, Dict[str, Any]]]
) -> List[CaseResult]:
    """Drop the cases where the reference evaluator raised while ONNX Runtime ran them: a limit
    of the evaluator, not of the artifact (not applicable, said in a note or, for every case,
    as the skip reason). Where no ORT backend ran the case, its error stays a failure."""
    ran = {r.case for r in report.results if r.backend.startswith("ort-") and not r.error}
    limited = [r for r in results if r.error.startswith(EvaluatorError.__name__) and r.case in ran]
    if not limited:
        return results
    reason = limited[0].error.split(": ", 1)[1]
    for result in limited:
        records.get(name, {}).pop(result.case, None)
    kept = [r for r in results if r not in limited]
    if kept:
        note = f"not applicable on {len(limited)} of {len(results)} cases ({reason})"
        report.notes[name] = "; ".join(filter(None, (report.notes.get(name), note)))
    else:
        report.skipped[name] = f"not applicable: {reason}"
        records.pop(name, None)
    return kept


def _localize(
    spec: Spec,
    module: nn.Module,
    backend: OnnxBackend,
    case: Case,
    tolerance: Tolerance,
    options: ValidationOptions,
    traces: Dict[str, Any],
) -> Localization:
    """Side-by-side of ``backend`` on ``case`` (the trace shared by every ONNX backend of the
    spec), the first divergence, and with ``options.repro`` a minimal repro (ORT backends)."""
    try:
        if case.name not in traces:
            traces[case.name] = trace_reference(backend.path, spec, module, case.inputs)
        side = side_by_side(backend, spec, traces[case.name], case.inputs, tolerance)
    except Exception as exc:  # an artifact the trace cannot pair, an evaluator's limit
        reason = str(exc) if isinstance(exc, NotApplicable) else brief_reason(exc)
        note = f"could not localize ({reason})" if options.repro else ""
        return Localization(backend.name, case.name, case.seed, None, error=reason, repro_note=note)
    found = Localization(
        backend.name,
        case.name,
        case.seed,
        side.divergence,
        side.rows if options.nodes else [],
        paired=len(side.rows),
    )
    if options.repro:
        if not isinstance(backend, OrtBackend):
            found.repro_note = "repro bundles reproduce with ONNX Runtime; this backend is not ORT"
            return found
        outputs = {o.name for o in side.model.graph.output}
        failing = next((r.value for r in side.rows if not r.passed and r.value in outputs), None)
        try:
            found.repro, found.repro_note = minimal_repro(
                side,
                backend,
                tolerance,
                spec=spec.name,
                case=case.name,
                seed=case.seed,
                failing_output=failing,
            )
        except Exception as exc:  # a subgraph ONNX cannot check or save is a missing bundle
            found.repro_note = f"could not cut a repro ({brief_reason(exc)})"
    return found


def _images(spec: Spec, module: nn.Module, backends: Sequence[Backend], criteria: ImageCriteria) -> List[Any]:
    """``--images``: every runnable artifact backend against the eager reference (no
    gradients) on the image folder, through the artifacts' preprocessing contract."""
    check_scorer(spec)
    artifacts = [
        b for b in backends if isinstance(b, (OnnxBackend, TorchScriptBackend)) and b.skip_reason() is None
    ]
    if not artifacts:
        return []
    preprocess = artifact_preprocess(artifacts[0].path) or Preprocess.default()
    reference = EagerBackend(module, spec, torch.float64 if spec.float64 else torch.float32, with_grad=False)
    return image_agreements(spec, reference, artifacts, preprocess, criteria)


@dataclass(frozen=True)
class SpecJob:
    """Validate one registered spec at one config: a picklable job for :func:`run_jobs`."""

    label: str
    spec: str
    kind: str
    config: Mapping[str, Any]
    options: ValidationOptions

    def __call__(self) -> SpecReport:
        return validate_spec(
            catalog.get_spec(self.spec, kind=self.kind), self.config, self.options, label=self.label
        )


def variant_jobs(spec: Spec, options: ValidationOptions) -> List[SpecJob]:
    """One job per variant of ``spec`` at its test config."""
    jobs = []
    for variant in spec.variants:
        config = spec.resolve_config({**spec.test_config, **variant})
        label = spec.name + (f"[{','.join(f'{k}={v}' for k, v in variant.items())}]" if variant else "")
        jobs.append(SpecJob(label, spec.name, spec.kind, config, options))
    return jobs


def available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _worker_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def run_jobs(
    jobs: Sequence[Callable[[], SpecReport]],
    workers: int,
    done: Callable[[SpecReport], None] = lambda report: None,
) -> List[SpecReport]:
    """Run ``jobs`` (in their order in the result), in ``workers`` processes when more than one.

    Each spec's export is one long single-threaded trace, so specs in parallel processes use
    the cores better than one process's intra-op threads. Worker processes are spawned (a fork
    of a process that has run PyTorch's thread pools is unsafe) and share the cores equally.
    Parallel jobs must be picklable (:class:`SpecJob`): closures run in this process.
    """
    workers = min(workers, len(jobs))
    if workers <= 1:
        reports = []
        for job in jobs:
            reports.append(job())
            done(reports[-1])
        return reports
    context = multiprocessing.get_context("spawn")
    threads = max(1, available_cpus() // workers)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_threads, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(job) for job in jobs]
        for future in as_completed(futures):
            done(future.result())
        return [future.result() for future in futures]


def validate_spec(
    spec: Spec,
    config: Optional[Mapping[str, Any]] = None,
    options: ValidationOptions = ValidationOptions(),
    module: Optional[nn.Module] = None,
    label: Optional[str] = None,
) -> SpecReport:
    """Export ``spec`` and compare every selected backend with the eager reference."""
    config = spec.resolve_config(dict(spec.test_config)) if config is None else dict(config)
    if options.images is not None:
        check_scorer(spec)
    module = spec.instantiate(config) if module is None else module
    cases = validation_cases(spec, config, options.seed)
    with tempfile.TemporaryDirectory(prefix="lossport-validate-") as folder:
        start = time.perf_counter()
        backends = _spec_backends(spec, config, module, Path(folder), options.backends)
        exported = time.perf_counter()
        report = _run(spec, config, module, backends, cases, options)
    report.spec = label or spec.name
    report.seconds = {"export": exported - start, "run": time.perf_counter() - exported}
    return report


def _spec_backends(
    spec: Spec, config: Mapping[str, Any], module: nn.Module, folder: Path, names: Sequence[str]
) -> List[Backend]:
    """The backends of ``names`` (in :data:`~.registry.KINDS` order), each artifact exported
    once into ``folder`` by its recipe. A failed export fails the backends that need it, or
    leaves them not applicable where the recipe says so (TorchScript cannot compile every
    module); a backend that cannot run here costs no export."""
    exports: Dict[Recipe, Any] = {}
    backends: List[Backend] = []
    for kind in in_order(names):
        reason = kind.unavailable()
        if reason is not None:
            backends.append(Unavailable(kind.name, reason))
            continue
        recipe = kind.recipe
        if recipe is None:
            backends.append(kind.make(None, spec, module))
            continue
        if recipe not in exports:
            exports[recipe] = _export_for(recipe, spec, config, module, folder)
        result = exports[recipe]
        if isinstance(result, ExportError):
            reason = (
                f"{recipe.fmt} export failed: {result}"
                if recipe.failure_fails
                else f"not applicable: {result}"
            )
            backends.append(Unavailable(kind.name, reason, failed=recipe.failure_fails))
            continue
        backends.append(kind.make(result.path, spec, module))
        backends[-1].note = "; ".join(result.notes)
    return backends


def _export_for(
    recipe: Recipe, spec: Spec, config: Mapping[str, Any], module: nn.Module, folder: Path
) -> Any:
    """The :class:`~lossport.export.ExportResult` of ``recipe`` for ``spec``, or the
    :class:`ExportError` that stopped it."""
    with_grad = recipe.with_grad and bool(spec.differentiable_inputs)
    path = default_path(spec, recipe.fmt, with_grad)
    if recipe.device != "cpu":
        path = path.with_name(f"{path.stem}_{recipe.device}{path.suffix}")
    try:
        return export_artifact(
            spec,
            fmt=recipe.fmt,
            path=folder / path,
            config=config,
            module=module,
            with_grad=with_grad,
            device=recipe.device,
        )
    except ExportError as exc:
        return exc


def validate_artifact(
    path: Path,
    options: ValidationOptions = ValidationOptions(),
    *,
    checkpoint: Optional[Path] = None,
    trust_checkpoint: bool = False,
    trust_artifact: bool = False,
) -> SpecReport:
    """Check an existing artifact against the spec and config recorded in its metadata.

    An artifact whose weights came from a checkpoint (metadata ``weights``: file name and
    sha256) is checked against ``checkpoint``, which must have that sha256;
    ``trust_checkpoint`` allows a checkpoint that needs arbitrary unpickling;
    ``trust_artifact`` allows an artifact whose loading runs native code from the file (an
    AOTInductor package). Raises :class:`ArtifactError` for a corrupt, forged or unloadable
    artifact, or one that needs ``trust_artifact`` without it (before anything is loaded).
    """
    path = Path(path)
    info = read_artifact_info(path)
    check_trusted(path, info.format, trust_artifact)
    try:
        spec = catalog.get_spec(info.spec)
    except UnknownNameError as exc:
        raise ArtifactError(
            f"{path}: made from spec {info.spec!r}, which this lossport does not know ({exc})"
        ) from None
    try:
        config = spec.resolve_config(info.config)
    except ConfigError as exc:
        raise ArtifactError(f"{path}: its recorded config is invalid ({exc})") from None
    expected_outputs = list(spec.outputs) + (gradient_names(spec) if info.with_grad else [])
    if info.inputs != [t.name for t in spec.inputs] or info.outputs != expected_outputs:
        raise ArtifactError(
            f"{path}: its metadata lists inputs {info.inputs} and outputs "
            f"{info.outputs}, but {spec.name} has inputs "
            f"{[t.name for t in spec.inputs]} and outputs {expected_outputs}"
        )
    if options.images is not None:
        check_scorer(spec)
    module = _reference_module(path, spec, config, info.weights, checkpoint, trust_checkpoint)
    backends = artifact_backends(
        path, spec, info.format, options.backends, device=info.device, trusted=trust_artifact
    )
    start = time.perf_counter()
    cases = validation_cases(spec, config, options.seed)
    report = _run(spec, config, module, backends, cases, options, info.precision)
    report.seconds = {"export": 0.0, "run": time.perf_counter() - start}
    return report


def _reference_module(
    path: Path,
    spec: Spec,
    config: Mapping[str, Any],
    weights: Optional[FileRecord],
    checkpoint: Optional[Path],
    trust_checkpoint: bool,
) -> nn.Module:
    """The eager reference for an artifact: the spec built from ``config``, or, for an
    artifact made from a checkpoint, that checkpoint (matched by sha256)."""
    if weights is None:
        if checkpoint is not None:
            raise ConfigError(
                f"{path} was exported with seeded random weights, not from a checkpoint; drop --checkpoint"
            )
        return spec.instantiate(config)
    if checkpoint is None:
        raise ConfigError(
            f"{path} was exported from checkpoint {weights.file} (sha256 "
            f"{weights.sha256[:12]}...); pass that file as --checkpoint FILE to "
            f"validate it"
        )
    if spec.weights_loader is None:
        raise ArtifactError(f"{path}: records a checkpoint, but {spec.name} loads no weights")
    if not Path(checkpoint).is_file():
        raise ConfigError(f"{checkpoint}: no such checkpoint file")
    if not weights.matches(Path(checkpoint)):
        raise ConfigError(
            f"{checkpoint} is not the checkpoint {path} was exported from "
            f"({weights.file}, sha256 {weights.sha256[:12]}...)"
        )
    return spec.weights_loader(config, Path(checkpoint), trust_checkpoint)
