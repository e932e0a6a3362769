"""TIGAS checkpoints: every accepted format, config inference, strict fitting with named
errors, refusal of unsafe pickles, and the hub path (never the network)."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest
import torch

from lossport.errors import CheckpointError
from lossport.models.tigas import TIGAS, download_checkpoint, load_model, read_checkpoint
from lossport.models.tigas.hub import HUB_FILENAME, HUB_REPO


def fixture_state(tigas_fixtures, mode="full"):
    return torch.load(tigas_fixtures / f"tigas_{mode}_small.pt", weights_only=True)["model_state_dict"]


def fixture_case(tigas_fixtures, mode="full"):
    data = np.load(tigas_fixtures / f"tigas_{mode}_small_io.npz")
    return torch.from_numpy(data["input_1"]), torch.from_numpy(data["score_1"])


def assert_fixture_score(model, tigas_fixtures, mode="full"):
    images, expected = fixture_case(tigas_fixtures, mode)
    with torch.no_grad():
        score, _ = model(images)
    assert (score - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_trainer_checkpoint_infers_config(tigas_fixtures, mode):
    checkpoint = read_checkpoint(tigas_fixtures / f"tigas_{mode}_small.pt")
    assert (checkpoint.mode, checkpoint.base_channels, checkpoint.feature_dim) == (mode, 8, 64)
    assert checkpoint.img_size is None
    assert_fixture_score(checkpoint.build(num_attention_heads=4), tigas_fixtures, mode)


@pytest.mark.parametrize(
    "wrap", ["save_model", "raw", "module_prefix", "compiled_prefix", "state_dict_key", "numpy_scalars"]
)
def test_other_formats(tigas_fixtures, tmp_path, wrap):
    state = fixture_state(tigas_fixtures)
    payload = {
        "save_model": {"model_state_dict": state, "img_size": 224},
        "raw": state,
        "module_prefix": {f"module.{k}": v for k, v in state.items()},
        "compiled_prefix": {"model_state_dict": {f"_orig_mod.{k}": v for k, v in state.items()}},
        "state_dict_key": {"state_dict": state, "epoch": 3},
        "numpy_scalars": {"model_state_dict": state, "best_val_loss": np.float64(0.25), "epoch": np.int64(4)},
    }[wrap]
    torch.save(payload, tmp_path / "checkpoint.pt")
    checkpoint = read_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint.img_size == (224 if wrap == "save_model" else None)
    assert_fixture_score(checkpoint.build(), tigas_fixtures)


def test_half_precision_weights_load(tigas_fixtures, tmp_path):
    state = {k: v.half() if v.is_floating_point() else v for k, v in fixture_state(tigas_fixtures).items()}
    torch.save(state, tmp_path / "half.pt")
    model = load_model(tmp_path / "half.pt")
    assert next(model.parameters()).dtype == torch.float32
    images, expected = fixture_case(tigas_fixtures)
    with torch.no_grad():
        assert (model(images)[0] - expected).abs().max() < 1e-2


def test_heads_override(tigas_fixtures):
    for heads in (1, 2, 8):
        assert_fixture_score(
            load_model(tigas_fixtures / "tigas_full_small.pt", num_attention_heads=heads), tigas_fixtures
        )
    with pytest.raises(CheckpointError, match="num_attention_heads must divide"):
        load_model(tigas_fixtures / "tigas_full_small.pt", num_attention_heads=3)


def test_misfit_names_keys(tigas_fixtures, tmp_path):
    state = dict(fixture_state(tigas_fixtures))
    del state["regression_head.8.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["binary_classifier.3.weight"] = torch.zeros(3, 32)
    torch.save(state, tmp_path / "misfit.pt")
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path / "misfit.pt")
    message = str(info.value)
    assert "missing: regression_head.8.bias" in message
    assert "unexpected: extra.weight" in message
    assert "mis-shaped: binary_classifier.3.weight [3, 32] (model: [2, 32])" in message


@pytest.mark.parametrize(
    "content, match",
    [
        (b"hello, not a checkpoint\n", "not a readable PyTorch checkpoint"),
        (b"", "not a readable PyTorch checkpoint"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "not a readable PyTorch checkpoint"),
    ],
)
def test_not_a_checkpoint(tmp_path, content, match):
    (tmp_path / "junk.pt").write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint(tmp_path / "junk.pt")


def test_truncated_checkpoint(tigas_fixtures, tmp_path):
    data = (tigas_fixtures / "tigas_fast_small.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(tmp_path / "cut.pt")


@pytest.mark.parametrize(
    "payload, match",
    [
        ([1, 2, 3], "expected a state_dict"),
        ({"weight": torch.zeros(2)}, "not a TIGAS checkpoint"),
        (
            {
                "model_state_dict": {
                    "perceptual_extractor.stem.0.weight": torch.zeros(8, 3, 3, 3),
                    "perceptual_aggregator.0.weight": torch.zeros(64, 240),
                }
            },
            "neither aux_branch",
        ),
        ({"model_state_dict": {}, "note": "x"}, "not a TIGAS checkpoint"),
    ],
)
def test_not_a_tigas_state_dict(tmp_path, payload, match):
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint(tmp_path / "other.pt")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "absent.pt")


def test_unsafe_pickle_needs_trust(tigas_fixtures, tmp_path):
    payload = {"model_state_dict": fixture_state(tigas_fixtures), "args": argparse.Namespace(lr=1e-4)}
    torch.save(payload, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="argparse.Namespace.*--trust-checkpoint"):
        read_checkpoint(tmp_path / "pickled.pt")
    assert_fixture_score(load_model(tmp_path / "pickled.pt", trust_checkpoint=True), tigas_fixtures)


# -- the hub path (huggingface_hub is patched; the network is never used) --------------------


def test_hub_download_success(tigas_fixtures, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    calls = []

    def fake_download(repo_id, filename, revision=None, **kwargs):
        calls.append((repo_id, filename))
        return str(tigas_fixtures / "tigas_full_small.pt")

    monkeypatch.setattr(hub, "hf_hub_download", fake_download)
    scorer = TIGAS(device="cpu")
    assert calls == [(HUB_REPO, HUB_FILENAME)]
    assert_fixture_score(scorer.model, tigas_fixtures)


def test_hub_offline(monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError(
            "Cannot find the requested files in the disk cache and outgoing traffic has been disabled."
        )

    monkeypatch.setattr(hub, "hf_hub_download", offline)
    with pytest.raises(CheckpointError, match=r"offline.*--checkpoint FILE"):
        download_checkpoint()
    with pytest.raises(CheckpointError, match="offline"):
        TIGAS(device="cpu")


def test_hub_other_failure(monkeypatch):
    hub = pytest.importorskip("huggingface_hub")

    def broken(*args, **kwargs):
        raise RuntimeError("server said no")

    monkeypatch.setattr(hub, "hf_hub_download", broken)
    with pytest.raises(CheckpointError, match="server said no.*--checkpoint FILE"):
        download_checkpoint()


def test_hub_package_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(CheckpointError, match=r"lossport\[hub\].*--checkpoint FILE"):
        TIGAS(device="cpu")


def test_no_checkpoint_without_download():
    with pytest.raises(CheckpointError, match="auto_download=False"):
        TIGAS(auto_download=False)
