"""The browser scorer (``examples/web``) in real headless Chromium, against eager PyTorch, and
``lossport serve-web``.

Playwright drives Debian's ``chromium`` (``/usr/bin/chromium``; Playwright's own browser download
is not used) on the page served by :class:`lossport.cli.web.WebServer`, the server of
``lossport serve-web``. The page scores PNGs already at the model's size (64x64), so it decodes
exactly the pixels that ``lossport.io.images.load_image`` gives eager PyTorch: scores must agree
within 1e-5, gradients within 1e-4 of the largest reference |gradient|.

``npm ci`` in ``examples/web`` (when its ``node_modules`` is missing or holds another version)
and the exports run once per test session, shared by the pytest-xdist workers. Without
chromium, npm or the playwright package these tests skip with the reason, except under CI (the
``CI`` environment variable), where they fail. ``LOSSPORT_UPDATE_SCREENSHOT=1`` writes the
screenshot to ``docs/web-scorer.png`` (the README's); otherwise it goes to the test's folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List

import numpy as np
import pytest
import torch
from browser import launch_chromium
from click.testing import CliRunner
from example_tools import once as _once
from example_tools import require as _require
from example_tools import session_folder as _session_folder
from filelock import FileLock
from PIL import Image

from lossport import catalog
from lossport.cli import main
from lossport.cli.web import WebServer
from lossport.io.images import load_image
from lossport.models.tigas.specs import SMALL, resolve_weights
from lossport.spec.flatten import flatten_outputs

pytestmark = pytest.mark.examples  # runs the browser example (Chromium, npm)

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "examples" / "web"
SCREENSHOT = ROOT / "docs" / "web-scorer.png"
SIZE = 64
SCORE_ATOL = 1e-5
GRAD_RTOL = 1e-4
SCORER = ["--weights", "random", "--img-size", str(SIZE), "--dynamic", "batch", "--no-check"]
SCORER += [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={value}")]
SETTLED = "['ready', 'error', 'no-model'].includes(document.body.dataset.state)"


def _installed_version() -> str:
    try:
        return json.loads((WEB / "node_modules/onnxruntime-web/package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return ""


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> Path:
    """examples/web with the pinned onnxruntime-web installed (``npm ci`` when it is not)."""
    _require("chromium", "npm", package="playwright")
    pinned = json.loads((WEB / "package.json").read_text())["dependencies"]["onnxruntime-web"]
    with FileLock(str(_session_folder(tmp_path_factory, "web") / "npm.lock")):
        if _installed_version() != pinned:
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, capture_output=True, text=True
            )
            assert done.returncode == 0, f"npm ci failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return WEB


class Artifacts:
    """Scorers and a loss exported with the CLI, once per session, and their eager twin."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.model = resolve_weights(weights="random", overrides=SMALL, img_size=SIZE).model.eval()

    def export(self, name: str, *arguments: str) -> Path:
        path = self.folder / name
        with _once(path) as needed:
            if needed:
                result = CliRunner().invoke(main, ["export", *arguments, "-o", str(path)])
                assert result.exit_code == 0, result.output
        return path

    def scorer(self, with_grad: bool) -> Path:
        if with_grad:
            return self.export("tigas_grad.onnx", "tigas", *SCORER, "--with-grad")
        return self.export("tigas.onnx", "tigas", *SCORER)

    def loss(self) -> Path:
        return self.export("rmse.onnx", "loss", "rmse", "--no-check")

    def eager(self, image: Path) -> Dict[str, np.ndarray]:
        """Score, logits and grad_images (of 1 - mean(score)) of one image, a batch of one."""
        spec = catalog.get_spec("tigas")
        images = load_image(image, (SIZE, SIZE)).unsqueeze(0).requires_grad_(True)
        outputs = flatten_outputs(self.model(images))
        (grad,) = torch.autograd.grad(spec.objective(outputs[spec.grad_output_index]), [images])
        named = dict(zip(spec.outputs, outputs))
        return {k: v.detach().numpy() for k, v in {**named, "grad_images": grad}.items()}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Artifacts:
    return Artifacts(_session_folder(tmp_path_factory, "web-artifacts"))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> List[Path]:
    """The example images and a noise image as PNGs at the model's size (resized by lossport),
    so that the page and eager PyTorch see the same pixels."""
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for source in sorted((ROOT / "examples" / "images").iterdir()):
        pixels = (load_image(source, (SIZE, SIZE)).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        paths.append(folder / f"{source.stem}.png")
        Image.fromarray(pixels).save(paths[-1])
    paths.append(folder / "noise.png")
    noise = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(noise).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def server(web) -> Iterator[WebServer]:
    """The page; :func:`open_page` adds the model it opens."""
    with WebServer(web) as running:
        yield running


@pytest.fixture(scope="module")
def browser(web):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def open_page(browser, server: WebServer, model: Path, init_script: str = ""):
    """The page with ``model`` (served by its file name), once it has settled."""
    server.files[model.name] = model
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    errors: List[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    if init_script:
        page.add_init_script(init_script)
    page.goto(f"{server.url}?model={model.name}&threads=1")
    page.wait_for_function(SETTLED, timeout=60_000)
    page.errors = errors
    return page


def score_files(page, files: List[Path]) -> List[dict]:
    """Pick ``files`` on the page; its results, gradients as lists."""
    page.set_input_files("#image-files", [str(f) for f in files])
    page.wait_for_function(f"lossportWeb.results.length === {len(files)}", timeout=60_000)
    return page.evaluate(
        "lossportWeb.results.map((r) => ({...r, gradient: r.gradient ? Array.from(r.gradient) : null}))"
    )


def error_message(page) -> str:
    return page.locator("#message.error").inner_text(timeout=1000)


def test_page_scores_and_gradients_match_eager_with_heatmaps(browser, server, artifacts, images, tmp_path):
    page = open_page(browser, server, artifacts.scorer(with_grad=True))
    assert page.evaluate("lossportWeb.state") == "ready", page.evaluate("lossportWeb.message")
    model = page.evaluate("lossportWeb.model")
    assert model["withGrad"] and model["contract"]["size"] == [SIZE, SIZE]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    results = score_files(page, [*images[:2], broken, *images[2:]])

    assert [r["file"] for r in results] == [images[0].name, images[1].name, broken.name, images[2].name]
    bad = results.pop(2)
    assert bad["error"].startswith("broken.png is not a readable image")
    assert page.locator(".result.error .error-message").inner_text() == bad["error"]
    for image, result in zip(images, results):
        expected = artifacts.eager(image)
        assert abs(result["score"] - expected["score"].item()) <= SCORE_ATOL, image.name
        np.testing.assert_allclose(result["logits"], expected["logits"].ravel(), rtol=0, atol=SCORE_ATOL)
        assert result["decision"] == ("real" if result["score"] >= 0.5 else "generated")
        reference = expected["grad_images"].ravel()
        error = np.abs(np.asarray(result["gradient"]) - reference).max() / np.abs(reference).max()
        assert error <= GRAD_RTOL, (image.name, error)
        assert result["resized"] is None

    drawn = page.evaluate(
        """[...document.querySelectorAll('.result:not(.error)')].map((card) => {
             const heatmap = card.querySelector('canvas.heatmap');
             const pixels = heatmap.getContext('2d').getImageData(0, 0, heatmap.width, heatmap.height).data;
             return {drawn: heatmap.dataset.drawn, distinct: new Set(pixels).size};
           })"""
    )
    assert all(d["drawn"] == "true" and d["distinct"] > 16 for d in drawn), drawn
    assert page.errors == []
    shot = SCREENSHOT if os.environ.get("LOSSPORT_UPDATE_SCREENSHOT") == "1" else tmp_path / SCREENSHOT.name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_a_loss_is_refused_with_one_message(browser, server, artifacts):
    page = open_page(browser, server, artifacts.loss())
    assert page.evaluate("lossportWeb.state") == "error"
    assert error_message(page).startswith(
        "rmse.onnx is not an image scorer: it is lossport's exported rmse (a loss)"
    )
    assert "lossport export tigas" in error_message(page)


def test_a_browser_without_wasm_simd_gets_one_message(browser, server, artifacts):
    page = open_page(browser, server, artifacts.loss(), "WebAssembly.validate = () => false;")
    assert page.evaluate("lossportWeb.state") == "error"
    assert error_message(page).startswith("This browser has no WebAssembly SIMD")


def test_without_a_model_the_page_says_how_to_get_one(browser, server, artifacts, tmp_path):
    page = open_page(browser, server, tmp_path / "missing.onnx")
    assert page.evaluate("lossportWeb.state") == "no-model"
    assert "lossport serve-web --model" in page.locator("#message").inner_text()
    page.evaluate(
        """async () => {  // a person drops an image
             const canvas = new OffscreenCanvas(8, 8);
             canvas.getContext('2d').fillRect(0, 0, 8, 8);
             const blob = await canvas.convertToBlob({type: 'image/png'});
             const transfer = new DataTransfer();
             transfer.items.add(new File([blob], 'dropped.png', {type: 'image/png'}));
             const drop = new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true});
             document.querySelector('#drop').dispatchEvent(drop);
           }"""
    )
    page.wait_for_function("lossportWeb.results.length === 1")
    assert page.evaluate("lossportWeb.results[0]")["error"].startswith("no scorer loaded")
    page.set_input_files("#model-file", str(artifacts.loss()))  # then picks a model that is a loss
    page.wait_for_function("lossportWeb.state === 'error'")
    assert error_message(page).startswith("rmse.onnx is not an image scorer")


@pytest.mark.parametrize("where", ["http", "file"])
def test_a_page_that_cannot_load_its_code_says_why(browser, web, tmp_path, where):
    for source in [*web.glob("*.mjs"), web / "index.html"]:  # the page without node_modules
        shutil.copy(source, tmp_path)
    page = browser.new_page()
    with WebServer(tmp_path) as bare:
        page.goto(bare.url if where == "http" else (tmp_path / "index.html").as_uri())
        page.wait_for_function("document.body.dataset.state === 'error'")
    expected = "(cd examples/web && npm ci)" if where == "http" else "not as a file"
    assert expected in error_message(page)


@pytest.mark.slow  # one more TIGAS export
def test_a_forward_only_scorer_scores_without_heatmaps_and_resizes(browser, server, artifacts):
    page = open_page(browser, server, artifacts.scorer(with_grad=False))
    assert page.evaluate("lossportWeb.model.withGrad") is False
    original = ROOT / "examples" / "images" / "gradient.png"  # 96x80: the page resizes it
    (result,) = score_files(page, [original])
    assert result["gradient"] is None and result["resized"] == [80, 96]
    assert page.locator("canvas.heatmap").count() == 0
    assert "resized 96×80 → 64×64" in page.locator(".result .note").inner_text()
    # the canvas's resampling is close to Pillow's bilinear, not identical
    assert abs(result["score"] - artifacts.eager(original)["score"].item()) < 1e-2


def _serve_web(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lossport", "serve-web", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("model", ["missing.onnx", "tigas.pt"])
def test_serve_web_refuses_a_bad_model_in_one_line(tmp_path, model):
    if model.endswith(".pt"):
        (tmp_path / model).write_bytes(b"")
    result = CliRunner().invoke(main, ["serve-web", "--model", str(tmp_path / model), "--no-open"])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and ("no such model file" in line or "(.onnx)" in line)


def test_serve_web_says_how_to_install_the_page(tmp_path, monkeypatch):
    (tmp_path / "index.html").write_text("")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    monkeypatch.setattr("lossport.cli.web.WEB_ROOT", tmp_path)
    result = CliRunner().invoke(main, ["serve-web", "--model", str(model)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ONNX Runtime Web is not installed") and line.endswith(" && npm ci)")


def test_serve_web_serves_the_page_and_the_model(web, artifacts):
    model = artifacts.loss()  # any file: the server only serves it
    process = subprocess.Popen(
        [sys.executable, "-m", "lossport", "serve-web", "--model", str(model), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("serving the browser scorer with "), line
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(f"{url}model.onnx") as response:
            assert response.read() == model.read_bytes()
        for path, kind in [
            ("", "text/html"),
            ("app.mjs", "text/javascript"),
            ("node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm", "application/wasm"),
        ]:
            with urllib.request.urlopen(f"{url}{path}") as response:
                assert response.headers["Content-Type"].startswith(kind), path
                assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
                assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    finally:
        process.terminate()
        process.wait(timeout=30)
