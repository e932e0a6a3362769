"""Export wall time and inference speed of the exported TIGAS scorer.

Prints, for fast and full mode at the default size (base 32, features 256, 8 heads; random
weights):
- export time to ONNX and TorchScript, with and without --with-grad, in this process (built-in
  check off), and the wall time of the whole `lossport export tigas` command (a fresh process:
  imports, model, export and the built-in check) for ONNX;
- inference at batch 8, 256x256: ONNX Runtime CPU (tuned session: all graph optimisations,
  sequential execution, same thread count) vs our eager PyTorch, forward and with-grad,
  measured side by side in one run, as a ratio.

    python benchmarks/bench_export_tigas.py [--threads 2] [--repeats 5] [--modes fast,full]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lossport import catalog
from lossport.export import export_artifact
from lossport.validation.backends import autograd_outputs


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--modes", default="fast,full")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = catalog.get_spec("tigas")
    images = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    print(f"threads {args.threads}, batch {args.batch}, {args.size}x{args.size}, median of {args.repeats}")
    with tempfile.TemporaryDirectory() as folder:
        for mode in args.modes.split(","):
            config = spec.resolve_config({"mode": mode})
            module = spec.instantiate(config)
            paths = {}
            for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
                for grad in (False, True):
                    path = Path(folder) / f"{mode}_{grad}{suffix}"
                    start = time.perf_counter()
                    export_artifact(spec, fmt=fmt, path=path, config=config, module=module, with_grad=grad)
                    paths[fmt, grad] = path
                    print(
                        f"{mode:4s} export {fmt:11s} with_grad={grad!s:5s} "
                        f"{time.perf_counter() - start:6.1f} s"
                    )
            for grad in (False, True):
                command = [
                    sys.executable,
                    "-m",
                    "lossport",
                    "export",
                    "tigas",
                    "--weights",
                    "random",
                    "--mode",
                    mode,
                    "--format",
                    "onnx",
                    "-o",
                    str(Path(folder) / "cli.onnx"),
                ] + (["--with-grad"] if grad else [])
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                print(
                    f"{mode:4s} `lossport export tigas --format onnx{' --with-grad' if grad else ''}` "
                    f"{time.perf_counter() - start:6.1f} s wall (fresh process, check on)"
                )
            feeds = {"images": images.numpy()}
            for grad in (False, True):
                session = ort_session(paths["onnx", grad], args.threads)
                ort_time = median_seconds(lambda: session.run(None, feeds), args.repeats)
                if grad:
                    eager = lambda: autograd_outputs(module, spec, (images,), with_grad=True)
                else:

                    def eager():
                        with torch.inference_mode():
                            module(images)

                eager_time = median_seconds(eager, args.repeats)
                label = "with-grad" if grad else "forward"
                print(
                    f"{mode:4s} {label:9s} eager {args.batch / eager_time:6.2f} img/s, "
                    f"ORT-CPU {args.batch / ort_time:6.2f} img/s, ratio ORT/eager "
                    f"{eager_time / ort_time:4.2f}x"
                )
                ort_out = session.run(None, feeds)[0]
                with torch.no_grad():
                    ref = module(images)[0].numpy()
                print(f"     max |score ORT - eager| = {np.max(np.abs(ort_out - ref)):.2e}")


if __name__ == "__main__":
    main()
