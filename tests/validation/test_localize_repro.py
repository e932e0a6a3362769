"""Side by side (``--nodes``), minimal repro bundles (``--repro``) and the HTML report
(``--html``), on an artifact with an injected export fault (aten.erf translated as Tanh), a
fault only in the gradient graph, and a failure that needs more than one node to show."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from click.testing import CliRunner
from onnx import helper
from validation_faults import erf_spec, tanh_for, wrong_translation

from lossport import catalog
from lossport.cli import main
from lossport.export import export_artifact
from lossport.export.onnx import translate
from lossport.validation.compare import BUDGET_BINS
from lossport.validation.localize import NodeRow, SideBySide
from lossport.validation.policy import TOLERANCES
from lossport.validation.repro import minimal_repro, write_bundles
from lossport.validation.suite import ValidationOptions, validate_spec


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """One CLI run on an artifact exported with the erf->tanh fault, writing every report."""
    folder = tmp_path_factory.mktemp("faulty")
    spec = erf_spec()
    with catalog.registered(spec), pytest.MonkeyPatch.context() as patch:
        patch.setattr(translate, "op_translations", wrong_translation(torch.ops.aten.erf.default, tanh_for))
        artifact = export_artifact(spec, fmt="onnx", with_grad=True, path=folder / "erf.onnx").path
        patch.undo()
        result = CliRunner().invoke(
            main,
            [
                "validate",
                "artifact",
                str(artifact),
                "--backends",
                "ort-cpu,onnx-ref",
                "--nodes",
                str(folder / "nodes.csv"),
                "--repro",
                str(folder / "repro"),
                "--html",
                str(folder / "report.html"),
                "--json",
                str(folder / "report.json"),
            ],
        )
        second = CliRunner().invoke(
            main, ["validate", "artifact", str(artifact), "--nodes", str(folder / "nodes.json")]
        )
    return folder, result, second


def test_the_run_fails_and_names_the_first_divergence(faulty_run):
    _, result, _ = faulty_run
    assert result.exit_code == 1, result.output
    assert (
        "localized erf_sum / ort-cpu: shape0:batch=5: first divergence at Tanh node output 'erf'"
        in result.output
    )
    assert "repro: wrote" in result.output and "nodes: " in result.output


def test_nodes_csv_pairs_every_node_of_the_forward_and_gradient_graphs(faulty_run):
    folder, _, _ = faulty_run
    with (folder / "nodes.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["backend"] for r in rows} == {"ort-cpu", "onnx-ref"}
    ort = [r for r in rows if r["backend"] == "ort-cpu"]
    first = next(r for r in ort if r["passed"] == "False")
    assert (first["value"], first["fx_op"], first["onnx_op"], first["onnx_node"]) == (
        "erf",
        "aten.erf.default",
        "Tanh",
        "node_erf",
    )
    assert first["shape"] == first["reference_shape"] == "[5]" and float(first["budget"]) > 1
    assert {r["graph"] for r in ort} == {"forward", "gradient"}
    # erf's gradient (2/sqrt(pi) exp(-x^2)) does not use erf's value: the gradient graph agrees
    grad = next(r for r in ort if r["value"] == "grad_prediction")
    assert grad["graph"] == "gradient" and grad["passed"] == "True" and float(grad["max_abs"]) < 1e-5
    for row in ort:
        counts = [int(row[f"hist {b}"]) for b in BUDGET_BINS]
        assert sum(counts) == int(np.prod(json.loads(row["shape"]) or [1]))
    assert [int(r["index"]) for r in ort] == list(range(1, len(ort) + 1))


def test_nodes_json(faulty_run):
    folder, _, second = faulty_run
    assert second.exit_code == 1
    data = json.loads((folder / "nodes.json").read_text())
    assert data["bins"] == list(BUDGET_BINS)
    rows = data["nodes"]
    assert rows and {r["backend"] for r in rows} == {"ort-cpu"}
    assert set(rows[0]) >= {
        "fx_node",
        "fx_op",
        "onnx_node",
        "onnx_op",
        "shape",
        "max_abs",
        "max_rel",
        "histogram",
    }
    assert set(rows[0]["histogram"]) == set(BUDGET_BINS)


def _readme_command(folder: Path) -> str:
    (line,) = [x for x in (folder / "README.md").read_text().splitlines() if x.startswith("python -c ")]
    return line


def _run_without_lossport(command: str, folder: Path) -> subprocess.CompletedProcess:
    """The README's command, with ``import lossport`` made impossible."""
    code = command[len('python -c "') : -1]
    return subprocess.run(
        [sys.executable, "-c", "import sys\nsys.modules['lossport'] = None\n" + code],
        cwd=folder,
        capture_output=True,
        text=True,
    )


def test_the_repro_bundle_reproduces_with_onnx_runtime_alone(faulty_run):
    folder, _, _ = faulty_run
    bundle = folder / "repro"
    assert sorted(p.name for p in bundle.iterdir()) == ["README.md", "model.onnx", "test_data_set_0"]
    assert sorted(p.name for p in (bundle / "test_data_set_0").iterdir()) == ["input_0.pb", "output_0.pb"]
    model = onnx.load(str(bundle / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Tanh"]  # the smallest failing subgraph
    readme = (bundle / "README.md").read_text()
    for needed in ("onnxruntime " + onnxruntime.__version__, "onnx " + onnx.__version__, "torch ", "Tanh"):
        assert needed in readme
    command = _readme_command(bundle)
    assert "lossport" not in command
    done = _run_without_lossport(command, bundle)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("REPRODUCED")
    # the command judges: with the right op in the subgraph it no longer reproduces
    model.graph.node[0].op_type = "Erf"
    onnx.save(model, str(bundle / "model.onnx"))
    try:
        fixed = _run_without_lossport(command, bundle)
        assert fixed.returncode == 0 and fixed.stdout.startswith("NOT REPRODUCED"), (
            fixed.stdout + fixed.stderr
        )
    finally:
        model.graph.node[0].op_type = "Tanh"
        onnx.save(model, str(bundle / "model.onnx"))


def test_the_json_report_lists_the_localization_and_its_repro(faulty_run):
    folder, _, _ = faulty_run
    spec = json.loads((folder / "report.json").read_text())["specs"][0]
    found = {f["backend"]: f for f in spec["localizations"]}
    assert found["ort-cpu"]["divergence"]["value"] == "erf"
    assert found["ort-cpu"]["repro"]["op_types"] == ["Tanh"]
    assert found["onnx-ref"]["repro"] is None and "not ORT" in found["onnx-ref"]["repro_note"]


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.attributes = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [value or "" for _, value in attrs]

    def handle_data(self, data):
        self.text.append(data)


def test_the_html_report_is_self_contained_and_says_everything(faulty_run):
    folder, _, _ = faulty_run
    text = (folder / "report.html").read_text()
    page = _Page()
    page.feed(text)
    body = " ".join(page.text)
    assert not {"script", "link", "img", "iframe"} & set(page.tags)
    assert not [a for a in page.attributes if "://" in a or a.startswith("//")]
    assert "url(" not in text and "@import" not in text
    assert page.tags.count("svg") >= 4  # budget bars and histograms, inline
    assert "lossport validate: FAIL" in body
    assert "erf_sum" in body and "FAIL 2/2" in body and "export" in body  # summary + arbiter
    assert 'class="fail"' in text  # coloured by budget fraction
    assert "aten.erf.default" in body and "Tanh" in body and "node_erf" in body  # node table
    assert "first divergence at Tanh node output 'erf'" in body
    assert "REPRODUCED" in body and "test_data_set_0" in body  # the repro command
    assert "min --atol" in body and "of budget" in body


def test_a_fault_in_the_gradient_graph_only(erf_sum, monkeypatch, tmp_path):
    """aten.exp appears only in erf's backward: outputs pass, the gradient fails, and the
    divergence and the bundle are in the gradient graph."""
    monkeypatch.setattr(translate, "op_translations", wrong_translation(torch.ops.aten.exp.default, tanh_for))
    report = validate_spec(
        erf_sum, options=ValidationOptions(backends=("ort-cpu",), localize=True, nodes=True, repro=True)
    )
    failed = {c.output for r in report.results for c in r.comparisons if not c.passed}
    assert failed == {"grad_prediction"}
    (found,) = report.localizations
    assert found.divergence.value == "exp" and found.divergence.op_type == "Tanh"
    row = next(n for n in found.nodes if n.value == "exp")
    assert row.graph == "gradient" and row.fx_op == "aten.exp.default" and not row.passed
    assert all(n.passed for n in found.nodes if n.graph == "forward")
    assert found.repro is not None and found.repro.op_types == ["Tanh"]
    (written,) = write_bundles([found.repro], tmp_path / "b")
    done = _run_without_lossport(_readme_command(written), written)
    assert done.returncode == 1 and done.stdout.startswith("REPRODUCED")


class _NeedsContext:
    """An ORT backend whose failure shows only in subgraphs of at least ``needed`` nodes (as a
    fault that needs fusion across nodes would), on the last node's output."""

    name, device = "ort-cpu", "cpu"
    path = Path("chain.onnx")

    def __init__(self, needed):
        self.needed = needed
        self.sizes = []

    def run_model(self, model, feeds):
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        values = dict(
            zip(
                names,
                session.run(
                    names, {k: v for k, v in feeds.items() if k in {i.name for i in session.get_inputs()}}
                ),
            )
        )
        self.sizes.append(len(model.graph.node))
        if len(model.graph.node) >= self.needed:
            values = {k: v + 1.0 for k, v in values.items()}
        return values


def _chain(length):
    """x -> Sin -> Sin -> ... (``length`` nodes, values v1 .. vN), and every value for x = 0.5."""
    nodes = [
        helper.make_node("Sin", [f"v{i}" if i else "x"], [f"v{i + 1}"], name=f"n{i + 1}")
        for i in range(length)
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info(f"v{length}", onnx.TensorProto.FLOAT, [3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    values = {"x": np.full(3, 0.5, np.float32)}
    for i in range(length):
        values[f"v{i + 1}"] = np.sin(values[f"v{i}" if i else "x"]).astype(np.float32)
    return model, values


def _row(i, fx_target="", max_abs=0.0, max_rel=0.0, budget=0.0, passed=True):
    """The side-by-side row of chain value ``v{i}``."""
    return NodeRow(
        i,
        "forward",
        f"v{i}",
        f"v{i}",
        fx_target,
        f"n{i}",
        "Sin",
        (3,),
        (3,),
        "float32",
        max_abs,
        max_rel,
        budget,
        passed,
        (),
    )


def _side(model, rows, values, actual=None):
    """Side-by-side of a chain: reference ``values``, runtime ``actual`` (default: the same)."""
    reference = {k: v for k, v in values.items() if k != "x"}
    return SideBySide(model, rows, reference, reference if actual is None else actual, {"x": values["x"]})


@pytest.mark.parametrize("needed", [1, 3, 6, 8])
def test_bisection_finds_the_smallest_subgraph_that_still_fails(needed):
    length = 8
    model, values = _chain(length)
    target = f"v{length}"
    rows = [_row(i, "aten.sin.default") for i in range(1, length)]
    rows.append(_row(length, "aten.sin.default", max_abs=1.0, max_rel=1.0, budget=9.0, passed=False))
    actual = {k: v + (1.0 if k == target else 0.0) for k, v in values.items() if k != "x"}
    side = _side(model, rows, values, actual)
    backend = _NeedsContext(needed)
    bundle, note = minimal_repro(side, backend, TOLERANCES["default"], spec="chain", case="c", seed=0)
    assert bundle is not None, note
    assert len(bundle.op_types) == needed
    sub = onnx.load_from_string(bundle.model)
    fed = [i.name for i in sub.graph.input]
    assert fed == ([f"v{length - needed}"] if needed < length else ["x"])
    assert max(backend.sizes) <= length and len(backend.sizes) <= 2 + int(np.ceil(np.log2(length)))


def test_no_bundle_when_no_subgraph_fails():
    model, values = _chain(4)
    side = _side(model, [_row(i, passed=i < 4) for i in range(1, 5)], values)
    bundle, note = minimal_repro(
        side, _NeedsContext(99), TOLERANCES["default"], spec="chain", case="c", seed=0
    )
    assert bundle is None and "does not fail when its subgraph runs on its own" in note


def test_several_bundles_go_in_one_subfolder_each(tmp_path):
    model, values = _chain(3)
    side = _side(model, [_row(i, passed=i < 3) for i in range(1, 4)], values)
    bundle, _ = minimal_repro(side, _NeedsContext(1), TOLERANCES["default"], spec="s", case="c", seed=0)
    labelled = [replace(bundle, spec="tigas[mode=fast]"), replace(bundle, spec="tigas[mode=fast]"), bundle]
    written = write_bundles(labelled, tmp_path / "out")
    assert [p.name for p in written] == [
        "tigas_mode=fast_-ort-cpu",
        "tigas_mode=fast_-ort-cpu-2",
        "s-ort-cpu",
    ]
    for folder in written:
        assert (folder / "model.onnx").is_file() and (folder / "test_data_set_0" / "input_0.pb").is_file()
        assert folder.parent == tmp_path / "out"
        assert "# Minimal repro: " in (folder / "README.md").read_text()
