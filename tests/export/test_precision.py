"""``--precision fp16|int8`` ONNX artifacts: what the graphs hold, what the metadata records
(precision, the calibration set's digest), the calibration sets (folder, cap, built-in set and
its provenance), the tolerance class each precision is judged by, and every refused input."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from cli_runner import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from tiny_model import TINY

from lossport import catalog
from lossport.artifact.devices import DeviceUnavailable
from lossport.artifact.metadata import CalibrationRecord, parse_metadata, read_artifact_info
from lossport.artifact.runtime import OnnxArtifact
from lossport.errors import ArtifactError, ExportError
from lossport.export import ExportRequest, export_artifact
from lossport.export import calibration as calibration_module
from lossport.export.calibration import BUILTIN, set_digest
from lossport.export.onnx.precision import _sort_nodes
from lossport.spec.preprocess import Preprocess
from lossport.validation.export_check import verify_export
from lossport.validation.policy import TOLERANCES
from lossport.validation.suite import validate_artifact

SMALL_TIGAS = ["--weights", "random", "--set", "base_channels=8", "--set", "feature_dim=64"]
# the tiny scorer with a preprocessing contract: an image model int8 can calibrate
SCORER = dataclasses.replace(
    TINY,
    name="tiny_contract_scorer",
    metadata=lambda config: {"preprocess": Preprocess.default(32).to_json()},
)


@pytest.fixture
def scorer():
    with catalog.registered(SCORER):
        yield SCORER


def _digest_by_hand(paths) -> str:
    """The set digest from its definition: sha256 over the sorted raw sha256 of each file."""
    return hashlib.sha256(
        b"".join(sorted(hashlib.sha256(Path(p).read_bytes()).digest() for p in paths))
    ).hexdigest()


def _images(folder: Path, count: int, seed: int = 0) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"img_{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _ops(path: Path) -> set:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_int8_is_a_qdq_graph_recording_the_built_in_calibration_set(scorer, tmp_path):
    result = export_artifact(
        scorer, fmt="onnx", path=tmp_path / "s.onnx", precision="int8", verify=verify_export
    )
    assert result.precision == "int8" and result.checks and all(c.passed for c in result.checks)
    model = onnx.load(str(result.path))
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(result.path)
    assert any(t.data_type == onnx.TensorProto.INT8 for t in model.graph.initializer)  # weights
    info = read_artifact_info(result.path)
    builtin = sorted(BUILTIN.glob("*.jpg"))
    assert info.precision == "int8"
    assert info.calibration == CalibrationRecord(len(builtin), _digest_by_hand(builtin), True)
    assert len(builtin) == 36
    scores = OnnxArtifact(result.path).run({"images": np.full((2, 3, 24, 20), 0.5, np.float32)})["score"]
    assert scores.shape == (2, 1) and np.isfinite(scores).all()


def test_fp16_is_float16_inside_with_float32_inputs_and_outputs(scorer, tmp_path):
    result = export_artifact(
        scorer, fmt="onnx", path=tmp_path / "s.onnx", precision="fp16", verify=verify_export
    )
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model, full_check=True)
    edges = list(model.graph.input) + list(model.graph.output)
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in edges)
    weights = [t for t in model.graph.initializer if len(t.dims) == 4]  # the conv weight
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    info = read_artifact_info(result.path)
    assert (info.precision, info.calibration) == ("fp16", None)


def test_validate_artifact_judges_each_precision_by_its_class(scorer, tmp_path):
    for precision in ("fp32", "fp16", "int8"):
        path = export_artifact(
            scorer, fmt="onnx", path=tmp_path / f"{precision}.onnx", precision=precision
        ).path
        report = validate_artifact(path)
        assert report.tolerance == TOLERANCES["default" if precision == "fp32" else precision]
        assert report.results and all(r.passed for r in report.results)


def test_calibrate_folder_is_recorded_by_content(scorer, tmp_path):
    paths = _images(tmp_path / "cal", 5)
    result = export_artifact(
        scorer, fmt="onnx", path=tmp_path / "s.onnx", precision="int8", calibrate=tmp_path / "cal"
    )
    assert read_artifact_info(result.path).calibration == CalibrationRecord(5, _digest_by_hand(paths), False)


def test_a_folder_above_the_cap_gives_evenly_spaced_images(scorer, tmp_path, monkeypatch):
    _images(tmp_path / "cal", 7)
    monkeypatch.setattr(calibration_module, "MAX_IMAGES", 3)
    chosen = calibration_module.calibration_set(
        scorer,
        scorer.resolve_config(),
        tmp_path / "cal",
        precision="int8",
        dynamic=["batch", "height", "width"],
        with_grad=False,
    )
    assert [p.name for p in chosen.paths] == ["img_00.png", "img_02.png", "img_04.png"]
    batches = list(chosen.batches())
    assert [b.shape for b in batches] == [(3, 3, 32, 32)] and batches[0].dtype == np.float32


def test_the_set_digest_ignores_names_and_order_not_content(tmp_path):
    paths = _images(tmp_path / "a", 3)
    renamed = [shutil.copy(p, tmp_path / f"z{i}.png") for i, p in enumerate(reversed(paths))]
    assert set_digest(paths) == set_digest([Path(p) for p in renamed]) == _digest_by_hand(paths)
    changed = tmp_path / "changed.png"
    changed.write_bytes(paths[0].read_bytes() + b"\0")
    assert set_digest([changed, *paths[1:]]) != set_digest(paths)


def test_the_built_in_set_is_what_its_generator_makes(tmp_path):
    """Provenance: the shipped files are tests/export/make_calibration_set.py's output (pixels
    within JPEG decoder differences across libjpeg builds)."""
    pytest.importorskip("skimage")
    from make_calibration_set import make_calibration_set

    made = {p.name: p for p in make_calibration_set(tmp_path / "made")}
    shipped = {p.name: p for p in BUILTIN.glob("*.jpg")}
    assert made.keys() == shipped.keys()
    for name, path in shipped.items():
        a = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        b = np.asarray(Image.open(made[name]).convert("RGB"), dtype=np.int16)
        assert a.shape == (256, 256, 3) and np.abs(a - b).mean() < 1.0, name


REFUSED = [
    (["export", "loss", "focal", "--precision", "int8"], "focal takes no image batch"),
    (["export", "tigas", *SMALL_TIGAS, "--precision", "int8", "--with-grad"], "quantized gradient graph"),
    (["export", "tigas", *SMALL_TIGAS, "--precision", "int8", "--calibrate", "absent"], "no such folder"),
    (["export", "tigas", *SMALL_TIGAS, "--precision", "int8", "--calibrate", "empty"], "no image files"),
    (["export", "tigas", *SMALL_TIGAS, "--precision", "fp16", "--calibrate", "empty"], "drop it for fp16"),
    (["export", "tigas", *SMALL_TIGAS, "--precision", "int8", "--dynamic", "batch"], "fixes height=64"),
    (["export", "tigas", *SMALL_TIGAS, "--precision", "fp16", "--format", "torchscript"], "can be fp32"),
    (["export", "spec", "tiny_scorer", "--precision", "int8"], "records no NCHW"),
]


@pytest.mark.parametrize(("args", "reason"), REFUSED, ids=[r for _, r in REFUSED])
def test_refused_with_one_line_and_nothing_written(args, reason, tmp_path, tiny_spec):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    result = run_cli(
        *args, "-o", tmp_path / "out.onnx" if "torchscript" not in args else "out.pt", cwd=tmp_path
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert reason in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_a_graph_the_cpu_cannot_run_is_named_not_obscure(scorer, tmp_path):
    """A reduced-precision graph ORT's CPU provider cannot load is a skip with the reason when
    it is opened, and the export check says it cannot check it here."""
    path = tmp_path / "s.onnx"
    export_artifact(scorer, fmt="onnx", path=path, precision="fp16")
    model = onnx.load(str(path))
    model.opset_import.add(domain="lossport.test", version=1)
    last = model.graph.output[0].name
    model.graph.node.append(onnx.helper.make_node("NoKernel", [last], ["extra"], domain="lossport.test"))
    onnx.save(model, str(path))
    with pytest.raises(DeviceUnavailable, match="CPU provider cannot run this fp16 graph"):
        OnnxArtifact(path)
    config = scorer.resolve_config()
    request = ExportRequest(
        path, "onnx", "fp16", scorer, config, scorer.instantiate(config), ["batch", "height", "width"], False
    )
    with pytest.raises(ExportError, match="fp16 artifact cannot be checked here"):
        verify_export(request)


def test_nodes_are_sorted_topologically():
    make = onnx.helper.make_node
    graph = onnx.helper.make_graph(
        [make("Relu", ["b"], ["c"]), make("Neg", ["a"], ["b"]), make("Abs", ["a"], ["d"])],
        "g",
        [onnx.helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [2]) for n in ("c", "d")],
    )
    _sort_nodes(graph)
    assert [n.op_type for n in graph.node] == ["Neg", "Relu", "Abs"]
    onnx.checker.check_model(onnx.helper.make_model(graph), full_check=True)


VALID = {
    "spec": "tigas",
    "kind": "model",
    "format": "onnx",
    "config": "{}",
    "inputs": '[{"name": "images"}]',
    "outputs": '["score", "logits"]',
    "dynamic_axes": "[]",
    "with_grad": "false",
}
RECORD = '{"images": 36, "sha256": "' + "ab" * 32 + '", "builtin": true}'


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"precision": "fp64"}, "precision"),
        ({"precision": "int8"}, "calibration"),
        ({"precision": "fp16", "calibration": RECORD}, "calibration"),
        ({"precision": "int8", "calibration": RECORD.replace("36", "0")}, "calibration"),
        ({"precision": "int8", "calibration": RECORD.replace("ab", "AB", 1)}, "calibration"),
    ],
)
def test_metadata_refuses_inconsistent_precision_records(extra, problem):
    with pytest.raises(ArtifactError, match=f"lossport.{problem} metadata"):
        parse_metadata({**VALID, **extra}, "forged.onnx")


def test_metadata_reads_precision_and_calibration():
    assert parse_metadata(VALID, "old.onnx").precision == "fp32"  # written before --precision
    info = parse_metadata({**VALID, "precision": "int8", "calibration": RECORD}, "a.onnx")
    assert info.calibration == CalibrationRecord(36, "ab" * 32, True)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=70)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
record_like = st.fixed_dictionaries(
    {
        "images": st.integers(-5, 2**21),
        "sha256": st.text("0123456789abcdefABCDEF", max_size=66),
        "builtin": json_values,
    }
)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(json_values, record_like))
def test_calibration_records_accept_only_their_schema(data):
    record = CalibrationRecord.from_json(data)
    if record is not None:
        assert 1 <= record.images <= 1 << 20 and isinstance(record.builtin, bool)
        assert len(record.sha256) == 64 and set(record.sha256) <= set("0123456789abcdef")
        assert CalibrationRecord.from_json(record.to_json()) == record
