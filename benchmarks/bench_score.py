"""``lossport score`` at dataset scale: throughput against the artifact alone, Ray Data against
``lossport score``, and peak memory for 1,000 against 10,000 images, measured in one run.

    python benchmarks/bench_score.py                      # 96 images, batch 8, 2 threads
    python benchmarks/bench_score.py --images 200 --workers 1 --skip-ray

1. Throughput, alternating runs on the same images and the same ``--threads`` (ONNX Runtime
   intra-op threads), median of ``--repeats``: the artifact alone (ONNX Runtime on batches
   decoded beforehand), the score pipeline (``iter_scores``: decoding in ``--workers`` threads
   overlapped with inference, what ``lossport score`` runs), and the sequential path
   (``--workers 0``). Model: a random-weights TIGAS fast export (256x256), images: JPEGs of
   640x480 made from a fixed seed.
2. Decoding alone, threads against processes (why the pipeline uses threads).
3. Ray Data in local mode (``ray.init(num_cpus=2)``, one actor) against ``lossport score``
   run as a command, wall time of both including loading the model.
4. Peak RSS of ``lossport score DIR -o scores.csv`` on 1,000 and 10,000 small JPEGs, with a
   stand-in scorer (the mean of its input, 256x256 contract: the pipeline's memory, not
   TIGAS's speed, is what grows with the dataset).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, List

import numpy as np
from PIL import Image

from lossport.io.batching import load_batches
from lossport.io.images import collect_sources, load_image
from lossport.models.tigas.scoring import iter_scores
from lossport.scoring import ArtifactScorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from scorer_models import mean_scorer_onnx


def make_images(folder: Path, count: int, size=(480, 640), seed: int = 0) -> Path:
    """``count`` JPEGs of ``size`` (H, W): smooth gradients plus noise, from ``seed``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    for index in range(count):
        base = rng.uniform(0, 255, 3) + 80 * np.sin(xs[..., None] / rng.uniform(5, 60) + ys[..., None] / 40)
        pixels = np.clip(base + rng.normal(0, 12, (*size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:05d}.jpg", quality=90)
    return folder


def timed(function: Callable[[], int]) -> float:
    """Images per second of ``function`` (which returns how many it did)."""
    start = time.perf_counter()
    count = function()
    return count / (time.perf_counter() - start)


def throughput(model: Path, images: Path, args) -> None:
    runner = ArtifactScorer(model, args.threads)
    sources, _ = collect_sources([images])
    decoded = list(load_batches(sources, runner.preprocess.size, args.batch_size, []))
    runner.predict(decoded[0][1])  # warm-up

    def alone() -> int:
        return sum(len(runner.predict(batch)[0]) for _, batch in decoded)

    def pipeline(workers: int) -> Callable[[], int]:
        return lambda: sum(len(s) for s in iter_scores(runner, sources, [], args.batch_size, workers=workers))

    runs = {"artifact alone": alone, f"score, {args.workers} workers": pipeline(args.workers)}
    runs["score, sequential (--workers 0)"] = pipeline(0)
    rates = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, function in runs.items():
            rates[name].append(timed(function))
    base = statistics.median(rates["artifact alone"])
    print(f"\n1. throughput, {len(sources)} images, batch {args.batch_size}, {args.threads} threads")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"   {name:<34} {rate:6.2f} img/s   {rate / base:5.2f}x the artifact alone")


def _decode(path: Path) -> np.ndarray:
    return load_image(path, (256, 256)).numpy()


def decoding(images: Path) -> None:
    paths = [s.path for s in collect_sources([images])[0]]
    print(f"\n2. decoding and resizing alone, {len(paths)} images to 256x256")
    sequential = timed(lambda: len([_decode(p) for p in paths]))
    print(f"   one thread                         {sequential:6.1f} img/s")
    for workers in (1, 2):
        with ThreadPoolExecutor(workers) as pool:
            rate = timed(lambda: len(list(pool.map(_decode, paths))))
        print(f"   {workers} worker threads                   {rate:6.1f} img/s")
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_decode, paths[:workers]))  # start the workers first
            rate = timed(lambda: len(list(pool.map(_decode, paths))))
        print(f"   {workers} worker processes                 {rate:6.1f} img/s")


def score_command(*arguments) -> List[str]:
    return [sys.executable, "-m", "lossport", "score", *map(str, arguments)]


def ray_against_score(model: Path, images: Path, args) -> None:
    import ray

    from lossport.integrations.ray import image_dataset, score_dataset

    count = len(collect_sources([images])[0])
    start = time.perf_counter()
    subprocess.run(
        score_command(
            images, "--model", model, "--batch-size", args.batch_size, "--threads", args.threads, "--csv"
        ),
        check=True,
        capture_output=True,
    )
    score_wall = time.perf_counter() - start
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        start = time.perf_counter()
        dataset = score_dataset(
            image_dataset([images]), model, batch_size=args.batch_size, threads=args.threads
        )
        rows = dataset.materialize().count()
        ray_wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    assert rows == count
    print(f"\n3. Ray Data local mode (1 actor) against lossport score, {count} images, wall time")
    print(f"   lossport score                     {count / score_wall:6.2f} img/s ({score_wall:.1f} s)")
    print(
        f"   Ray Data                           {count / ray_wall:6.2f} img/s ({ray_wall:.1f} s), "
        f"{score_wall / ray_wall:.2f}x lossport score"
    )


def peak_rss(folder: Path, model: Path, out: Path) -> float:
    """Peak resident memory (MiB) of ``lossport score folder -o out``."""
    process = subprocess.Popen(
        score_command(folder, "--model", model, "-o", out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"lossport score {folder} failed ({status})")
    return usage.ru_maxrss / 1024


def memory(work: Path) -> None:
    model = mean_scorer_onnx(work / "mean.onnx", {"size": [256, 256]})
    small = make_images(work / "rss" / "1000", 1000, size=(48, 64), seed=1)
    large = make_images(work / "rss" / "10000", 9000, size=(48, 64), seed=2).parent
    print("\n4. peak RSS of lossport score DIR -o scores.csv (stand-in scorer, batch 32)")
    for folder, count in ((small, 1000), (large, 10000)):
        rss = peak_rss(folder, model, work / f"scores-{count}.csv")
        print(f"   {count:>6} images                      {rss:7.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument(
        "--image-size",
        default="480x640",
        help="HEIGHTxWIDTH of the generated JPEGs (photos: e.g. 1800x2400).",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--model", type=Path, help="A TIGAS ONNX export (default: a random-weights one, made here)."
    )
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lossport-bench-score-") as name:
        work = Path(name)
        model = args.model
        if model is None:
            model = work / "tigas.onnx"
            subprocess.run(
                [sys.executable, "-m", "lossport", "export", "tigas", "--weights", "random"]
                + ["--format", "onnx", "-o", str(model)],
                check=True,
                capture_output=True,
            )
        height, width = (int(side) for side in args.image_size.lower().split("x"))
        images = make_images(work / "images", args.images, size=(height, width))
        throughput(model, images, args)
        decoding(images)
        if not args.skip_ray:
            ray_against_score(model, images, args)
        if not args.skip_memory:
            memory(work)


if __name__ == "__main__":
    main()
