"""The Ray Data integration in Ray's local mode: the same scores as ``lossport score`` for
paths and for ``read_binary_files`` rows, unreadable files as rows with their error."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scorer_models import mean_scorer_onnx

ray = pytest.importorskip("ray")

from lossport.cli import main
from lossport.errors import ConfigError
from lossport.integrations.ray import image_dataset, score_dataset

CONTRACT = {"size": [24, 20], "range": "[-1,1]", "channel_order": "RGB", "layout": "NCHW"}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / "images"
    root.mkdir()
    for index in range(7):
        Image.fromarray(rng.integers(0, 256, (30 + index, 40, 3), dtype=np.uint8)).save(root / f"{index}.png")
    (root / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    return root


def expected_scores(images, model):
    result = CliRunner().invoke(main, ["score", str(images), "--model", str(model), "--json"])
    assert result.exit_code == 0, result.output
    return {item["path"]: item for item in json.loads(result.stdout)["scores"]}


def check_scores(dataset, model, images):
    expected = expected_scores(images, model)
    rows = score_dataset(dataset, model, batch_size=3, concurrency=1).take_all()
    by_name = {row["path"].rsplit("/", 1)[-1]: row for row in rows}
    assert sorted(by_name) == sorted([*(p.rsplit("/", 1)[-1] for p in expected), "cut.png"])
    assert by_name["cut.png"]["error"] and math.isnan(by_name["cut.png"]["score"])
    for path, item in expected.items():
        row = by_name[path.rsplit("/", 1)[-1]]
        assert row["error"] == ""
        assert abs(row["score"] - item["score"]) < 1e-5
        assert abs(row["logit_real"] - item["logits"][1]) < 1e-5


def test_paths_score_as_lossport_score(local_ray, tmp_path, images):
    check_scores(image_dataset([images]), mean_scorer_onnx(tmp_path / "scorer.onnx", CONTRACT), images)


@pytest.mark.slow
def test_file_bytes_score_as_lossport_score(local_ray, tmp_path, images):
    dataset = ray.data.read_binary_files(str(images), include_paths=True)
    check_scores(dataset, mean_scorer_onnx(tmp_path / "scorer.onnx", CONTRACT), images)


def test_missing_model_is_a_config_error(tmp_path, images):
    with pytest.raises(ConfigError, match="no such model file"):
        score_dataset(None, tmp_path / "absent.onnx")
