"""Validate specs and artifacts: every backend against the eager reference, on every case.

For a spec, the artifacts are exported into a work folder first (TorchScript: the plain scripted
module, whose gradients come from autograd through the loaded file; ONNX: the gradient graph
where the spec is differentiable, which also carries every output), then each backend runs the
*saved* file. For an existing artifact, the spec and config recorded in its (schema-checked)
metadata rebuild the reference, with trained weights only from a checkpoint the user passes
and whose sha256 the artifact recorded: nothing in the artifact names a file or grants trust.
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
from typing import Any, Callable, List, Mapping, Optional, Sequence

import torch
from torch import nn

from lossport import catalog
from lossport.artifact.metadata import read_artifact_info
from lossport.errors import ArtifactError, ConfigError, ExportError, UnknownNameError
from lossport.export import export_artifact
from lossport.export.gradient import gradient_names
from lossport.io.digest import FileRecord
from lossport.spec import Spec
from lossport.validation.backends import (
    Backend,
    EagerBackend,
    OrtBackend,
    TorchScriptBackend,
    Unavailable,
    artifact_backends,
    reference_backend,
)
from lossport.validation.case_run import CaseResult, run_case
from lossport.validation.cases import Case, validation_cases
from lossport.validation.localize import localize
from lossport.validation.policy import tolerance_for
from lossport.validation.results import BACKENDS, SpecReport

DEFAULT_SEED = 20240229
MAX_SEED = 2**62  # cases use seed + i


@dataclass
class ValidationOptions:
    """What to run and how to judge it: backends (from ``BACKENDS``), the seed of the random
    cases, tolerance overrides (finite, >= 0), whether an unavailable CUDA fails, and whether
    to localize ONNX mismatches."""

    backends: Sequence[str] = BACKENDS
    seed: int = DEFAULT_SEED
    atol: Optional[float] = None
    rtol: Optional[float] = None
    require_cuda: bool = False
    localize: bool = False

    def __post_init__(self) -> None:
        unknown = [n for n in self.backends if n not in BACKENDS]
        if unknown or not self.backends:
            raise ConfigError(
                f"unknown backend {', '.join(unknown) or '(none given)'}; choose from {', '.join(BACKENDS)}"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"--seed {self.seed}: use 0 to {MAX_SEED}")
        for name, value in (("atol", self.atol), ("rtol", self.rtol)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"--{name} {value}: a tolerance must be a finite number >= 0")
        if self.require_cuda and "ort-cuda" not in self.backends:
            raise ConfigError("--require-cuda needs the ort-cuda backend in --backends")


def _run(
    spec: Spec,
    config: Mapping[str, Any],
    module: nn.Module,
    backends: List[Backend],
    cases: Sequence[Case],
    options: ValidationOptions,
) -> SpecReport:
    tolerance = tolerance_for(spec.tolerance).overridden(options.atol, options.rtol)
    report = SpecReport(spec.name, dict(config), tolerance=tolerance)
    reference = reference_backend(module, spec)
    for backend in backends:
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
            if backend.name == "ort-cuda" and options.require_cuda:
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
        first_mismatch: Optional[Case] = None
        for case in cases:
            result = run_case(spec, reference, backend, case, tolerance)
            report.results.append(result)
            if first_mismatch is None and not result.error and not result.passed:
                first_mismatch = case
        if options.localize and first_mismatch is not None and isinstance(backend, OrtBackend):
            found = localize(backend.path, spec, module, first_mismatch.inputs, tolerance)
            report.localized[backend.name] = f"{first_mismatch.name}: " + (
                found.describe()
                if found
                else "every intermediate value agrees; the outputs differ only at the graph's end"
            )
    return report


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
    """The backends of ``names``, running artifacts exported into ``folder``. A module that
    TorchScript can neither script nor validly trace leaves the TorchScript backend not
    applicable; an ONNX export that fails is a failure of every ONNX Runtime backend."""
    backends: List[Backend] = []
    if "eager" in names:
        backends.append(EagerBackend(module, spec, torch.float32))
    if "torchscript" in names:
        try:
            result = export_artifact(
                spec, fmt="torchscript", path=folder / f"{spec.name}.pt", config=config, module=module
            )
        except ExportError as exc:
            backends.append(Unavailable("torchscript", f"not applicable: {exc}"))
        else:
            backends.append(TorchScriptBackend(result.path, spec, note="; ".join(result.notes)))
    ort_names = [n for n in names if n.startswith("ort-")]
    if ort_names:
        try:
            result = export_artifact(
                spec,
                fmt="onnx",
                path=folder / f"{spec.name}.onnx",
                config=config,
                module=module,
                with_grad=bool(spec.differentiable_inputs),
            )
        except ExportError as exc:
            backends += [Unavailable(name, f"ONNX export failed: {exc}", failed=True) for name in ort_names]
        else:
            for name in ort_names:
                backends.append(OrtBackend(result.path, spec, name.split("-", 1)[1]))
                backends[-1].note = "; ".join(result.notes)
    return backends


def validate_artifact(
    path: Path,
    options: ValidationOptions = ValidationOptions(),
    *,
    checkpoint: Optional[Path] = None,
    trust_checkpoint: bool = False,
) -> SpecReport:
    """Check an existing artifact against the spec and config recorded in its metadata.

    An artifact whose weights came from a checkpoint (metadata ``weights``: file name and
    sha256) is checked against ``checkpoint``, which must have that sha256;
    ``trust_checkpoint`` allows a checkpoint that needs arbitrary unpickling. Raises
    :class:`ArtifactError` for a corrupt, forged or unloadable artifact.
    """
    path = Path(path)
    info = read_artifact_info(path)
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
    module = _reference_module(path, spec, config, info.weights, checkpoint, trust_checkpoint)
    devices = [n.split("-", 1)[1] for n in options.backends if n.startswith("ort-")]
    backends = artifact_backends(path, spec, devices or ("cpu",))
    start = time.perf_counter()
    report = _run(spec, config, module, backends, validation_cases(spec, config, options.seed), options)
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
