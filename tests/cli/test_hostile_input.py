"""Hostile and careless command lines: one row per defect found by probing the CLI.

Every row must end with exit code 2 (bad usage or input), one ``error:`` line, no traceback, and
nothing new on disk; a forged artifact must never run code from a file it names, nor make
lossport allocate what it claims.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import onnx
import pytest
import torch
from cli_runner import run_cli as invoke
from click.testing import CliRunner

from lossport.cli import main

ROOT = Path(__file__).resolve().parents[2]


def files_in(folder: Path):
    return sorted(p.name for p in folder.rglob("*"))


class Evil:
    """Unpickling this creates the marker file: proof that code from a file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("artifacts")
    result = CliRunner().invoke(main, ["export", "loss", "rmse", "-o", str(folder / "rmse.onnx")])
    assert result.exit_code == 0, result.output
    return folder / "rmse.onnx"


@pytest.fixture(scope="module")
def tigas_pt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tigas")
    path = folder / "tigas.pt"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "tigas",
            "--weights",
            "random",
            "--format",
            "torchscript",
            "--no-check",
            "--set",
            "base_channels=8",
            "--set",
            "feature_dim=64",
            "--set",
            "num_attention_heads=4",
            "-o",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    return path


def forge_onnx(source: Path, target: Path, **changes: str) -> Path:
    """``source`` with some ``lossport.*`` metadata replaced (values as given)."""
    model = onnx.load(str(source))
    props = {p.key: p.value for p in model.metadata_props}
    props.update({f"lossport.{k}": v for k, v in changes.items()})
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(target))
    return target


def forge_torchscript(source: Path, target: Path, replace: dict) -> Path:
    """``source`` with archive members whose name ends in a key of ``replace`` rewritten."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            for suffix, value in replace.items():
                if info.filename.endswith(suffix):
                    data = value
            new.writestr(info, data)
    return target


# -- the table: (id, arguments, expected message); {placeholders} are filled per test -----------

ROWS = [
    ("opset 99", ["export", "loss", "rmse", "--opset", "99", "-o", "r.onnx"], "--opset 99 is above"),
    ("NaN setting", ["export", "loss", "focal", "--set", "gamma=NaN", "-o", "f.onnx"], "not a finite number"),
    (
        "Infinity setting",
        ["export", "loss", "focal", "--set", "gamma=Infinity", "-o", "f.onnx"],
        "not a finite number",
    ),
    (
        "huge img-size",
        ["export", "tigas", "--weights", "random", "--img-size", "100000", "-o", "t.onnx"],
        "img_size=100000 is outside",
    ),
    ("output without suffix", ["export", "loss", "rmse", "-o", "noext"], "name it noext.onnx"),
    (
        "wrong suffix",
        ["export", "loss", "rmse", "--format", "torchscript", "-o", "r.onnx"],
        "written to a .pt file",
    ),
    (
        "trust back door",
        ["export", "tigas", "--weights", "random", "--set", "trust_checkpoint=true", "-o", "t.onnx"],
        "no setting 'trust_checkpoint'",
    ),
    (
        "checkpoint back door",
        ["export", "tigas", "--weights", "random", "--set", "checkpoint=x.pt", "-o", "t.onnx"],
        "no setting 'checkpoint'",
    ),
    ("dynamic comma", ["export", "loss", "rmse", "--dynamic", ",", "-o", "r.onnx"], "empty axis name"),
    ("negative atol", ["validate", "losses", "rmse", "--atol", "-1"], "finite number >= 0"),
    ("nan atol", ["validate", "losses", "rmse", "--rtol", "nan"], "finite number >= 0"),
    (
        "json report folder missing",
        ["validate", "losses", "rmse", "--json", "no/such/dir/r.json"],
        "does not exist",
    ),
    ("junit report is a folder", ["validate", "losses", "rmse", "--junit", "."], "is a directory"),
    (
        "score img-size 0",
        ["score", "{image}", "--checkpoint", "{checkpoint}", "--img-size", "0"],
        "--img-size",
    ),
    (
        "score bogus device",
        ["score", "{image}", "--checkpoint", "{checkpoint}", "--device", "bogus"],
        "not a torch device",
    ),
    (
        "score cuda without GPU",
        ["score", "{image}", "--checkpoint", "{checkpoint}", "--device", "cuda:7"],
        "no such CUDA device",
    ),
    ("score with a loss", ["score", "{image}", "--model", "{loss_pt}"], "not a TIGAS scorer"),
    ("export losses into a file", ["export", "losses", "--all", "-o", "{afile}/sub"], "a file is in the way"),
    (
        "overwrite own checkpoint",
        [
            "export",
            "tigas",
            "--checkpoint",
            "{checkpoint_copy}",
            "--format",
            "torchscript",
            "--no-check",
            "-o",
            "{checkpoint_copy}",
        ],
        "the file the export reads",
    ),
    (
        "untrusted checkpoint",
        ["export", "tigas", "--checkpoint", "{evil}", "-o", "t.onnx"],
        "--trust-checkpoint",
    ),
    ("validate forged config", ["validate", "artifact", "{forged_config}"], "recorded config is invalid"),
    ("validate forged sizes", ["validate", "artifact", "{forged_sizes}"], "is outside"),
    (
        "validate corrupt metadata",
        ["validate", "artifact", "{corrupt_metadata}"],
        "corrupt lossport.config metadata",
    ),
    (
        "validate corrupt TorchScript code",
        ["validate", "artifact", "{corrupt_code}"],
        "not a loadable TorchScript archive",
    ),
    ("validate forged ONNX graph", ["validate", "artifact", "{forged_graph}"], "not a loadable ONNX model"),
    (
        "validate external data outside",
        ["validate", "artifact", "{external_data}"],
        "not a loadable ONNX model",
    ),
    (
        "validate without its checkpoint",
        ["validate", "artifact", "{from_checkpoint}"],
        "pass that file as --checkpoint",
    ),
    (
        "validate with another checkpoint",
        ["validate", "artifact", "{from_checkpoint}", "--checkpoint", "{checkpoint_full}"],
        "is not the checkpoint",
    ),
    ("seed overflow", ["validate", "losses", "rmse", "--seed", "99999999999999999999999"], "--seed"),
    ("zip bomb", ["validate", "artifact", "{zip_bomb}"], "unpacks to"),
    ("unknown backend", ["validate", "losses", "rmse", "--backends", "ort-gpu"], "unknown backend ort-gpu"),
    (
        "debug usage error",
        ["--debug", "export", "loss", "rmse", "--set", "nope=1", "-o", "r.onnx"],
        "no setting 'nope'",
    ),
]


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory, tigas_pt):
    """The TorchScript artifact plus five members that declare 4 GiB each (a zip bomb's
    directory; the check reads the directory, so the bytes behind it need not be real)."""
    bomb = tmp_path_factory.mktemp("bomb") / "bomb.pt"
    with zipfile.ZipFile(tigas_pt) as old, zipfile.ZipFile(bomb, "w") as new:
        for info in old.infolist():
            new.writestr(info, old.read(info))
        for index in range(5):
            new.writestr(f"tigas/data/huge{index}", b"0")
    raw = bytearray(bomb.read_bytes())
    for index in range(5):
        name = f"tigas/data/huge{index}".encode()
        entry = raw.rindex(b"PK\x01\x02", 0, raw.rindex(name))  # its central-directory record
        raw[entry + 24 : entry + 28] = struct.pack("<I", 0xFFFFFFF0)  # uncompressed size
    bomb.write_bytes(bytes(raw))
    return bomb


@pytest.fixture
def placeholders(tmp_path, tigas_fixtures, small_onnx, tigas_pt, zip_bomb):
    from PIL import Image

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.new("RGB", (40, 40), (10, 200, 30)).save(inputs / "image.png")
    (inputs / "afile").write_text("a file, not a folder")
    marker = tmp_path / "pwned"
    torch.save({"model_state_dict": {}, "payload": Evil(marker)}, inputs / "evil.pt")
    checkpoint_copy = inputs / "copy.pt"
    checkpoint_copy.write_bytes((tigas_fixtures / "tigas_fast_small.pt").read_bytes())
    loss_pt = inputs / "loss.pt"
    assert (
        CliRunner()
        .invoke(main, ["export", "loss", "rmse", "--format", "torchscript", "-o", str(loss_pt)])
        .exit_code
        == 0
    )
    from_checkpoint = inputs / "from_ck.onnx"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "tigas",
            "--checkpoint",
            str(tigas_fixtures / "tigas_fast_small.pt"),
            "--set",
            "num_attention_heads=4",
            "--no-check",
            "-o",
            str(from_checkpoint),
        ],
    )
    assert result.exit_code == 0, result.output
    forged_graph = inputs / "forged_graph.onnx"
    model = onnx.load(str(small_onnx))
    model.graph.node[0].op_type = "NoSuchOp"
    onnx.save(model, str(forged_graph))
    external = inputs / "external.onnx"
    model = onnx.load(str(small_onnx))
    constant = next(n for n in model.graph.node if n.op_type == "Constant")
    value = onnx.helper.get_attribute_value(constant.attribute[0])
    tensor = onnx.TensorProto(name=constant.output[0], data_type=value.data_type, dims=value.dims)
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../../../../etc/passwd")
    model.graph.node.remove(constant)
    model.graph.initializer.append(tensor)  # the constant's value now "lives" in /etc/passwd
    onnx.save(model, str(external))
    values = {
        "zip_bomb": zip_bomb,
        "image": inputs / "image.png",
        "checkpoint": tigas_fixtures / "tigas_fast_small.pt",
        "checkpoint_full": tigas_fixtures / "tigas_full_small.pt",
        "checkpoint_copy": checkpoint_copy,
        "loss_pt": loss_pt,
        "afile": inputs / "afile",
        "evil": inputs / "evil.pt",
        "from_checkpoint": from_checkpoint,
        "forged_config": forge_onnx(
            small_onnx,
            inputs / "forged_config.onnx",
            config=json.dumps({"checkpoint": str(inputs / "evil.pt"), "trust_checkpoint": True}),
        ),
        "forged_sizes": forge_torchscript(
            tigas_pt,
            inputs / "forged_sizes.pt",
            {
                "extra/lossport.config": json.dumps(
                    {"base_channels": 4096, "feature_dim": 65536, "mode": "fast"}
                ).encode()
            },
        ),
        "corrupt_metadata": forge_onnx(small_onnx, inputs / "corrupt_meta.onnx", config="{not json"),
        "corrupt_code": forge_torchscript(
            tigas_pt, inputs / "corrupt_code.pt", {".py": b"def forward(self):\n  return ((("}
        ),
        "forged_graph": forged_graph,
        "external_data": external,
    }
    return values, marker


@pytest.mark.parametrize("arguments, message", [pytest.param(a, m, id=i) for i, a, m in ROWS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, placeholders, arguments, message):
    values, marker = placeholders
    work = tmp_path / "work"
    work.mkdir()
    args = [a.format(**values) for a in arguments]
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "inputs").iterdir()}
    start = time.monotonic()
    result = invoke(*args, cwd=work)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.output
    if "--debug" not in args:
        assert "Traceback" not in result.output
    assert files_in(work) == []
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "inputs").iterdir()} == before
    assert not marker.exists(), "a file named by an artifact or checkpoint ran code"
    assert time.monotonic() - start < 60


def test_uppercase_suffix_is_accepted(tmp_path):
    result = invoke("export", "loss", "rmse", "-o", "R.ONNX", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    validated = invoke("validate", "artifact", "R.ONNX", "--backends", "ort-cpu", cwd=tmp_path)
    assert validated.exit_code == 0, validated.output


def test_metadata_names_the_checkpoint_by_name_and_hash_only(tmp_path, tigas_fixtures):
    source = tmp_path / "weights" / "ck.pt"
    source.parent.mkdir()
    source.write_bytes((tigas_fixtures / "tigas_fast_small.pt").read_bytes())
    result = invoke(
        "export",
        "tigas",
        "--checkpoint",
        source,
        "--set",
        "num_attention_heads=4",
        "--no-check",
        "-o",
        "t.onnx",
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "t.onnx")).metadata_props}
    text = json.dumps(props)
    assert str(tmp_path) not in text and "trust" not in text
    weights = json.loads(props["lossport.weights"])
    import hashlib

    assert weights == {"file": "ck.pt", "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    validated = invoke(
        "validate", "artifact", "t.onnx", "--checkpoint", source, "--backends", "ort-cpu", cwd=tmp_path
    )
    assert validated.exit_code == 0, validated.output


def test_forged_with_grad_claim_fails_the_gradient_check(tmp_path):
    assert (
        invoke("export", "loss", "rmse", "--format", "torchscript", "-o", "r.pt", cwd=tmp_path).exit_code == 0
    )
    forged = forge_torchscript(
        tmp_path / "r.pt",
        tmp_path / "forged.pt",
        {"extra/lossport.with_grad": b"true", "extra/lossport.outputs": b'["loss", "grad_prediction"]'},
    )
    result = invoke("validate", "artifact", forged, cwd=tmp_path)
    assert result.exit_code == 1, result.output
    assert "torchscript" in result.output and "FAIL" in result.output
    assert "returns 1 outputs, its metadata names 2" in result.output


def test_written_files_follow_the_umask(tmp_path):
    target = tmp_path / "r.onnx"
    target.write_text("old")
    target.chmod(0o644)
    old = os.umask(0o027)
    try:
        assert invoke("export", "loss", "rmse", "--no-check", "-o", target, cwd=tmp_path).exit_code == 0
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_export_leaves_no_temp_file(tmp_path, sig):
    command = [
        sys.executable,
        "-m",
        "lossport",
        "export",
        "tigas",
        "--weights",
        "random",
        "--with-grad",
        "-o",
        "t.onnx",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".t.onnx.") for p in tmp_path.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(sig)
    process.communicate(timeout=120)
    assert process.returncode != 0
    assert list(tmp_path.iterdir()) == []
