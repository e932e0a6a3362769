"""The TIGAS scorer API (tensors, paths, PIL images, lists, directories), image loading, the
generator loss and the registry specs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lossport import catalog
from lossport.errors import ImageError, InvalidInputError
from lossport.io.images import load_image
from lossport.losses import TIGASGeneratorLoss
from lossport.models.tigas import TIGAS, TIGASModel
from lossport.models.tigas.specs import resolve_weights

SMALL = {"base_channels": 8, "feature_dim": 64, "num_attention_heads": 4}


@pytest.fixture
def scorer(tigas_fixtures):
    return TIGAS(tigas_fixtures / "tigas_fast_small.pt", img_size=64, device="cpu", num_attention_heads=4)


def random_rgb(path, size=(50, 40), seed=0):
    """A random RGB image of ``size`` (width, height) saved at ``path``."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def by_hand(image: Image.Image, side: int) -> torch.Tensor:
    """Upstream's PIL pipeline written out: RGB, bilinear resize, /255, CHW."""
    array = np.asarray(image.convert("RGB").resize((side, side), Image.BILINEAR), dtype=np.float32)
    return torch.from_numpy(array / 255.0).permute(2, 0, 1)


# -- tensors -----------------------------------------------------------------------------


def test_tensor_input_not_resized(scorer, tigas_fixtures):
    data = np.load(tigas_fixtures / "tigas_fast_small_io.npz")
    images = torch.from_numpy(data["input_1"])  # 72x96 while img_size is 64
    torch.testing.assert_close(scorer(images), torch.from_numpy(data["score_1"]), atol=1e-5, rtol=0)
    torch.testing.assert_close(scorer(images[0]), torch.from_numpy(data["score_1"]), atol=1e-5, rtol=0)
    score, logits = scorer(images, return_logits=True)
    torch.testing.assert_close(logits, torch.from_numpy(data["logits_1"]), atol=1e-5, rtol=0)
    assert not score.requires_grad


def test_differentiable_on_tensors_that_require_grad(scorer, tigas_fixtures):
    data = np.load(tigas_fixtures / "tigas_fast_small_io.npz")
    images = torch.from_numpy(data["input_0"]).requires_grad_(True)
    (1 - scorer(images).mean()).backward()
    expected = torch.from_numpy(data["grad_0"])
    assert (images.grad - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert not scorer.model.training
    assert not any(p.requires_grad for p in scorer.model.parameters())
    assert all(p.grad is None for p in scorer.model.parameters())


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(64, 64), r"\[batch, 3, height, width\]"),
        (torch.rand(1, 1, 64, 64), "RGB channels"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "floating-point"),
        (torch.rand(2, 3, 64, 20), "at least 32x32"),
        (12, "must be a torch.Tensor|cannot score"),
    ],
)
def test_bad_tensors(scorer, bad, match):
    with pytest.raises(InvalidInputError, match=match):
        scorer(bad)


def test_list_of_tensors(scorer):
    images = torch.rand(3, 3, 48, 40, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(scorer(list(images), batch_size=2), scorer(images))
    with pytest.raises(InvalidInputError, match="share one size"):
        scorer([images[0], torch.rand(3, 40, 48)])
    with pytest.raises(InvalidInputError, match="empty"):
        scorer([])


# -- files and PIL images ------------------------------------------------------------------


def test_path_and_pil_inputs(scorer, tmp_path):
    path = random_rgb(tmp_path / "a.png")
    expected = scorer(by_hand(Image.open(path), 64))
    torch.testing.assert_close(scorer(path), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(scorer(str(path)), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(scorer(Image.open(path)), expected, atol=1e-6, rtol=0)
    second = random_rgb(tmp_path / "b.jpg", size=(70, 90), seed=1)
    both = scorer([path, Image.open(second)])
    assert both.shape == (2, 1)
    torch.testing.assert_close(both[1:], scorer(by_hand(Image.open(second), 64)), atol=1e-6, rtol=0)


def test_unreadable_path_is_an_error(scorer, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageError, match="notes.png"):
        scorer(tmp_path / "notes.png")
    with pytest.raises(ImageError, match="absent.png"):
        scorer([tmp_path / "absent.png"])


def test_compute_directory(scorer, tmp_path):
    random_rgb(tmp_path / "b.png", seed=1)
    (tmp_path / "sub").mkdir()
    random_rgb(tmp_path / "sub" / "a.JPG", seed=2)
    random_rgb(tmp_path / "c.bmp", seed=3)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG junk")
    (tmp_path / "readme.txt").write_text("text")
    with pytest.warns(UserWarning, match="skipped 2 file"):
        scores, paths = scorer.compute_directory(tmp_path, return_paths=True, batch_size=2)
    names = [p.split("/")[-1] for p in paths]
    assert names == ["b.png", "c.bmp", "a.JPG"]
    expected = torch.cat([scorer(by_hand(Image.open(p), 64)) for p in paths])
    torch.testing.assert_close(scores, expected, atol=1e-6, rtol=0)
    with pytest.warns(UserWarning):
        torch.testing.assert_close(scorer(tmp_path), scores)


def test_image_conversions(tmp_path):
    rng = np.random.default_rng(5)
    gray = rng.integers(0, 256, (30, 20), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    loaded = load_image(tmp_path / "gray.png")
    assert loaded.shape == (3, 30, 20)
    assert torch.equal(loaded[0], torch.from_numpy(gray / 255.0).float())
    assert torch.equal(loaded[0], loaded[2])

    deep = rng.integers(0, 65536, (30, 20), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    loaded = load_image(tmp_path / "deep.png")
    torch.testing.assert_close(loaded[1], torch.from_numpy(deep / 65535.0).float())

    rgba = rng.integers(0, 256, (30, 20, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    loaded = load_image(tmp_path / "rgba.png", size=(30, 20))
    assert torch.equal(loaded, torch.from_numpy(rgba[..., :3] / 255.0).float().permute(2, 0, 1))

    Image.fromarray(rgba[..., :3]).convert("P").save(tmp_path / "palette.png")
    assert load_image(tmp_path / "palette.png", size=(16, 24)).shape == (3, 16, 24)


# -- generator loss and specs -------------------------------------------------------------------


def test_generator_loss(tigas_fixtures):
    model = TIGAS(tigas_fixtures / "tigas_full_small.pt", device="cpu").model
    loss = TIGASGeneratorLoss(model).train()
    data = np.load(tigas_fixtures / "tigas_full_small_io.npz")
    images = torch.from_numpy(data["input_0"]).requires_grad_(True)
    value = loss(images)
    value.backward()
    assert not model.training
    torch.testing.assert_close(value, 1 - torch.from_numpy(data["score_0"]).mean(), atol=1e-5, rtol=0)
    expected = torch.from_numpy(data["grad_0"])
    assert (images.grad - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", ["tigas", "tigas_generator"])
def test_specs_build_offline(name, tigas_fixtures):
    spec = catalog.get_spec(name)
    config = spec.resolve_config(spec.test_config)
    first, second = spec.instantiate(config), spec.instantiate(config)
    other = spec.instantiate({**config, "seed": 1})
    images = spec.sample_inputs(spec.sizes(1, config), seed=0)
    with torch.no_grad():
        out = first(*images)
        out = out if isinstance(out, tuple) else (out,)
        assert len(out) == len(spec.outputs)
        assert all(torch.equal(a, b) for a, b in zip(out, _tuple(second(*images))))
        assert not all(torch.equal(a, b) for a, b in zip(out, _tuple(other(*images))))
    for variant in spec.variants:
        built = spec.instantiate({**config, **variant})
        model = built if isinstance(built, TIGASModel) else built.model
        assert model.mode == variant["mode"]
    from_file = resolve_weights(
        checkpoint=tigas_fixtures / "tigas_full_small.pt", overrides={"num_attention_heads": 4}
    )
    assert from_file.model.mode == "full" and from_file.config["mode"] == "full"


def _tuple(value):
    return value if isinstance(value, tuple) else (value,)


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_spec_edge_cases_finite(mode):
    spec = catalog.get_spec("tigas")
    model = spec.instantiate(spec.resolve_config({**spec.test_config, "mode": mode}))
    assert set(spec.edge_inputs()) == {"all_black", "all_white", "constant_grey", "checkerboard"}
    for name, (images,) in spec.edge_inputs().items():
        images = images.clone().requires_grad_(True)
        score, logits = model(images)
        (grad,) = torch.autograd.grad(spec.objective(score), images)
        assert torch.isfinite(score).all() and torch.isfinite(logits).all(), name
        assert torch.isfinite(grad).all(), name


def test_preprocess_metadata_of_spec():
    spec = catalog.get_spec("tigas")
    meta = spec.metadata(spec.resolve_config({"img_size": 224, "input_range": "[-1,1]"}))
    assert meta == {
        "preprocess": '{"size": [224, 224], "range": "[-1,1]", "channel_order": "RGB", "layout": "NCHW"}'
    }
