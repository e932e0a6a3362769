"""The small trained TIGAS (tests/fixtures/tigas_trained): it loads through lossport's normal
checkpoint path without trusting it, its eval-split scores spread and separate real photos from
generated-looking images (labels from the image set, statistics computed here with numpy), and
its ONNX export can be judged on the eval split with ``validate artifact --images``."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest
import torch
from cli_runner import run_cli
from imageset import GENERATED, REAL

from lossport.io.images import load_image
from lossport.models.tigas.checkpoint import load_model, read_checkpoint

SIZE = 256


def test_the_checkpoint_is_the_documented_file_and_loads_without_trust(tigas_trained):
    data = tigas_trained.read_bytes()
    assert len(data) <= 5 * 2**20
    readme = (tigas_trained.parent / "README.md").read_text()
    recorded = re.search(r"([0-9a-f]{64})  " + re.escape(tigas_trained.name), readme)
    assert recorded and recorded.group(1) == hashlib.sha256(data).hexdigest()
    payload = torch.load(tigas_trained, weights_only=True)
    assert set(payload) == {"model_state_dict", "img_size"} and payload["img_size"] == SIZE
    checkpoint = read_checkpoint(tigas_trained)
    assert (checkpoint.mode, checkpoint.base_channels, checkpoint.feature_dim, checkpoint.img_size) == (
        "fast",
        8,
        64,
        SIZE,
    )


@pytest.fixture(scope="module")
def eval_scores(imageset, tigas_trained):
    """``(scores, labels)`` of the eager model on the eval split at the contract size."""
    model = load_model(tigas_trained, num_attention_heads=4)
    entries = imageset.select("eval")
    scores = []
    with torch.no_grad():
        for start in range(0, len(entries), 32):
            batch = torch.stack(
                [load_image(imageset.root / e.path, (SIZE, SIZE)) for e in entries[start : start + 32]]
            )
            scores.append(model(batch)[0][:, 0].numpy())
    return np.concatenate(scores).astype(np.float64), np.array([e.label for e in entries])


def test_eval_scores_spread_over_the_unit_interval(eval_scores):
    scores, _ = eval_scores
    assert scores.std() > 0.1
    low, high = np.quantile(scores, [0.1, 0.9])
    assert low < 0.3 and high > 0.6


def test_eval_scores_separate_real_from_generated_above_chance(eval_scores):
    scores, labels = eval_scores
    real, generated = scores[labels == REAL], scores[labels == GENERATED]
    accuracy = np.mean((scores >= 0.5) == (labels == REAL))
    # probability that a random real photo outscores a random generated image (ROC AUC)
    auc = np.mean(real[:, None] > generated[None, :]) + 0.5 * np.mean(real[:, None] == generated[None, :])
    assert accuracy >= 0.6 and auc >= 0.7
    assert real.mean() - generated.mean() > 0.15


def test_the_onnx_export_is_judged_on_the_eval_split(imageset, tigas_trained, tmp_path):
    """``export tigas --checkpoint`` then ``validate artifact --checkpoint --images``: fp32 ONNX
    Runtime ranks and decides a sample of the eval split as eager does."""
    folder = tmp_path / "images"
    for label in (REAL, GENERATED):
        for path in imageset.paths("eval", label)[::10]:
            (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder / path.parent.name / path.name)
    artifact = tmp_path / "tigas_trained.onnx"
    result = run_cli(
        "export", "tigas", "--checkpoint", tigas_trained, "--format", "onnx", "-o", artifact, cwd=tmp_path
    )
    assert result.exit_code == 0, result.output
    report = tmp_path / "report.json"
    args = ["validate", "artifact", artifact, "--checkpoint", tigas_trained, "--backends", "ort-cpu"]
    criteria = ["--images", folder, "--min-spearman", "0.99", "--json", report]
    result = run_cli(*args, *criteria, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    (found,) = json.loads(report.read_text())["specs"][0]["images"]
    assert found["backend"] == "ort-cpu" and found["images"] == 16 and found["passed"]
    assert max(s["reference"] for s in found["scores"]) - min(s["reference"] for s in found["scores"]) > 0.3
