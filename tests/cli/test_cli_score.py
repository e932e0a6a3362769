"""``lossport score``: image folders with odd files, output formats, exported models (ONNX with
a preprocessing contract, TorchScript), and one-line errors with exit code 2."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from scorer_models import mean_scorer_onnx

from lossport.cli import main
from lossport.models.tigas import TIGAS, TIGASModel

SMALL = {"base_channels": 8, "feature_dim": 64, "num_attention_heads": 4}


def run(*arguments):
    return CliRunner().invoke(main, ["score", *map(str, arguments)])


@pytest.fixture
def folder(tmp_path):
    """RGB PNG, JPEG, 8-bit grey, RGBA and 16-bit PNG (one nested), a text file, a corrupt PNG."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    (root / "nested").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(root / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (60, 45, 3), dtype=np.uint8)).save(root / "photo.jpeg", quality=90)
    Image.fromarray(rng.integers(0, 256, (36, 36), dtype=np.uint8)).save(root / "grey.png")
    Image.fromarray(rng.integers(0, 256, (40, 40, 4), dtype=np.uint8)).save(root / "nested" / "alpha.png")
    Image.fromarray(rng.integers(0, 65536, (48, 32), dtype=np.uint16)).save(root / "nested" / "deep.png")
    (root / "notes.txt").write_text("not an image")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


IMAGES = ["grey.png", "nested/alpha.png", "nested/deep.png", "photo.jpeg", "rgb.png"]


@pytest.fixture
def checkpoint(tigas_fixtures):
    return tigas_fixtures / "tigas_fast_small.pt"


def test_folder_table(folder, checkpoint):
    result = run(folder, "--checkpoint", checkpoint, "--img-size", 64)
    assert result.exit_code == 0, result.output
    rows = result.stdout.strip().splitlines()
    assert rows[0].split() == ["score", "verdict", "path"]
    assert [Path(r.split()[2]).relative_to(folder).as_posix() for r in rows[1:]] == IMAGES
    assert "scored 5 images, skipped 2 files" in result.stderr
    assert "broken.png" in result.stderr and "notes.txt" in result.stderr
    scorer = TIGAS(checkpoint, img_size=64, device="cpu")
    for row in rows[1:]:
        score, verdict, path = row.split()
        expected = scorer(path).item()
        assert abs(float(score) - expected) < 1e-4
        assert verdict == ("real" if expected >= 0.5 else "generated")


def test_json_and_csv(folder, checkpoint):
    as_json = run(folder, "--checkpoint", checkpoint, "--img-size", 64, "--json")
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert [Path(s["path"]).name for s in report["scores"]] == [Path(p).name for p in IMAGES]
    assert {Path(s["path"]).name for s in report["skipped"]} == {"broken.png", "notes.txt"}
    as_csv = run(folder, "--checkpoint", checkpoint, "--img-size", 64, "--csv")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 5
    for row, item in zip(rows, report["scores"]):
        assert row["path"] == item["path"]
        assert abs(float(row["score"]) - item["score"]) < 1e-5
        assert abs(float(row["logit_real"]) - item["logits"][1]) < 1e-5


def test_explicit_bad_file_is_an_error(folder, checkpoint):
    result = run(folder / "rgb.png", folder / "broken.png", "--checkpoint", checkpoint)
    assert result.exit_code == 2
    assert "broken.png" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    "content, option, match",
    [
        (None, "--checkpoint", "no such checkpoint file"),
        (b"garbage", "--checkpoint", "not a readable PyTorch checkpoint"),
        (None, "--model", "no such model file"),
        (b"garbage", "--model", "not a readable ONNX model"),
    ],
)
def test_bad_model_files(tmp_path, folder, content, option, match):
    path = tmp_path / ("model.onnx" if option == "--model" else "model.pt")
    if content is not None:
        path.write_bytes(content)
    result = run(folder / "rgb.png", option, path)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0]


@pytest.mark.parametrize(
    "arguments, match",
    [
        (["missing.png"], "no such file or directory"),  # checked before any model is loaded
        (["{folder}/rgb.png", "--model", "x.onnx", "--checkpoint", "y.pt"], "not both"),
        (["{folder}/rgb.png", "--json", "--csv"], "not both"),
    ],
)
def test_usage_errors(folder, arguments, match):
    result = run(*[a.format(folder=folder) for a in arguments])
    assert result.exit_code == 2 and match in result.stderr


def test_hub_used_without_checkpoint(folder, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    from huggingface_hub.errors import OfflineModeIsEnabled

    def offline(*args, **kwargs):
        raise OfflineModeIsEnabled("offline mode is enabled")

    monkeypatch.setattr(hub, "hf_hub_download", offline)
    result = run(folder / "rgb.png")
    assert result.exit_code == 2
    assert "offline" in result.stderr and "--checkpoint FILE" in result.stderr


# -- exported models ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "contract, side, to_signed",
    [
        ({"size": [24, 40], "range": "[0,1]", "channel_order": "RGB", "layout": "NCHW"}, (24, 40), False),
        ({"size": [32, 32], "range": "[-1,1]", "channel_order": "RGB", "layout": "NCHW"}, (32, 32), True),
        (None, (256, 256), False),
    ],
)
def test_onnx_model_follows_its_contract(tmp_path, folder, contract, side, to_signed):
    model = mean_scorer_onnx(tmp_path / "scorer.onnx", contract)
    result = run(folder / "rgb.png", folder / "grey.png", "--model", model, "--json")
    assert result.exit_code == 0, result.output
    for item in json.loads(result.stdout)["scores"]:
        pixels = Image.open(item["path"]).convert("RGB").resize((side[1], side[0]), Image.BILINEAR)
        expected = np.asarray(pixels, dtype=np.float64).mean() / 255.0
        expected = 2 * expected - 1 if to_signed else expected
        assert abs(item["score"] - expected) < 1e-5


def test_torchscript_model(tmp_path, folder):
    torch.manual_seed(0)
    model = TIGASModel(mode="fast", **SMALL).eval()
    contract = {"size": [48, 48], "range": "[0,1]", "channel_order": "RGB", "layout": "NCHW"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
        torch.jit.save(
            torch.jit.script(model),
            str(tmp_path / "tigas.pt"),
            _extra_files={"lossport.preprocess": json.dumps(contract)},
        )
    result = run(folder / "rgb.png", "--model", tmp_path / "tigas.pt", "--json")
    assert result.exit_code == 0, result.output
    score = json.loads(result.stdout)["scores"][0]["score"]
    assert abs(score - TIGAS.from_model(model, img_size=48, device="cpu")(folder / "rgb.png").item()) < 1e-5
    upstream = run(folder / "rgb.png", "--model", tmp_path / "missing.pt")
    assert upstream.exit_code == 2


def test_subprocess_error_has_no_traceback(tmp_path):
    (tmp_path / "junk.pt").write_text("junk")
    Image.new("RGB", (40, 40)).save(tmp_path / "a.png")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "lossport",
            "score",
            str(tmp_path / "a.png"),
            "--checkpoint",
            str(tmp_path / "junk.pt"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'junk.pt'}: not a readable")


def test_pt2_program_model_and_the_aoti_trust_refusal(tmp_path, folder):
    from lossport.export import export_artifact
    from lossport.models.tigas.specs import TIGAS_SPEC

    torch.manual_seed(0)
    config = TIGAS_SPEC.resolve_config({"img_size": 48, **SMALL})
    model = TIGASModel(mode="fast", **SMALL).eval()
    program = export_artifact(
        TIGAS_SPEC, fmt="pt2", path=tmp_path / "tigas.pt2", config=config, module=model
    ).path
    result = run(folder / "rgb.png", "--model", program, "--json")
    assert result.exit_code == 0, result.output
    score = json.loads(result.stdout)["scores"][0]["score"]
    assert abs(score - TIGAS.from_model(model, img_size=48, device="cpu")(folder / "rgb.png").item()) < 1e-5

    # a package recorded as AOTInductor (native code) is refused before anything loads
    forged = tmp_path / "forged.pt2"
    with zipfile.ZipFile(program) as source, zipfile.ZipFile(forged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, b"aoti" if item.filename.endswith("extra/lossport.format") else data)
    refused = run(folder / "rgb.png", "--model", forged)
    assert refused.exit_code == 2 and "--trust-artifact" in refused.output
    assert "Traceback" not in refused.output
    misplaced = run(folder / "rgb.png", "--checkpoint", program, "--trust-artifact")
    assert (
        misplaced.exit_code == 2
        and "--trust-artifact applies to an exported --model" in refused.output + misplaced.output
    )
