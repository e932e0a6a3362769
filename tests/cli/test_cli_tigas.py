"""`lossport export tigas` and `lossport validate tigas` on the upstream fixtures and offline."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lossport.artifact.metadata import read_metadata
from lossport.cli import main
from lossport.errors import CheckpointError


def test_export_tigas_from_a_checkpoint(tigas_fixtures, tmp_path):
    out = tmp_path / "tigas.pt"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "tigas",
            "--checkpoint",
            str(tigas_fixtures / "tigas_fast_small.pt"),
            "--set",
            "num_attention_heads=4",
            "--format",
            "torchscript",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    meta = read_metadata(out)
    assert '"mode": "fast"' in meta["config"] and '"base_channels": 8' in meta["config"]
    assert json.loads(meta["preprocess"])["size"] == [256, 256]


def test_export_tigas_mode_must_match_the_checkpoint(tigas_fixtures, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "export",
            "tigas",
            "--checkpoint",
            str(tigas_fixtures / "tigas_fast_small.pt"),
            "--mode",
            "full",
            "--set",
            "num_attention_heads=4",
            "-o",
            str(tmp_path / "t.onnx"),
        ],
    )
    assert result.exit_code == 2
    assert "checkpoint holds a fast-mode model" in result.output
    assert list(tmp_path.iterdir()) == []


def test_export_tigas_offline_hub_is_a_clear_error(monkeypatch, tmp_path):
    import lossport.models.tigas.specs as tigas_specs

    def offline():
        raise CheckpointError("cannot download the TIGAS weights: offline")

    monkeypatch.setattr(tigas_specs, "download_checkpoint", offline)
    result = CliRunner().invoke(main, ["export", "tigas", "-o", str(tmp_path / "t.onnx")])
    assert result.exit_code == 2
    assert "cannot download the TIGAS weights" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--weights", "random", "--checkpoint", "x.pt"], "not both"),
        (["--checkpoint", "absent.pt"], "absent.pt"),
        (["--weights", "random", "--set", "mode=medium"], "mode"),
    ],
)
def test_export_tigas_bad_input(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", "tigas", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_validate_tigas_checkpoint_passes(tigas_fixtures):
    result = CliRunner().invoke(
        main,
        [
            "validate",
            "tigas",
            "--checkpoint",
            str(tigas_fixtures / "tigas_fast_small.pt"),
            "--backends",
            "eager,torchscript",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tigas[fast]" in result.output and "FAIL" not in result.output


def test_score_with_a_gradient_torchscript_artifact(tmp_path):
    from PIL import Image

    artifact = tmp_path / "g.pt"
    export = CliRunner().invoke(
        main,
        [
            "export",
            "tigas",
            "--weights",
            "random",
            "--set",
            "base_channels=8",
            "--set",
            "feature_dim=64",
            "--set",
            "num_attention_heads=4",
            "--set",
            "img_size=64",
            "--format",
            "torchscript",
            "--with-grad",
            "-o",
            str(artifact),
        ],
    )
    assert export.exit_code == 0, export.output
    Image.new("RGB", (80, 60), (200, 30, 40)).save(tmp_path / "a.png")
    result = CliRunner().invoke(main, ["score", str(tmp_path / "a.png"), "--model", str(artifact), "--json"])
    assert result.exit_code == 0, result.output
    assert "a.png" in result.output
