"""AOTInductor packages of the TIGAS scorer against eager PyTorch and ONNX Runtime, side by side.

    python benchmarks/bench_pt2.py                      # CPU: fast and full, batch 8, 256x256
    python benchmarks/bench_pt2.py --quick              # fast mode only, 3 repeats, 200 images
    python benchmarks/bench_pt2.py --device cuda        # batch 64: eager vs ORT-CUDA vs AOTI CUDA

For each mode (default size, random weights: base 32, features 256, 8 heads), one process
exports the artifacts with lossport (``export_artifact``: ONNX, AOTInductor fp32, AOTInductor
bf16 — weights and compute in bfloat16, float32 inputs and outputs — forward and with-grad,
the input-gradient artifacts) and reports each one's export time (for AOTInductor the
``torch.export`` program alone, then the whole package: export plus native compilation).
Then every runtime runs the same batch, in rotation, ``--repeats`` rounds after a warm-up:
the median of each is reported, with ratios, so that the load of a shared machine hits all of
them alike. ``torch.set_num_threads(--threads)`` and ONNX Runtime's intra-op threads are the
same; ONNX Runtime gets the tuned session of ``bench_export_tigas.py``.

GFLOP/s: the FLOPs of one image counted by ``torch.utils.flop_counter`` on the eager model
(forward; with-grad adds the input-gradient backward pass, no weight gradients), times the
images per second. Roofline: the nominal fp32 peak from ``lscpu`` (cores x clock x FLOP per
cycle of the widest FMA the flags list; the clock a VM reports is its base clock) and what a
large fp32 and bf16 matrix product reach here, measured in the same run.

Agreement: Spearman's rho (and max |delta score|) of the bf16 package's scores against fp32
eager on the labelled real-photo set of ``tests/imageset`` (both splits), scored by the
trained TIGAS fixture of ``tests/fixtures/tigas_trained`` when it exists (its own bf16
package is compiled for this), else by the random-weights fast model, whose scores hardly
spread: the rho is then printed as not meaningful.

Allocator (``--keep-heap``): ONNX Runtime runs from its memory arena, while eager PyTorch and
AOTInductor take every activation from the C allocator; glibc serves blocks above its mmap
threshold (at most 32 MiB; TIGAS's first activations at batch 8 are 32 to 64 MiB) with fresh
mappings, so each call page-faults them in again (tens of thousands of faults per call). The
option reruns the script with ``GLIBC_TUNABLES`` raising the mmap and trim thresholds, so freed
memory stays in the heap and is reused, as ORT's arena is; the default measures the system
allocator as it is. It shows where the forward gap to ORT lies (TIGAS fast forward, 2 threads:
AOTInductor 0.91x ORT with the system allocator, 1.01x with the heap kept), but it is no
general setting: in the same run the with-grad passes of eager and AOTInductor were 2.4x
slower with it, ORT unchanged.

Targets: AOTInductor CPU forward >= ORT-CPU; bf16 >= 1.5x fp32 AOTInductor with rho >= 0.99;
the script says whether each is met.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from bench_export_tigas import ort_session  # benchmarks/, the folder of this script
from torch.utils.flop_counter import FlopCounterMode

from lossport import catalog
from lossport.export import export_artifact
from lossport.spec.flatten import flatten_outputs
from lossport.validation.backends import autograd_outputs
from lossport.validation.images import spearman

ROOT = Path(__file__).resolve().parents[1]
TRAINED = ROOT / "tests" / "fixtures" / "tigas_trained"
FORWARD_TARGET = 1.0  # AOTInductor CPU forward / ORT-CPU
BF16_TARGET = 1.5  # bf16 AOTInductor / fp32 AOTInductor
RHO_TARGET = 0.99
KEEP_HEAP = "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295"


@dataclass
class Runner:
    """One runtime on one pass: how to run the batch once, and what exporting it took."""

    label: str
    run: Callable[[], object]
    export_s: Optional[float] = None  # the artifact (for AOTInductor: program and compilation)
    program_s: Optional[float] = None  # AOTInductor: the torch.export program alone
    times: List[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return median(self.times)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rotate(runners: Sequence[Runner], repeats: int, sync: Callable[[], None] = lambda: None) -> None:
    """Warm every runner up, then time them in turn, ``repeats`` rounds."""
    for runner in runners:
        runner.run()
    for _ in range(repeats):
        for runner in runners:
            sync()
            runner.times.append(timed(lambda: (runner.run(), sync())))


# -- rooflines -----------------------------------------------------------------------------------


def lscpu() -> Dict[str, str]:
    done = subprocess.run(["lscpu"], capture_output=True, text=True, check=False)
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in done.stdout.splitlines())}


def nominal_fp32_peak(threads: int) -> tuple:
    """(GFLOP/s, how it was computed) for ``threads`` cores from lscpu: FLOP per cycle of the
    widest FMA in the flags (AVX-512 on Intel: two 16-lane FMA ports; on AMD Zen 4 AVX-512
    runs as two 256-bit halves), times the clock lscpu reports."""
    info = lscpu()
    flags = set(info.get("Flags", "").split())
    mhz = float(info.get("CPU max MHz") or info.get("CPU MHz") or 0) or _cpuinfo_mhz()
    intel = "Intel" in info.get("Vendor ID", "") or "Intel" in info.get("Model name", "")
    if "avx512f" in flags:
        per_cycle = 64 if intel else 32
    elif "fma" in flags:
        per_cycle = 32
    else:
        per_cycle = 8
    peak = threads * mhz / 1000 * per_cycle
    how = f"{info.get('Model name', '?')}: {threads} cores x {mhz / 1000:.2f} GHz x {per_cycle} FLOP/cycle"
    return peak, how


def _cpuinfo_mhz() -> float:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    found = re.search(r"cpu MHz\s*:\s*([\d.]+)", text)
    return float(found.group(1)) if found else 0.0


def matmul_gflops(dtype: torch.dtype, device: str, repeats: int, n: int = 2048) -> float:
    """GFLOP/s of an n x n matrix product (the practical roofline of this dtype here)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    runner = Runner("mm", lambda: torch.mm(a, b))
    rotate([runner], repeats, _sync(device))
    return 2 * n**3 / runner.seconds / 1e9


def _sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


# -- artifacts and runners -------------------------------------------------------------------------


def image_flops(module: torch.nn.Module, spec, size: int, with_grad: bool) -> float:
    """FLOPs of one image through the eager model (with-grad: plus the input-gradient pass,
    taken with ``backward(inputs=...)``: the counter's module hooks refuse ``autograd.grad``)."""
    images = torch.rand(1, 3, size, size, requires_grad=with_grad)
    counter = FlopCounterMode(display=False)
    with counter:
        if with_grad:
            outputs = flatten_outputs(module(images))
            spec.objective(outputs[spec.grad_output_index]).backward(inputs=[images])
        else:
            with torch.inference_mode():
                module(images)
    return float(counter.get_total_flops())


def export(spec, config, module, folder: Path, name: str, fmt: str, with_grad: bool, **options) -> tuple:
    """(path, seconds) of one lossport export (built-in check off: the benchmark compares)."""
    path = folder / f"{name}{'_grad' if with_grad else ''}_{fmt}_{options.get('precision', 'fp32')}"
    path = path.with_suffix(".onnx" if fmt == "onnx" else ".pt2")
    if options.get("device", "cpu") != "cpu":
        module = copy.deepcopy(module)  # an export for a device moves the module there
    start = time.perf_counter()
    export_artifact(spec, fmt=fmt, path=path, config=config, module=module, with_grad=with_grad, **options)
    return path, time.perf_counter() - start


def aoti_runner(path: Path, images: torch.Tensor) -> Callable[[], object]:
    package = torch._inductor.aoti_load_package(str(path))
    return lambda: package(images)


def eager_runner(module, spec, images: torch.Tensor, with_grad: bool) -> Callable[[], object]:
    if with_grad:
        return lambda: autograd_outputs(module, spec, (images,), with_grad=True)

    def forward():
        with torch.inference_mode():
            return module(images)

    return forward


def ort_runner(path: Path, images: torch.Tensor, threads: int, device: str) -> Callable[[], object]:
    if device != "cuda":
        session = ort_session(path, threads)
        feeds = {"images": images.numpy()}
        return lambda: session.run(None, feeds)
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(path), providers=[("CUDAExecutionProvider", {"use_tf32": 0}), "CPUExecutionProvider"]
    )
    if session.get_providers()[0] != "CUDAExecutionProvider":
        raise SystemExit(f"ONNX Runtime did not start CUDA (providers {session.get_providers()})")
    # inputs and outputs stay on the GPU, as eager's and AOTInductor's do
    binding = session.io_binding()
    binding.bind_ortvalue_input("images", ort.OrtValue.ortvalue_from_numpy(images.cpu().numpy(), "cuda", 0))
    for output in session.get_outputs():
        binding.bind_output(output.name, "cuda")
    return lambda: session.run_with_iobinding(binding)


# -- one mode ------------------------------------------------------------------------------------


def bench_mode(
    args, spec, mode: str, folder: Path, images: torch.Tensor, device: str
) -> Iterator[List[dict]]:
    """The rows of each pass (forward, with-grad) of ``mode``, as each is measured."""
    config = spec.resolve_config({"mode": mode})
    module = spec.instantiate(config)  # exported from the CPU (an AOTI export moves a copy)
    on_device = copy.deepcopy(module).to(device)
    for with_grad in (False, True):
        if with_grad and args.no_grad:
            continue
        flops = image_flops(module, spec, args.size, with_grad)
        onnx, onnx_s = export(spec, config, module, folder, mode, "onnx", with_grad)
        runners = [
            Runner("eager", eager_runner(on_device, spec, images, with_grad)),
            Runner("ORT", ort_runner(onnx, images, args.threads, device), export_s=onnx_s),
        ]
        precisions = ["fp32"] if with_grad else ["fp32", "bf16"]  # bf16 is a forward target
        for precision in precisions:
            options = {"precision": precision, "device": device}
            _, program_s = export(spec, config, module, folder, mode, "pt2", with_grad, precision=precision)
            package, package_s = export(spec, config, module, folder, mode, "aoti", with_grad, **options)
            label = "AOTI" if precision == "fp32" else "AOTI bf16"
            runners.append(
                Runner(label, aoti_runner(package, images), export_s=package_s, program_s=program_s)
            )
        rotate(runners, args.repeats, _sync(device))
        yield [
            {
                "mode": mode,
                "pass": "with-grad" if with_grad else "forward",
                "runtime": runner.label,
                "program_s": runner.program_s,
                "export_s": runner.export_s,
                "ms": runner.seconds * 1000,
                "img_s": args.batch / runner.seconds,
                "gflops": flops * args.batch / runner.seconds / 1e9,
                "vs_eager": runners[0].seconds / runner.seconds,
                "vs_ort": runners[1].seconds / runner.seconds,
                "flops_per_image": flops,
            }
            for runner in runners
        ]


# -- agreement -----------------------------------------------------------------------------------


def agreement(args, spec, folder: Path, device: str) -> dict:
    """Scores of a bf16 package against fp32 eager on the image set."""
    sys.path.insert(0, str(ROOT / "tests"))
    from imageset import build_imageset

    from lossport.io.images import load_image
    from lossport.models.tigas.specs import resolve_weights

    root = Path(args.imageset or Path(tempfile.gettempdir()) / "lossport-imageset")
    imageset = build_imageset(root)
    paths = sorted(p for split in ("train", "eval") for p in imageset.folder(split).rglob("*") if p.is_file())
    paths = [p for p in paths if p.suffix.lower() in (".png", ".jpg", ".jpeg")][: args.images]
    checkpoints = sorted(TRAINED.glob("*.pt"))
    if checkpoints:
        resolved = resolve_weights(checkpoint=checkpoints[0])
        config, module, source = resolved.config, resolved.model, f"trained fixture {checkpoints[0].name}"
    else:
        config = spec.resolve_config({"mode": "fast"})
        module, source = spec.instantiate(config), "random weights (not meaningful: scores hardly spread)"
    package, _ = export(
        spec, config, module, folder, "agreement", "aoti", False, precision="bf16", device=device
    )
    run = torch._inductor.aoti_load_package(str(package))
    module = module.to(device)
    size = (int(config["img_size"]), int(config["img_size"]))
    reference, scores = [], []
    for start in range(0, len(paths), args.batch):
        batch = torch.stack([load_image(p, size) for p in paths[start : start + args.batch]]).to(device)
        with torch.inference_mode():
            reference.append(module(batch)[0].flatten().cpu())
        scores.append(run(batch)[0].flatten().cpu())
    r, a = torch.cat(reference).numpy(), torch.cat(scores).numpy()
    return {
        "source": source,
        "meaningful": bool(checkpoints),
        "n": len(paths),
        "rho": spearman(r, a),
        "max_delta": float(np.max(np.abs(r - a))),
        "spread": float(r.std()),
    }


# -- report --------------------------------------------------------------------------------------


def _seconds(value: Optional[float]) -> str:
    return f"{value:7.1f}" if value is not None else "      -"


HEADER = (
    f"{'mode':4s} {'pass':9s} {'runtime':10s} {'pt2 s':>7s} {'export s':>8s} {'ms/batch':>9s} {'img/s':>7s} "
    f"{'GFLOP/img':>9s} {'GFLOP/s':>8s} {'% peak':>7s} {'vs eager':>8s} {'vs ORT':>7s}"
)


def print_rows(rows: List[dict], peak: float) -> None:
    for row in rows:
        print(
            f"{row['mode']:4s} {row['pass']:9s} {row['runtime']:10s} {_seconds(row['program_s'])} "
            f"{_seconds(row['export_s']):>8s} {row['ms']:9.1f} {row['img_s']:7.2f} "
            f"{row['flops_per_image'] / 1e9:9.1f} {row['gflops']:8.1f} {100 * row['gflops'] / peak:6.0f}% "
            f"{row['vs_eager']:7.2f}x {row['vs_ort']:6.2f}x",
            flush=True,
        )


def verdicts(rows: List[dict], agreed: Optional[dict]) -> None:
    def find(mode, runtime, pass_="forward"):
        return next(r for r in rows if (r["mode"], r["runtime"], r["pass"]) == (mode, runtime, pass_))

    for mode in dict.fromkeys(r["mode"] for r in rows):
        aoti, bf16 = find(mode, "AOTI"), find(mode, "AOTI bf16")
        ratio = aoti["vs_ort"]
        met = "met" if ratio >= FORWARD_TARGET else "NOT met"
        print(f"{mode}: AOTInductor forward / ORT = {ratio:.2f}x (target >= {FORWARD_TARGET:.1f}x: {met})")
        speedup = aoti["ms"] / bf16["ms"]
        met = "met" if speedup >= BF16_TARGET else "NOT met"
        print(f"{mode}: bf16 / fp32 AOTInductor = {speedup:.2f}x (target >= {BF16_TARGET:.1f}x: {met})")
    if agreed is not None:
        if not agreed["meaningful"]:
            met = "not meaningful"
        else:
            met = "met" if agreed["rho"] >= RHO_TARGET else "NOT met"
        print(
            f"bf16 AOTInductor vs fp32 eager on {agreed['n']} images of tests/imageset ({agreed['source']}): "
            f"Spearman rho = {agreed['rho']:.4f}, max |delta score| = {agreed['max_delta']:.2e}, "
            f"score std {agreed['spread']:.3f} (target rho >= {RHO_TARGET}: {met})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--modes", default="fast,full")
    parser.add_argument("--batch", type=int, help="default 8 on the CPU, 64 on CUDA")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=1000, help="at most this many images for the agreement")
    parser.add_argument("--imageset", help="folder for tests/imageset (default: a cached temporary one)")
    parser.add_argument("--no-grad", action="store_true", help="forward only")
    parser.add_argument("--no-agreement", action="store_true")
    parser.add_argument("--quick", action="store_true", help="fast mode only, 3 repeats, 200 images")
    parser.add_argument(
        "--keep-heap", action="store_true", help="glibc keeps freed memory for reuse (see the docstring)"
    )
    args = parser.parse_args()
    if args.keep_heap and KEEP_HEAP not in os.environ.get("GLIBC_TUNABLES", ""):
        tunables = ":".join(filter(None, [os.environ.get("GLIBC_TUNABLES"), KEEP_HEAP]))
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "GLIBC_TUNABLES": tunables})
    if args.quick:
        args.modes, args.repeats, args.images = "fast", 3, 200
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: skipped: no CUDA (torch.cuda.is_available() is False)")
        return
    args.batch = args.batch or (64 if args.device == "cuda" else 8)
    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    spec = catalog.get_spec("tigas")
    images = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    images = images.to(args.device)

    fp32 = matmul_gflops(torch.float32, args.device, args.repeats)
    bf16 = matmul_gflops(torch.bfloat16, args.device, args.repeats)
    if args.device == "cpu":
        peak, how = nominal_fp32_peak(args.threads)
        flags = set(lscpu().get("Flags", "").split())
        bf16_isa = ", ".join(f for f in ("avx512_bf16", "amx_bf16") if f in flags) or "none"
        print(f"roofline: nominal fp32 {peak:.0f} GFLOP/s ({how}); bf16 instructions: {bf16_isa}")
    else:
        peak = fp32
        print(f"device: {torch.cuda.get_device_name()}")
    print(f"measured 2048^3 matmul: fp32 {fp32:.0f} GFLOP/s, bf16 {bf16:.0f} GFLOP/s")
    print(
        f"device {args.device}, threads {args.threads}, batch {args.batch}, {args.size}x{args.size}, "
        f"median of {args.repeats} rounds in rotation, "
        f"{'heap kept (GLIBC_TUNABLES)' if args.keep_heap else 'system allocator'}\n"
    )
    what = "the nominal fp32 peak" if args.device == "cpu" else "the measured fp32 matmul"
    print(f"GFLOP/img: torch.utils.flop_counter on eager; % peak: of {what} ({peak:.0f} GFLOP/s)\n")
    print(HEADER, flush=True)
    rows: List[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        for mode in args.modes.split(","):
            for measured in bench_mode(args, spec, mode, Path(folder), images, args.device):
                print_rows(measured, peak)
                rows += measured
        agreed = None if args.no_agreement else agreement(args, spec, Path(folder), args.device)
        print()
        verdicts(rows, agreed)


if __name__ == "__main__":
    main()
