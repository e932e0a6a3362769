"""The deployment examples, built and run on artifacts exported here, against eager PyTorch.

``examples/cpp`` (libtorch) runs the TorchScript artifacts, ``examples/cpp-aoti`` (libtorch's
``AOTIModelPackageLoader``) the AOTInductor packages, ``examples/node`` (ONNX Runtime for
Node.js) the ONNX ones: the small TIGAS scorer (``test_config``) on an image batch made by
``lossport preprocess``, and a loss with its gradient graph on ``--random`` tensors. Scores and
losses must agree within 1e-5, gradients within 1e-4 of the largest reference |gradient|: the
expected values are eager PyTorch's on the same tensor files.

The C++ builds, ``npm ci`` and the exports run once per test session (shared by the
pytest-xdist workers), in temporary folders. Where cmake, a C++ compiler, node or npm is
missing these tests skip with the reason, except under CI (the ``CI`` environment variable),
where they fail. AOTInductor compiles every package to native code (about a minute for the
loss, several for TIGAS and its gradient on two cores), so the default run checks
``cpp-aoti`` on the loss with its gradient and the error path; the TIGAS packages run with
``-m slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from example_tools import once as _once
from example_tools import require as _require
from example_tools import run as _run
from example_tools import session_folder as _session_folder
from PIL import Image

from lossport import catalog
from lossport.cli import main
from lossport.export import FORMATS, export_artifact
from lossport.io import tensorfile
from lossport.spec import Spec
from lossport.spec.flatten import flatten_outputs

pytestmark = pytest.mark.examples  # builds and runs the C++ / Node examples

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OUTPUT_ATOL = 1e-5
GRAD_RTOL = 1e-4
TIGAS = "tigas"
LOSS = "rmse"
LOSS_INPUTS = [["--random", "4,50", "--seed", "1"], ["--random", "4,50", "--seed", "2"]]


def _cmake_build(tmp_path_factory, example: str, target: str) -> List[str]:
    """``examples/<example>`` built (Release) against the libtorch of the installed torch wheel."""
    _require("cmake", "c++")
    build = _session_folder(tmp_path_factory, f"{example}-build")
    binary = build / target
    with _once(binary) as needed:
        if needed:
            _run(
                [
                    "cmake",
                    "-S",
                    EXAMPLES / example,
                    "-B",
                    build,
                    "-DCMAKE_BUILD_TYPE=Release",
                    f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
                ]
            )
            _run(["cmake", "--build", build, "-j2"])
    return [str(binary)]


@pytest.fixture(scope="module")
def cpp_runner(tmp_path_factory) -> List[str]:
    return _cmake_build(tmp_path_factory, "cpp", "lossport_run")


@pytest.fixture(scope="module")
def cpp_aoti_runner(tmp_path_factory) -> List[str]:
    return _cmake_build(tmp_path_factory, "cpp-aoti", "lossport_aoti_run")


@pytest.fixture(scope="module")
def node_runner(tmp_path_factory) -> List[str]:
    """examples/node copied to a temporary folder and installed there with ``npm ci``."""
    _require("node", "npm")
    folder = _session_folder(tmp_path_factory, "node")
    installed = folder / "installed"
    with _once(installed) as needed:
        if needed:
            for source in (EXAMPLES / "node").iterdir():
                if source.is_file():
                    shutil.copy(source, folder)
            _run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=folder,
                env={**os.environ, "ONNXRUNTIME_NODE_INSTALL": "skip"},
            )
            installed.touch()
    return ["node", str(folder / "run.js")]


@dataclass
class Runtime:
    name: str
    fmt: str
    command: List[str]


RUNTIMES = ["cpp", "node", pytest.param("cpp-aoti", marks=pytest.mark.slow)]  # see the docstring
ALL_FAST = ["cpp", "node", "cpp-aoti"]


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(request) -> Runtime:
    """An example ready to run, with the artifact format it runs."""
    fmt = {"cpp": "torchscript", "node": "onnx", "cpp-aoti": "aoti"}[request.param]
    runner = request.getfixturevalue(f"{request.param.replace('-', '_')}_runner")
    return Runtime(request.param, fmt, runner)


class Cases:
    """Artifacts and input files, made once per session on demand, and eager modules.

    Files are shared by the xdist workers: every worker builds the same module from a spec's
    config (TIGAS's weights are seeded), so an artifact exported by one worker matches the
    eager module of another.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._modules: Dict[str, torch.nn.Module] = {}

    def spec(self, name: str) -> Spec:
        return catalog.get_spec(name)

    def config(self, name: str) -> dict:
        spec = self.spec(name)
        return spec.resolve_config(dict(spec.test_config))

    def module(self, name: str) -> torch.nn.Module:
        if name not in self._modules:
            self._modules[name] = self.spec(name).instantiate(self.config(name))
        return self._modules[name]

    def artifact(self, name: str, fmt: str, with_grad: bool) -> Path:
        path = self.folder / f"{name}{'_grad' if with_grad else ''}{FORMATS[fmt].suffix}"
        with _once(path) as needed:
            if needed:  # unchecked: the tests here compare with eager themselves
                export_artifact(
                    self.spec(name),
                    fmt=fmt,
                    path=path,
                    config=self.config(name),
                    module=self.module(name),
                    with_grad=with_grad,
                )
        return path

    def preprocess(self, filename: str, *arguments) -> Path:
        """``lossport preprocess ARGUMENTS -o FILENAME``."""
        path = self.folder / filename
        with _once(path) as needed:
            if needed:
                result = CliRunner().invoke(main, ["preprocess", *map(str, arguments), "-o", str(path)])
                assert result.exit_code == 0, result.output
        return path

    def image_batch(self) -> Path:
        """Two images of different sizes, preprocessed by the TIGAS artifact's contract."""
        pixels = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
        images = [self.folder / "wide.png", self.folder / "tall.jpg"]
        with _once(images[1]) as needed:
            if needed:
                Image.fromarray(pixels).save(images[0])
                Image.fromarray(pixels.transpose(1, 0, 2)[:100]).save(images[1])
        return self.preprocess("images.bin", *images, "--model", self.artifact(TIGAS, "torchscript", False))


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> Cases:
    return Cases(_session_folder(tmp_path_factory, "artifacts"))


def eager(spec: Spec, module: torch.nn.Module, files: List[Path]) -> Dict[str, np.ndarray]:
    """Outputs and input gradients of the eager module, named as in a gradient artifact."""
    inputs = [torch.from_numpy(tensorfile.read(f)[0]) for f in files]
    for tensor, t in zip(inputs, spec.inputs):
        tensor.requires_grad_(t.differentiable)
    outputs = flatten_outputs(module(*inputs))
    objective = spec.objective(outputs[spec.grad_output_index])
    grads = torch.autograd.grad(objective, [x for x, t in zip(inputs, spec.inputs) if t.differentiable])
    names = list(spec.outputs) + [f"grad_{n}" for n in spec.differentiable_inputs]
    return {n: t.detach().numpy() for n, t in zip(names, (*outputs, *grads))}


def run_example(runtime: Runtime, artifact: Path, files: List[Path], save: Path) -> dict:
    save.mkdir(exist_ok=True)
    done = _run([*runtime.command, artifact, *files, "--save", save])
    return json.loads(done.stdout)


def check_parity(report: dict, saved: Path, expected: Dict[str, np.ndarray], grads: List[str]) -> None:
    """Compare a runtime's JSON report and its saved outputs with the eager ones."""
    for name, reference in expected.items():
        actual = tensorfile.read(saved / f"{name}.bin")[0]
        assert actual.shape == reference.shape, name
        if name in grads:
            error = np.abs(actual - reference).max() / np.abs(reference).max()
            assert error <= GRAD_RTOL, (name, error)
            assert report["grad_norm"][name] == pytest.approx(float(np.linalg.norm(actual)), rel=1e-6)
        else:
            error = np.abs(actual - reference).max()
            assert error <= OUTPUT_ATOL, (name, error)
            printed = report["outputs"][name]
            assert printed["shape"] == list(reference.shape)
            np.testing.assert_allclose(printed["values"], actual.ravel(), rtol=1e-7, atol=0)


def test_tigas_scores_match_eager(runtime, cases, tmp_path):
    spec = cases.spec(TIGAS)
    files = [cases.image_batch()]
    report = run_example(runtime, cases.artifact(TIGAS, runtime.fmt, False), files, tmp_path)
    assert report["spec"] == TIGAS and "grad_norm" not in report
    reference = {k: v for k, v in eager(spec, cases.module(TIGAS), files).items() if k in spec.outputs}
    check_parity(report, tmp_path, reference, grads=[])


@pytest.mark.parametrize(
    "runtime",
    ["cpp", pytest.param("node", marks=pytest.mark.slow), pytest.param("cpp-aoti", marks=pytest.mark.slow)],
    indirect=True,
)  # the ONNX gradient graph of TIGAS takes minutes to export, its AOTInductor package to compile
def test_tigas_gradient_matches_eager(runtime, cases, tmp_path):
    spec = cases.spec(TIGAS)
    files = [cases.image_batch()]
    report = run_example(runtime, cases.artifact(TIGAS, runtime.fmt, True), files, tmp_path)
    check_parity(report, tmp_path, eager(spec, cases.module(TIGAS), files), grads=["grad_images"])


@pytest.mark.parametrize("runtime", ALL_FAST, indirect=True)
def test_loss_with_gradient_matches_eager(runtime, cases, tmp_path):
    spec = cases.spec(LOSS)
    files = [cases.preprocess(f"{LOSS}_{i}.bin", *args) for i, args in enumerate(LOSS_INPUTS)]
    report = run_example(runtime, cases.artifact(LOSS, runtime.fmt, True), files, tmp_path)
    assert report["spec"] == LOSS
    grads = [f"grad_{n}" for n in spec.differentiable_inputs]
    check_parity(report, tmp_path, eager(spec, cases.module(LOSS), files), grads)


def test_a_batch_off_the_preprocessing_contract_warns(runtime, cases):
    batch = cases.preprocess("random_images.bin", "--random", "1,3,64,64")
    done = subprocess.run(
        [*runtime.command, cases.artifact(TIGAS, runtime.fmt, False), batch],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("warning:") and len(done.stderr.strip().splitlines()) == 1
    assert "is 64x64" in done.stderr and "256x256" in done.stderr
    assert json.loads(done.stdout)["outputs"]["score"]["shape"] == [1, 1]


@pytest.mark.parametrize("runtime", ALL_FAST, indirect=True)
def test_wrong_input_count_is_a_one_line_error(runtime, cases):
    files = [cases.preprocess(f"{LOSS}_0.bin", *LOSS_INPUTS[0])]
    done = subprocess.run(
        [*runtime.command, cases.artifact(LOSS, runtime.fmt, True), *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: the artifact takes 2 input file(s)")
    assert len(done.stderr.strip().splitlines()) == 1
