"""Coverage of PyTorch's OpInfo database: which ops export to ONNX, forward and as gradient
graphs, through lossport, and which export forward through ``torch.onnx.export``.

    python benchmarks/coverage_opinfo.py [--jobs 2] [--ops name,name] [--markdown docs/coverage.md]

Needs ``expecttest`` (PyTorch's ``op_db`` imports it). Ops: every OpInfo (one per variant,
named ``name.variant``) that supports autograd and float32 on the CPU and is deterministic
(random ops are skipped by name, and any op whose output changes between two eager runs).
For each, the FIRST float32 sample becomes a one-op module whose inputs are the sample's
tensors (``sample.input`` and every tensor in ``sample.args``/``kwargs``, named x0, x1, ...;
everything else is a constant of the module) and whose output is the op's first floating
output (a complex output as ``view_as_real``), after the sample's
``output_process_fn_grad``. Its spec has the sample's shapes, static; float inputs that require
grad are differentiable; the objective is ``sum(output)``. Then:

1. forward: ``export_artifact(..., with_grad=False, dynamic=[])``, run in ONNX Runtime (CPU),
   compared with eager float32 (lossport's direct trace, or where that fails its
   ``torch.onnx`` fallback: the table marks those "ok (torch.onnx)");
2. gradient (when the forward is correct and some input is differentiable): the same with
   ``with_grad=True``, outputs and every ``grad_x*`` compared with ``torch.autograd.grad``;
3. ``torch.onnx.export(module, inputs, dynamo=True)``, run in ONNX Runtime, forward compared.

Tolerances (the "loose" class of :mod:`lossport.validation.policy`): outputs
``|a - r| <= 1e-4 + 1e-3 |r|``; gradients ``max |a - r| <= 1e-3 max |r| + 1e-5``.
Gradient coverage = ops with a correct gradient graph / ops whose forward exports correctly
(also given over the ops whose direct trace does: gradient graphs have no fallback). Each op
runs in a worker process (``--jobs``) with a timeout per op (``--timeout``): a stage that hangs
or crashes its worker (ONNX Runtime can segfault on a graph) fails, and the run goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import multiprocessing
import re
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils import _pytree as pytree

from lossport.artifact.runtime import OnnxArtifact
from lossport.errors import LossportError, brief_reason
from lossport.export import export_artifact
from lossport.spec import Spec, TensorSpec
from lossport.spec.domains import Domain, Real
from lossport.validation.backends import autograd_outputs
from lossport.validation.compare import Comparison, compare
from lossport.validation.policy import tolerance_for

TOLERANCE = tolerance_for("loose")  # atol 1e-4, rtol 1e-3; gradients 1e-3 x max |r| + 1e-5
GRAD_TOLERANCE = replace(TOLERANCE, rtol=0.0)
RANDOM = re.compile(
    r"dropout|^rand|bernoulli|multinomial|^normal\b|poisson$|uniform|rrelu|fractional|lowrank"
)

FAMILIES = {
    "convolution": r"^nn\.functional\.conv(_transpose)?[123]d$",
    "pooling": r"^nn\.functional\.(adaptive_)?(avg|max)_pool[123]d$",
    "interpolate": r"^nn\.functional\.(interpolate\.|upsample_)",
    "grid_sample": r"^nn\.functional\.grid_sample$|^grid_sampler_[23]d$",
    "normalization": r"^nn\.functional\.(batch|group|instance|layer|rms)_norm$|^native_(batch|group|layer)_norm$",
    "linear": r"^nn\.functional\.(bi)?linear$",
    "embedding": r"^nn\.functional\.embedding(_bag)?$",
    "softmax": r"^(log_)?softmax(\.with_dtype)?$",
    "attention": r"^nn\.functional\.scaled_dot_product_attention$",
    "pixel_shuffle": r"^nn\.functional\.pixel_(un)?shuffle$",
    "pad": r"^nn\.functional\.pad\.|^constant_pad_nd$",
    "sort/scan/index": r"^(cumsum|sort|topk|gather|scatter|scatter_add)$",
    "real FFT": r"^fft\.i?(r|h)fftn?2?$",
}


class Skip(Exception):
    """The op is not measured (random, no float output, complex input...)."""


@dataclass(frozen=True)
class Sample(Domain):
    """A non-float input: the OpInfo sample's own values (the spec's sampler returns them)."""

    def describe(self) -> str:
        return "the OpInfo sample's values"

    @property
    def is_float(self) -> bool:
        return False


@dataclass
class OpResult:
    """``forward``/``gradient``/``torch_onnx``: "ok", "fail" or "skip", each with its reason."""

    op: str
    forward: str = "skip"
    gradient: str = "skip"
    torch_onnx: str = "skip"
    reasons: Dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    exporter: str = ""  # of lossport's forward artifact: "direct", or its "torch.onnx" fallback


def op_id(op: Any) -> str:
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


def op_infos() -> Dict[str, Any]:
    """``{op id: OpInfo}`` of the autograd-capable float32 CPU ops."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.testing._internal.common_methods_invocations import op_db
    return {
        op_id(op): op for op in op_db if op.supports_autograd and torch.float32 in op.supported_dtypes("cpu")
    }


def select(ops: Dict[str, Any], names: Optional[Sequence[str]]) -> List[str]:
    """Op ids named in ``names``; a name without a variant selects all its variants."""
    if not names:
        return list(ops)
    chosen = [i for i in ops if i in names or ops[i].name in names]
    unknown = [n for n in names if not any(n in (i, ops[i].name) for i in chosen)]
    if unknown:
        raise SystemExit(f"unknown ops: {', '.join(unknown)}")
    return chosen


class OneOp(nn.Module):
    """``forward(*tensors)``: the op on the sample, with the sample's tensors replaced by the
    inputs; returns the op's first floating output (complex as ``view_as_real``, conjugation
    resolved)."""

    def __init__(self, op: Any, sample: Any) -> None:
        super().__init__()
        leaves, self.tree = pytree.tree_flatten((sample.input, sample.args, sample.kwargs))
        self.positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        self.constants = [None if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
        self.op, self.process = op, sample.output_process_fn_grad

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        leaves = list(self.constants)
        for position, tensor in zip(self.positions, tensors):
            leaves[position] = tensor
        first, args, kwargs = pytree.tree_unflatten(leaves, self.tree)
        output = self.process(self.op.gradcheck_wrapper(self.op.op, first, *args, **kwargs))
        for tensor in pytree.tree_leaves(output):
            if isinstance(tensor, torch.Tensor) and tensor.is_complex():
                return torch.view_as_real(tensor.resolve_conj())
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                return tensor
        raise Skip("no floating output")


def op_case(op: Any, index: int = 0) -> Tuple[OneOp, Spec, List[torch.Tensor]]:
    """The one-op module of ``op``'s float32 sample ``index`` (default: the first), its spec
    and the sample's tensors."""
    if RANDOM.search(op.name):
        raise Skip("random")
    samples = iter(op.sample_inputs("cpu", torch.float32, requires_grad=True))
    sample = next(itertools.islice(samples, index, None), None)
    if sample is None:
        raise Skip(f"no sample {index}")
    module = OneOp(op, sample)
    tensors = [
        t
        for t in pytree.tree_leaves((sample.input, sample.args, sample.kwargs))
        if isinstance(t, torch.Tensor)
    ]
    if any(t.is_complex() for t in tensors):
        raise Skip("complex input")
    inputs = [t.detach().clone() for t in tensors]
    with torch.no_grad():
        first, second = module(*inputs), module(*inputs)
    if first.shape != second.shape or not torch.equal(first.nan_to_num(), second.nan_to_num()):
        raise Skip("random (two eager runs differ)")
    specs = tuple(
        TensorSpec(
            f"x{i}",
            tuple(t.shape),
            Real() if t.is_floating_point() else Sample(),
            differentiable=t.is_floating_point() and t.requires_grad,
        )
        for i, t in enumerate(tensors)
    )
    spec = Spec(
        name="opinfo_" + re.sub(r"\W", "_", op_id(op)),
        build=lambda: module,
        inputs=specs,
        outputs=("y",),
        shapes=({},),
        source="torch.testing._internal.common_methods_invocations.op_db",
        summary=f"{op_id(op)} on its first float32 OpInfo sample",
        sampler=lambda spec, sizes, generator, dtype: [t.clone() for t in inputs],
        float64=False,
    )
    return module, spec, inputs


def _dense_gradients(module: nn.Module) -> Callable[..., torch.Tensor]:
    """``module`` behind an identity ``where(True, x, 0)`` on each float input: eager autograd
    returns some zero gradients as ZeroTensors (``sgn`` of a real input), which have no numpy
    value; the ``where`` backward materializes them."""
    keep = torch.tensor(True)
    return lambda *xs: module(*(torch.where(keep, x, 0.0) if x.is_floating_point() else x for x in xs))


def failure(exc: BaseException) -> str:
    """``Type: first line`` of a lossport error, else of the innermost cause (temp paths
    shortened to file names)."""
    if isinstance(exc, LossportError):
        reason = re.sub(r"exporting \S+ to onnx failed: ", "", brief_reason(exc))
    else:
        while exc.__cause__ is not None:
            exc = exc.__cause__
        reason = brief_reason(exc)
    return re.sub(r"\S*/lossport-coverage-\w+/", "", reason)[:300]


def mismatch(comparisons: Sequence[Comparison]) -> Optional[str]:
    bad = [c for c in comparisons if not c.passed]
    if not bad:
        return None
    return "; ".join(
        f"mismatch {c.output} max abs {c.max_abs:.3g}" + (f" ({c.detail})" if "shape" in c.detail else "")
        for c in bad
    )


def compare_all(reference: Dict[str, np.ndarray], actual: Dict[str, np.ndarray]) -> Optional[str]:
    """``None`` when every output of ``reference`` matches (gradients ``grad_*`` with the
    gradient tolerance), else the mismatches."""
    comparisons = []
    for name, expected in reference.items():
        if name not in actual:
            return f"output {name} missing"
        gradient = name.startswith("grad_")
        tolerance = GRAD_TOLERANCE if gradient else TOLERANCE
        comparisons.append(compare(name, expected, actual[name], tolerance, gradient=gradient))
    return mismatch(comparisons)


def _lossport(module: nn.Module, spec: Spec, folder: Path, with_grad: bool) -> OnnxArtifact:
    """Export ``spec`` through lossport and open the file in ONNX Runtime (CPU)."""
    path = folder / f"{spec.name}{'_grad' if with_grad else ''}.onnx"
    export_artifact(spec, fmt="onnx", path=path, module=module, with_grad=with_grad, dynamic=[])
    return OnnxArtifact(path)


def _torch_onnx(module: nn.Module, inputs: List[torch.Tensor], folder: Path) -> Dict[str, np.ndarray]:
    """Export with ``torch.onnx.export(dynamo=True)`` and run the file in ONNX Runtime (CPU)."""
    path = folder / "torch_onnx.onnx"
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # torchvision-missing warnings
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(inputs), str(path), dynamo=True, verbose=False)
    artifact = OnnxArtifact(path)
    if len(artifact.input_names) != len(inputs):
        raise ValueError(f"the graph has {len(artifact.input_names)} inputs, the module {len(inputs)}")
    outputs = artifact.run(dict(zip(artifact.input_names, inputs)))
    return {"y": outputs[artifact.output_names[0]]}


Started = Callable[[str, OpResult], None]


def check_op(op: Any, torch_onnx: bool = True, index: int = 0, started: Optional[Started] = None) -> OpResult:
    """Forward, gradient and (with ``torch_onnx``) ``torch.onnx`` forward of one op, on its
    float32 sample ``index``; ``started(stage, result so far)`` is called before each stage."""
    result = OpResult(op_id(op))
    begin = time.perf_counter()
    try:
        module, spec, inputs = op_case(op, index)
        reference = autograd_outputs(_dense_gradients(module), spec, inputs, with_grad=True)
    except Skip as exc:
        result.reasons["skip"] = str(exc)
        return result
    except Exception as exc:  # the sample or eager autograd itself fails
        result.reasons["skip"] = f"eager: {failure(exc)}"
        return result
    forward = {"y": reference["y"]}

    def stage(name: str, run: Callable[[], Dict[str, np.ndarray]], expected: Dict[str, np.ndarray]) -> bool:
        """Run one stage; record "ok", or "fail" with the mismatch or exception."""
        if started:
            started(name, result)
        try:
            reason = compare_all(expected, run())
        except Exception as exc:  # every exporter and runtime error is a result here
            reason = failure(exc)
        setattr(result, name, "ok" if reason is None else "fail")
        if reason is not None:
            result.reasons[name] = reason
        return reason is None

    feeds = {t.name: x for t, x in zip(spec.inputs, inputs)}

    def run_forward() -> Dict[str, np.ndarray]:
        artifact = _lossport(module, spec, Path(folder), False)
        result.exporter = artifact.metadata.get("exporter", "direct")
        return artifact.run(feeds)

    with tempfile.TemporaryDirectory(prefix="lossport-coverage-") as folder:
        if not stage("forward", run_forward, forward):
            result.reasons["gradient"] = "forward fails"
        elif spec.differentiable_inputs:
            stage("gradient", lambda: _lossport(module, spec, Path(folder), True).run(feeds), reference)
        if torch_onnx:
            stage("torch_onnx", lambda: _torch_onnx(module, inputs, Path(folder)), forward)
    result.seconds = time.perf_counter() - begin
    return result


# -- running ops in worker processes ----------------------------------------------------------


def _worker(connection: Any, threads: int, torch_onnx: bool) -> None:
    """Check the ops the parent sends; send the result of each, preceded by ``(stage, result so
    far)`` as each stage starts (what the parent records if the stage hangs or crashes)."""
    torch.set_num_threads(threads)
    ops = op_infos()
    connection.send(None)  # ready
    while True:
        name = connection.recv()
        if name is None:
            return
        started = lambda stage, result: connection.send((stage, asdict(result)))
        connection.send(asdict(check_op(ops[name], torch_onnx, started=started)))


@dataclass
class _Worker:
    process: Any
    op: Optional[str] = ""  # "" starting up, None idle
    since: float = 0.0
    stage: str = "forward"
    partial: Dict[str, Any] = field(default_factory=dict)


def _lost(worker: _Worker, why: str) -> OpResult:
    """The result of an op whose worker hung or crashed in ``worker.stage``."""
    result = OpResult(**worker.partial) if worker.partial else OpResult(worker.op)
    setattr(result, worker.stage, "fail")
    result.reasons[worker.stage] = why
    if worker.stage == "forward":
        result.reasons["gradient"] = "forward fails"
    return result


def run_ops(
    names: Sequence[str], jobs: int, timeout: float, torch_onnx: bool, done: Callable[[OpResult], None]
) -> List[OpResult]:
    """Every op in one of ``jobs`` spawned worker processes; a stage that runs past ``timeout``
    seconds or kills its worker (ONNX Runtime can segfault on a graph) fails, and the worker is
    replaced."""
    context = multiprocessing.get_context("spawn")
    threads = max(1, torch.get_num_threads() // jobs)
    pending, results = list(names), {}
    workers: Dict[Any, _Worker] = {}

    def spawn() -> None:
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(child, threads, torch_onnx), daemon=True)
        process.start()
        child.close()
        workers[parent] = _Worker(process)

    def finish(connection: Any, result: OpResult, replace: bool = False) -> None:
        results[result.op] = result
        done(result)
        if replace:
            workers.pop(connection).process.kill()
            if pending:
                spawn()
        else:
            workers[connection].op = None

    for _ in range(min(jobs, len(pending))):
        spawn()
    while len(results) < len(names):
        for connection, worker in workers.items():
            if worker.op is None and pending:
                worker.op, worker.since, worker.stage, worker.partial = (
                    pending.pop(0),
                    time.monotonic(),
                    "forward",
                    {},
                )
                connection.send(worker.op)
        for connection in wait(list(workers), timeout=5):
            worker = workers[connection]
            try:
                message = connection.recv()
            except EOFError:
                worker.process.join(5)
                if worker.op == "":
                    raise RuntimeError(
                        f"a worker failed to start (exit code {worker.process.exitcode})"
                    ) from None
                finish(
                    connection, _lost(worker, f"crashed (exit code {worker.process.exitcode})"), replace=True
                )
                continue
            if message is None:
                worker.op = None  # ready
            elif isinstance(message, tuple):
                worker.stage, worker.partial = message
            else:
                finish(connection, OpResult(**message))
        for connection, worker in list(workers.items()):
            if worker.op and time.monotonic() - worker.since > timeout:
                finish(connection, _lost(worker, f"timeout after {timeout:.0f} s"), replace=True)
    for connection in workers:
        connection.send(None)
    return [results[name] for name in names]


# -- reporting --------------------------------------------------------------------------------


def _fraction(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f} %)" if whole else "0/0"


def coverage(results: Sequence[OpResult]) -> Dict[str, Tuple[int, int]]:
    """``{measure: (ok, out of)}``: forward over the measured ops (lossport's: its direct trace
    or, where that fails, its torch.onnx fallback; torch.onnx's over the ops it was run on),
    gradient over the ops whose forward exports correctly (and over those whose direct trace
    does: gradient graphs have no fallback) and that have a differentiable input."""
    measured = [r for r in results if "skip" not in r.reasons]
    graded = [r for r in measured if r.forward == "ok" and r.gradient != "skip"]
    direct = [r for r in graded if r.exporter != "torch.onnx"]
    compared = [r for r in measured if r.torch_onnx != "skip"]
    return {
        "forward (lossport)": (sum(r.forward == "ok" for r in measured), len(measured)),
        "forward (lossport, direct trace)": (
            sum(r.forward == "ok" and r.exporter != "torch.onnx" for r in measured),
            len(measured),
        ),
        "forward (torch.onnx)": (sum(r.torch_onnx == "ok" for r in compared), len(compared)),
        "gradient (lossport)": (sum(r.gradient == "ok" for r in graded), len(graded)),
        "gradient (lossport, of direct-trace forwards)": (
            sum(r.gradient == "ok" for r in direct),
            len(direct),
        ),
    }


def summary(results: Sequence[OpResult]) -> str:
    lines = [f"{measure}: {_fraction(*counts)}" for measure, counts in coverage(results).items()]
    skipped = [r for r in results if "skip" in r.reasons]
    lines.append(f"skipped: {len(skipped)}")
    lines += [f"  {r.op}: {r.reasons['skip']}" for r in skipped]
    lines.append("\nper family (" + ", ".join(coverage([]).keys()) + "):")
    for family, pattern in FAMILIES.items():
        members = [r for r in results if re.search(pattern, r.op)]
        cells = ", ".join(_fraction(*counts) for counts in coverage(members).values())
        bad = [r.op for r in members if "fail" in (r.forward, r.gradient)]
        lines.append(f"  {family}: {cells}" + (f"; failing: {', '.join(bad)}" if bad else ""))
    lines.append("\nfailures (lossport):")
    for r in results:
        for stage in ("forward", "gradient"):
            if getattr(r, stage) == "fail":
                lines.append(f"  {r.op} [{stage}]: {r.reasons[stage]}")
    lines.append("\nfailures (torch.onnx forward):")
    lines += [f"  {r.op}: {r.reasons['torch_onnx']}" for r in results if r.torch_onnx == "fail"]
    return "\n".join(lines)


def markdown(results: Sequence[OpResult], command: str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "# ONNX export coverage of PyTorch's OpInfo ops",
        "",
        f"Generated by `{command}` (torch {torch.__version__}); see the script's docstring for",
        "what is measured and the tolerances.",
        "",
        *(f"- {measure}: {_fraction(*counts)}" for measure, counts in coverage(results).items()),
        "",
        "| op | forward | gradient | torch.onnx forward | reason |",
        "|---|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: r.op):
        reason = "; ".join(f"{stage}: {text}" for stage, text in r.reasons.items())
        forward = f"{r.forward} (torch.onnx)" if r.exporter == "torch.onnx" else r.forward
        lines.append(f"| `{r.op}` | {forward} | {r.gradient} | {r.torch_onnx} | {cell(reason)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", help="comma-separated op ids (name or name.variant)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per op")
    parser.add_argument("--markdown", type=Path, help="write the table to this file")
    parser.add_argument("--no-torch-onnx", action="store_true", help="skip the torch.onnx forward")
    args = parser.parse_args()
    names = select(op_infos(), args.ops.split(",") if args.ops else None)
    print(f"{len(names)} ops, {args.jobs} worker(s)", flush=True)

    def done(result: OpResult) -> None:
        print(
            f"{result.op}: forward {result.forward}, gradient {result.gradient}, "
            f"torch.onnx {result.torch_onnx} ({result.seconds:.1f} s) {result.reasons or ''}",
            flush=True,
        )

    results = run_ops(names, args.jobs, args.timeout, not args.no_torch_onnx, done)
    print("\n" + summary(results))
    if args.markdown:
        command = "python benchmarks/coverage_opinfo.py " + " ".join(sys.argv[1:])
        args.markdown.write_text(markdown(results, command))


if __name__ == "__main__":
    main()
