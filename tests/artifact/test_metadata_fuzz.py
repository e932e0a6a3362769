"""Artifact metadata is untrusted: property-based fuzzing of the readers and the schema.

Whatever bytes or metadata values an artifact holds, reading and checking it either succeeds
with values of the schema's types, or raises :class:`ArtifactError` (one line), and nothing it
names is opened, run, or sized by it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossport.artifact.metadata import (
    MAX_VALUE_BYTES,
    ArtifactInfo,
    parse_metadata,
    read_artifact_info,
    read_metadata,
)
from lossport.errors import ArtifactError, LossportError
from lossport.validation.suite import ValidationOptions, validate_artifact

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
KEYS = [
    "spec",
    "kind",
    "format",
    "config",
    "inputs",
    "outputs",
    "dynamic_axes",
    "with_grad",
    "opset",
    "weights",
    "preprocess",
    "gradient",
    "version",
    "precision",
    "calibration",
]
VALID = {
    "spec": "rmse",
    "kind": "loss",
    "format": "onnx",
    "config": '{"eps": 1e-06}',
    "inputs": '[{"name": "prediction"}, {"name": "target"}]',
    "outputs": '["loss"]',
    "dynamic_axes": '["batch", "time"]',
    "with_grad": "false",
    "opset": "18",
}

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
hostile_strings = st.one_of(
    st.text(max_size=60),
    json_values.map(lambda v: json.dumps(v, allow_nan=True)),
    st.sampled_from(
        [
            "[" * 100_000,
            '{"a":' * 5000,
            "NaN",
            "Infinity",
            "1" * 5001,
            "1e999",
            '{"base_channels": 4096, "feature_dim": 65536}',
            '{"checkpoint": "/etc/passwd"}',
            '{"size": [100000, 100000]}',
            '{"file": "../../x", "sha256": "00"}',
        ]
    ),
)


def _check_info(info: ArtifactInfo) -> None:
    assert isinstance(info.spec, str) and info.kind in ("loss", "model")
    assert info.format in ("onnx", "torchscript") and isinstance(info.with_grad, bool)
    assert isinstance(info.config, dict) and all(isinstance(n, str) for n in info.outputs)
    assert info.opset is None or type(info.opset) is int
    assert info.precision in ("fp32", "fp16", "bf16", "int8")
    assert (info.calibration is not None) == (info.precision == "int8")


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(KEYS), hostile_strings, max_size=4),
    dropped=st.sets(st.sampled_from(KEYS), max_size=2),
)
def test_parse_accepts_only_the_schema(changes, dropped):
    meta = {k: v for k, v in {**VALID, **changes}.items() if k not in dropped}
    try:
        info = parse_metadata(meta, "forged.onnx")
    except ArtifactError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("forged.onnx: ")
        assert len(str(exc)) < 600
        return
    _check_info(info)


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_are_refused_as_onnx(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "model.onnx"
    path.write_bytes(data)
    with pytest.raises(ArtifactError):
        read_metadata(path)


@FUZZ
@given(
    entries=st.dictionaries(
        st.sampled_from(["lossport." + k for k in KEYS] + ["other"]), st.binary(max_size=80), max_size=6
    )
)
def test_forged_torchscript_archives_are_read_or_refused(tmp_path_factory, entries):
    path = tmp_path_factory.mktemp("zip") / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(f"model/extra/{name}", data)
    try:
        info = read_artifact_info(path)
    except ArtifactError:
        return
    _check_info(info)


def test_oversized_metadata_value_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model/extra/lossport.spec", "rmse")
        archive.writestr("model/extra/lossport.config", "0" * (MAX_VALUE_BYTES + 1))  # compresses to ~1 kB
    with pytest.raises(ArtifactError, match="more than"):
        read_metadata(path)


@pytest.fixture(scope="module")
def rmse_onnx(tmp_path_factory):
    from lossport import catalog
    from lossport.export import export_artifact

    path = tmp_path_factory.mktemp("rmse") / "rmse.onnx"
    return export_artifact(catalog.get_spec("rmse"), fmt="onnx", path=path).path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(KEYS), hostile_strings, min_size=1, max_size=3))
def test_validating_a_forged_artifact_is_a_clean_error_or_a_verdict(tmp_path_factory, rmse_onnx, changes):
    model = onnx.load(str(rmse_onnx))
    props = {p.key: p.value for p in model.metadata_props}
    props.update({f"lossport.{k}": v for k, v in changes.items()})
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    path = tmp_path_factory.mktemp("forged") / "forged.onnx"
    onnx.save(model, str(path))
    try:
        report = validate_artifact(Path(path), ValidationOptions(backends=("ort-cpu",)))
    except LossportError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(report.passed, bool)
