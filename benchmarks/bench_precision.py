"""TIGAS fast at fp32, fp16 and int8, side by side in one run: forward throughput and, with a
trained checkpoint, agreement with eager fp32 on real images.

    python benchmarks/bench_precision.py                           # random weights, speed only
    python benchmarks/bench_precision.py --checkpoint CKPT --images DIR
    python benchmarks/bench_precision.py --profile                  # + ORT per-op profiles

1. Speed: the upstream-size fast model (``base_channels`` 32, ``feature_dim`` 256; random
   weights: speed does not depend on them) exported with ``lossport export`` at each precision
   (int8 calibrated on the built-in set), batch ``--batch`` of 256x256 images, ``--threads``
   threads for everything (``torch.set_num_threads``, ONNX Runtime intra-op threads). Runs
   alternate between the variants, ``--repeats`` rounds after a warm-up; the median of each is
   shown with its ratio to ONNX Runtime fp32. fp16 runs on ONNX Runtime's CPU provider (float16
   ops it has no CPU kernel for run in float32 behind casts): a correctness check there, not a
   speed path; the GPU is its target.
2. Agreement (``--checkpoint`` and ``--images``): the checkpoint's model exported at each
   precision, every image of the folder scored through the artifact's preprocessing contract by
   eager fp32 and by ONNX Runtime: Spearman's rho, Kendall's tau-b, decisions flipped at 0.5 and
   max |delta score| (:mod:`lossport.validation.images`).
3. ``--profile``: ONNX Runtime's own profile (``SessionOptions.enable_profiling``) of one
   batch at fp32 and int8, time per op type, to show where int8 gains or does not.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch

from lossport import catalog
from lossport.artifact.runtime import OnnxArtifact, artifact_preprocess
from lossport.export import export_artifact
from lossport.models.tigas.specs import resolve_weights
from lossport.validation.backends import OrtBackend, reference_backend
from lossport.validation.images import ImageCriteria, image_agreements

PRECISIONS = ("fp32", "fp16", "int8")


def export_all(resolved, folder: Path) -> Dict[str, Path]:
    """The model exported at every precision (no built-in check: section 2 judges agreement)."""
    spec = catalog.get_spec("tigas", kind="model")
    folder.mkdir(parents=True)
    paths = {}
    for precision in PRECISIONS:
        start = time.perf_counter()
        result = export_artifact(
            spec,
            fmt="onnx",
            path=folder / f"tigas_{precision}.onnx",
            config=resolved.config,
            module=resolved.model,
            weights=resolved.weights,
            precision=precision,
        )
        print(
            f"  exported {precision} in {time.perf_counter() - start:.0f}s ({result.path.stat().st_size >> 10} KiB)"
        )
        paths[precision] = result.path
    return paths


def speed(paths: Dict[str, Path], model: torch.nn.Module, args) -> None:
    torch.set_num_threads(args.threads)
    images = torch.from_numpy(np.random.default_rng(0).random((args.batch, 3, 256, 256), dtype=np.float32))
    sessions = {p: OnnxArtifact(path, threads=args.threads) for p, path in paths.items()}

    def eager() -> None:
        with torch.inference_mode():
            model(images)

    runs: Dict[str, Callable[[], None]] = {"eager fp32": eager}
    for precision, session in sessions.items():
        runs[f"ort-cpu {precision}"] = lambda s=session: s.run({"images": images.numpy()})
    times: Dict[str, List[float]] = collections.defaultdict(list)
    for round_ in range(args.repeats + 1):  # round 0 warms up
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if round_:
                times[name].append(time.perf_counter() - start)
    base = args.batch / statistics.median(times["ort-cpu fp32"])
    print(f"\nforward, batch {args.batch}, 256x256, {args.threads} threads, median of {args.repeats}:")
    for name, values in times.items():
        rate = args.batch / statistics.median(values)
        spread = f"{args.batch / max(values):.2f}-{args.batch / min(values):.2f}"
        print(f"  {name:14s} {rate:6.2f} img/s  ({spread})  x{rate / base:.2f} of ort-cpu fp32")


def agreement(paths: Dict[str, Path], resolved, folder: Path) -> None:
    spec = catalog.get_spec("tigas", kind="model")
    reference = reference_backend(resolved.model, spec)
    backends = [OrtBackend(paths[p], spec, "cpu") for p in PRECISIONS]
    preprocess = artifact_preprocess(paths["fp32"])
    results = image_agreements(spec, reference, backends, preprocess, ImageCriteria(folder))
    print(f"\nagreement with eager fp32 on {folder} ({len(results[0].paths)} images):")
    for precision, result in zip(PRECISIONS, results):
        print(
            f"  {precision}: Spearman {result.spearman:.4f}, Kendall {result.kendall:.4f}, "
            f"{result.flips} flip(s) at 0.5 ({100 * result.flips / len(result.paths):.1f}%), "
            f"max |dscore| {result.max_delta:.4f}"
        )
    scores = np.asarray(results[0].reference)
    print(f"  eager scores: min {scores.min():.3f}, median {np.median(scores):.3f}, max {scores.max():.3f}")


def profile(paths: Dict[str, Path], args) -> None:
    """Per-op-type time from ONNX Runtime's profiler, one batch after a warm-up."""
    import onnxruntime as ort

    images = np.random.default_rng(0).random((args.batch, 3, 256, 256), dtype=np.float32)
    for precision in ("fp32", "int8"):
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.enable_profiling = True
        options.log_severity_level = 3
        with tempfile.TemporaryDirectory() as folder:
            options.profile_file_prefix = str(Path(folder) / "profile")
            session = ort.InferenceSession(str(paths[precision]), options, providers=["CPUExecutionProvider"])
            session.run(None, {"images": images})
            session.run(None, {"images": images})
            events = json.loads(Path(session.end_profiling()).read_text())
        per_op: Dict[str, float] = collections.defaultdict(float)
        runs = [e for e in events if e.get("name") == "model_run"]
        last_run = runs[-1]["ts"] if runs else 0
        for event in events:
            if (
                event.get("cat") == "Node"
                and event["name"].endswith("_kernel_time")
                and event["ts"] >= last_run
            ):
                per_op[event["args"]["op_name"]] += event["dur"] / 1e3
        total = sum(per_op.values())
        top = sorted(per_op.items(), key=lambda item: -item[1])[:8]
        shown = ", ".join(f"{op} {ms:.0f} ms ({100 * ms / total:.0f}%)" for op, ms in top)
        print(f"\nprofile {precision} (one batch, {total:.0f} ms in kernels): {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--checkpoint", type=Path, help="Trained fast-mode checkpoint for the agreement.")
    parser.add_argument("--images", type=Path, help="Image folder for the agreement (with --checkpoint).")
    parser.add_argument("--profile", action="store_true", help="Also print ONNX Runtime per-op profiles.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-precision-") as work:
        work = Path(work)
        print("speed model: TIGAS fast, upstream size, random weights")
        resolved = resolve_weights(mode="fast", weights="random")
        paths = export_all(resolved, work / "speed")
        speed(paths, resolved.model, args)
        if args.profile:
            profile(paths, args)
        if args.checkpoint is not None and args.images is not None:
            print(f"\nagreement model: {args.checkpoint}")
            trained = resolve_weights(checkpoint=args.checkpoint)
            agreement(export_all(trained, work / "trained"), trained, args.images)


if __name__ == "__main__":
    main()
