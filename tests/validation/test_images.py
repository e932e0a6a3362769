"""``--images``: a scorer artifact against the eager reference on a folder of images (max
|Δscore|, Spearman, Kendall tau-b, decisions flipped), pass criteria, and the rank statistics
against scipy's."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper
from PIL import Image

from lossport.cli import main
from lossport.validation.images import ImageCriteria, agreement, average_ranks, kendall_tau_b, spearman

stats = pytest.importorskip("scipy.stats")

SMALL_TIGAS = ["--set", "base_channels=8", "--set", "feature_dim=64", "--set", "num_attention_heads=4"]


@pytest.mark.parametrize("seed", range(6))
def test_rank_statistics_match_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    x = rng.integers(0, 6, n).astype(float) if seed % 2 else rng.normal(size=n)
    y = x + rng.normal(size=n) * (0.5 if seed % 3 else 5.0)
    if seed == 4:
        y = np.round(y)  # ties in both
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert kendall_tau_b(x, y, block=7) == pytest.approx(
        stats.kendalltau(x, y, variant="b").statistic, abs=1e-12
    )
    assert np.array_equal(average_ranks(x), stats.rankdata(x))


def test_rank_statistics_edge_cases():
    x = np.arange(5.0)
    assert spearman(x, x) == 1.0 and spearman(x, -x) == -1.0
    assert kendall_tau_b(x, x) == 1.0 and kendall_tau_b(x, -x) == -1.0
    assert np.isnan(spearman(x, np.ones(5))) and np.isnan(kendall_tau_b(np.ones(5), x))


def test_agreement_counts_flips_at_the_threshold_and_applies_criteria(tmp_path):
    reference = np.array([0.1, 0.4, 0.5, 0.7, 0.9])
    scores = np.array([0.1, 0.6, 0.49, 0.7, 0.9])
    found = agreement("ort-cpu", list("abcde"), reference, scores, ImageCriteria(tmp_path, 0.5, 0.99, 1))
    assert found.flips == 2 and found.max_delta == pytest.approx(0.2)
    assert found.failures == [
        f"Spearman {found.spearman:.4f} below --min-spearman 0.99",
        "2 decision(s) flipped at 0.5, more than --max-flips 1",
    ]
    assert agreement("x", list("abcde"), reference, reference, ImageCriteria(tmp_path, 0.5, 1.0, 0)).passed


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(7):
        pixels = (rng.random((36 + 5 * i, 44, 3)) * 255 * (0.2 + 0.8 * rng.random())).astype("uint8")
        Image.fromarray(pixels).save(folder / f"image{i}.png")
    (folder / "nested").mkdir()
    Image.fromarray((rng.random((50, 50)) * 255).astype("uint8")).save(folder / "nested" / "grey.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def tigas_artifacts(tmp_path_factory):
    """A real TIGAS scorer (small, random weights, 64 px) and a copy whose score head is negated
    (score -> 1 - score: every ranking reversed)."""
    folder = tmp_path_factory.mktemp("tigas")
    good, flipped = folder / "t.onnx", folder / "flipped.onnx"
    args = ["export", "tigas", "--weights", "random", *SMALL_TIGAS, "--img-size", "64", "-o", str(good)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    model = onnx.load(str(good))
    for tensor in model.graph.initializer:
        if tensor.name.startswith("regression_head.8."):
            tensor.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(tensor), tensor.name))
    onnx.save(model, str(flipped))
    return good, flipped


def _validate(artifact, images, tmp_path, *extra):
    report = tmp_path / "r.json"
    args = ["validate", "artifact", str(artifact), "--backends", "ort-cpu", "--images", str(images)]
    result = CliRunner().invoke(
        main, [*args, "--json", str(report), "--junit", str(tmp_path / "r.xml"), *extra]
    )
    data = json.loads(report.read_text()) if report.exists() else None
    return result, data


def test_a_correct_artifact_agrees_on_images(tigas_artifacts, images, tmp_path):
    result, data = _validate(
        tigas_artifacts[0], images, tmp_path, "--min-spearman", "0.99", "--max-flips", "0"
    )
    assert result.exit_code == 0, result.output
    (found,) = data["specs"][0]["images"]
    assert found["backend"] == "ort-cpu" and found["images"] == 8 and found["passed"]
    assert found["max_abs_delta"] < 1e-5 and found["flips"] == 0
    assert found["spearman"] > 0.99 and found["kendall_tau_b"] > 0.9
    assert [s["path"].endswith(".png") for s in found["scores"]] == [True] * 8
    assert found["skipped"][0]["path"].endswith("notes.txt")
    assert "images tigas / ort-cpu: 8 images, max |Δscore| " in result.output and "-- pass" in result.output


def test_a_tampered_artifact_fails_the_image_criteria(tigas_artifacts, images, tmp_path):
    """Negated score head: score -> 1 - score, so the ranking reverses and, at 0.5, every
    decision flips (s >= 0.5 exactly when 1 - s < 0.5, for s != 0.5)."""
    result, data = _validate(
        tigas_artifacts[1], images, tmp_path, "--min-spearman", "0.9", "--max-flips", "0"
    )
    assert result.exit_code == 1, result.output
    (found,) = data["specs"][0]["images"]
    assert found["spearman"] == pytest.approx(-1.0) and found["kendall_tau_b"] == pytest.approx(-1.0)
    assert found["flips"] == 8 and not found["passed"]
    assert "tigas / ort-cpu / images: Spearman -1.0000 below --min-spearman 0.9" in result.output
    assert "8 decision(s) flipped at 0.5, more than --max-flips 0" in result.output
    assert "images tigas / ort-cpu: " in result.output and "-- FAIL" in result.output
    cases = ET.parse(tmp_path / "r.xml").getroot().iter("testcase")
    (case,) = [c for c in cases if c.get("name") == "ort-cpu:images"]
    assert "Spearman" in case.find("failure").get("message")


def test_validate_tigas_with_images(images, tmp_path):
    report = tmp_path / "r.json"
    result = CliRunner().invoke(
        main,
        [
            "validate",
            "tigas",
            "--mode",
            "fast",
            "--backends",
            "torchscript",
            "--images",
            str(images),
            "--max-flips",
            "0",
            "--json",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    (spec,) = json.loads(report.read_text())["specs"]
    (found,) = spec["images"]
    assert found["backend"] == "torchscript" and found["images"] == 8 and found["flips"] == 0
    assert found["max_abs_delta"] < 1e-5


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--images", "{missing}"], "no such folder"),
        (["--images", "{one}"], "found 1 image file(s); rankings need at least 2"),
        (["--images", "{images}", "--min-spearman", "1.5"], "must be from -1 to 1"),
        (["--images", "{images}", "--max-flips", "-1"], "must be >= 0"),
        (["--images", "{images}", "--threshold", "nan"], "must be a finite number"),
        (["--min-spearman", "0.9"], "give --images DIR"),
        (["--max-flips", "0"], "give --images DIR"),
        (["--images", "{images}", "--artifact", "rmse"], "--images needs an image scorer"),
    ],
)
def test_images_bad_input(extra, message, images, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one = tmp_path / "one"
    one.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), "uint8")).save(one / "only.png")
    artifact = "unused.onnx"
    if "--artifact" in extra:
        extra = extra[: extra.index("--artifact")]
        done = CliRunner().invoke(main, ["export", "loss", "rmse", "-o", "rmse.onnx"])
        assert done.exit_code == 0, done.output
        artifact = "rmse.onnx"
    else:
        (tmp_path / artifact).write_bytes(b"never read: options are checked first")
    values = [v.format(missing=tmp_path / "nope", one=one, images=images) for v in extra]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(main, ["validate", "artifact", artifact, *values, "--json", "r.json"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
