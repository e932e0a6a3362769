"""The browser scorer's speed: headless Chromium (ONNX Runtime Web, WASM) next to ONNX Runtime
on the CPU in Python, on the same model and image.

    (cd examples/web && npm ci)
    python benchmarks/bench_web.py                       # exports the fast scorer at 256x256
    python benchmarks/bench_web.py --model tigas.onnx --images 20 --threads 1,2

Needs Debian's ``chromium`` and the ``playwright`` Python package (its browser download is not
used). Without ``--model`` the script exports ``lossport export tigas --weights random`` (fast
mode, 256x256) to a temporary folder. The image is ``examples/images/tiles.jpg`` resized by
lossport to the model's size and saved as PNG, so no run resizes.

For each runtime and thread count:

- load to first score: in the browser, from navigation start (a fresh page, nothing cached:
  the server sends ``no-store``) until the model is ready, plus the first image's time (decode,
  preprocess, run, draw; the gap while the script picks the file is not counted); in Python,
  from creating the session until the first image is scored (image read, preprocess, run);
- per image: the median over ``--images`` further images of the same work, and of the model
  run alone.

WASM threads beyond one need a cross-origin-isolated page, which the server
(:class:`lossport.cli.web.WebServer`) makes with its COOP/COEP headers; the script checks that
the page ran with the threads asked for.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import onnxruntime as ort
from PIL import Image

from lossport.artifact.runtime import artifact_preprocess
from lossport.cli.web import WEB_ROOT, WebServer, check_web_root
from lossport.io.images import load_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import launch_chromium

ROOT = Path(__file__).resolve().parents[1]


def export_fast_scorer(folder: Path) -> Path:
    from click.testing import CliRunner

    from lossport.cli import main

    path = folder / "tigas.onnx"
    result = CliRunner().invoke(main, ["export", "tigas", "--weights", "random", "-o", str(path)])
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return path


def image_at(size, folder: Path) -> Path:
    """examples/images/tiles.jpg at ``size`` (height, width), resized by lossport, as PNG."""
    pixels = load_image(ROOT / "examples/images/tiles.jpg", size).permute(1, 2, 0).numpy()
    path = folder / "tiles.png"
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(path)
    return path


def browser_times(model: Path, image: Path, copies: List[Path], threads: int) -> Dict[str, float]:
    from playwright.sync_api import sync_playwright

    with WebServer(check_web_root(WEB_ROOT), {"model.onnx": model}) as server, sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page()
        page.goto(f"{server.url}?threads={threads}")
        page.wait_for_function("lossportWeb.state !== 'loading'", timeout=120_000)
        if page.evaluate("lossportWeb.state") != "ready":
            raise SystemExit(f"the page did not load the model: {page.evaluate('lossportWeb.message')}")
        if page.evaluate("lossportWeb.threads") != threads:
            raise SystemExit(f"the page runs {page.evaluate('lossportWeb.threads')} threads, not {threads}")
        for count, files in ((1, [image]), (1 + len(copies), copies)):
            page.set_input_files("#image-files", [str(f) for f in files])
            page.wait_for_function(f"lossportWeb.results.length === {count}", timeout=600_000)
        state = page.evaluate("({readyMs: lossportWeb.readyMs, results: lossportWeb.results})")
        browser.close()
    first, rest = state["results"][0], state["results"][1:]
    return {
        "load_to_first_score": (state["readyMs"] + first["ms"]) / 1000,
        "per_image": statistics.median(r["ms"] for r in rest) / 1000,
        "run": statistics.median(r["runMs"] for r in rest) / 1000,
    }


def python_times(model: Path, image: Path, copies: List[Path], threads: int) -> Dict[str, float]:
    contract = artifact_preprocess(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1

    started = time.perf_counter()
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def score(path: Path) -> float:
        batch = contract.apply(load_image(path, contract.size).unsqueeze(0)).numpy()
        run_started = time.perf_counter()
        session.run(["score"], {name: batch})
        return time.perf_counter() - run_started

    score(image)
    first = time.perf_counter() - started
    totals, runs = [], []
    for path in copies:
        started = time.perf_counter()
        runs.append(score(path))
        totals.append(time.perf_counter() - started)
    return {
        "load_to_first_score": first,
        "per_image": statistics.median(totals),
        "run": statistics.median(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="scorer .onnx (default: export the fast one at 256x256)")
    parser.add_argument("--images", type=int, default=10, help="images timed after the first")
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    args = parser.parse_args()
    counts = [int(t) for t in args.threads.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = (args.model or export_fast_scorer(folder)).resolve()
        contract = artifact_preprocess(model)
        image = image_at(contract.size, folder)
        copies = []
        for i in range(args.images):  # distinct names: the page lists every file it scores
            copies.append(folder / f"copy{i}.png")
            shutil.copy(image, copies[-1])
        rows = []
        for threads in counts:
            rows.append(
                (f"Chromium, ORT Web WASM, {threads} thread(s)", browser_times(model, image, copies, threads))
            )
            rows.append(
                (f"Python, ORT CPU, {threads} thread(s)", python_times(model, image, copies, threads))
            )

    print(
        f"{model.name}: {contract.size[0]}x{contract.size[1]}, batch 1, {args.images} images timed after the first"
    )
    print(f"onnxruntime {ort.__version__} (Python); onnxruntime-web from examples/web/package-lock.json")
    print(f"{'runtime':<40} {'load to first score':>20} {'per image':>10} {'run only':>10}")
    for label, times in rows:
        print(
            f"{label:<40} {times['load_to_first_score']:>19.3f}s {times['per_image'] * 1000:>8.1f}ms "
            f"{times['run'] * 1000:>8.1f}ms"
        )


if __name__ == "__main__":
    main()
