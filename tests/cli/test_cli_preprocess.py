"""``lossport preprocess`` and the tensor file format it writes (lossport/tensorfile.py)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from lossport.cli import main
from lossport.errors import InvalidInputError
from lossport.io import tensorfile

CONTRACT = {"size": [48, 40], "range": "[0,1]", "channel_order": "RGB", "layout": "NCHW"}


def preprocess(*arguments):
    return CliRunner().invoke(main, ["preprocess", *map(str, arguments)])


def image(path: Path, size=(40, 30), seed=0) -> Path:
    """A random RGB image file of ``size`` (width, height)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def scorer_artifact(path: Path, contract=CONTRACT) -> Path:
    """A stand-in TorchScript artifact carrying lossport metadata (and a preprocessing contract)."""
    extra = {"lossport.spec": "stand_in"}
    if contract is not None:
        extra["lossport.preprocess"] = json.dumps(contract)
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(path), _extra_files=extra)
    return path


# -- the format ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tensor",
    [torch.rand(2, 3, 5, 7), torch.arange(-3, 9).reshape(3, 4), torch.tensor(2.5), torch.zeros(0, 4)],
    ids=["f32", "i64", "scalar", "empty"],
)
def test_round_trip(tmp_path, tensor):
    header = tensorfile.write(tmp_path / "t.bin", tensor, layout="NCHW", files=["ä.png"])
    array, read_header = tensorfile.read(tmp_path / "t.bin")
    assert read_header == header and header["files"] == ["ä.png"]
    assert array.dtype == tensor.numpy().dtype
    np.testing.assert_array_equal(array, tensor.numpy())


def test_bytes_are_as_documented(tmp_path):
    values = np.array([[1.5, -2.0, 3.25]], dtype=np.float32)
    tensorfile.write(tmp_path / "t.bin", values)
    raw = (tmp_path / "t.bin").read_bytes()
    assert raw[:4] == b"LPT1"
    (length,) = struct.unpack("<I", raw[4:8])
    assert (8 + length) % 8 == 0
    assert json.loads(raw[8 : 8 + length]) == {"shape": [1, 3], "dtype": "float32"}
    assert raw[8 + length :] == values.astype("<f4").tobytes()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: b"NOPE" + raw[4:], "not a lossport tensor file"),
        (lambda raw: raw[:-4], "truncated or corrupt"),
        (lambda raw: raw + b"\0", "truncated or corrupt"),
        (lambda raw: raw[:8] + b"x" + raw[9:], "corrupt tensor file header"),
        (lambda raw: raw.replace(b'"float32"', b'"float16"'), "'dtype' must be"),
        (lambda raw: raw.replace(b'"shape": [2, 2]', b'"shape": [2, -2]'), "'shape' must be"),
        (lambda raw: b"", "not a lossport tensor file"),
    ],
)
def test_read_rejects_damaged_files(tmp_path, damage, message):
    path = tmp_path / "t.bin"
    tensorfile.write(path, torch.ones(2, 2))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(InvalidInputError, match=message):
        tensorfile.read(path)


def test_read_missing_file(tmp_path):
    with pytest.raises(InvalidInputError, match="cannot read"):
        tensorfile.read(tmp_path / "absent.bin")


def test_write_rejects_other_dtypes(tmp_path):
    with pytest.raises(InvalidInputError, match="float32 or int64"):
        tensorfile.write(tmp_path / "t.bin", torch.ones(2, dtype=torch.float64))
    assert list(tmp_path.iterdir()) == []


# -- preprocess --random ---------------------------------------------------------------------


def test_random_is_deterministic(tmp_path):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        result = preprocess("--random", "2,3,8,6", "--seed", seed, "-o", tmp_path / f"{name}.bin")
        assert result.exit_code == 0, result.output
    a, header = tensorfile.read(tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()
    assert not np.array_equal(a, tensorfile.read(tmp_path / "c.bin")[0])
    expected = torch.rand((2, 3, 8, 6), generator=torch.Generator().manual_seed(7))
    np.testing.assert_array_equal(a, expected.numpy())
    assert header["seed"] == 7 and header["layout"] == "NCHW"


def test_random_of_any_rank(tmp_path):
    assert preprocess("--random", "4,50", "-o", tmp_path / "t.bin").exit_code == 0
    array, header = tensorfile.read(tmp_path / "t.bin")
    assert array.shape == (4, 50) and "layout" not in header


# -- preprocess IMAGES ------------------------------------------------------------------------


def test_images_at_size(tmp_path):
    files = [image(tmp_path / "a.png", (40, 30)), image(tmp_path / "b.jpg", (20, 50), seed=1)]
    result = preprocess(*files, "--size", "32,36", "-o", tmp_path / "batch.bin")
    assert result.exit_code == 0, result.output
    array, header = tensorfile.read(tmp_path / "batch.bin")
    assert array.shape == (2, 3, 32, 36) and array.dtype == np.float32
    assert array.min() >= 0.0 and array.max() <= 1.0
    assert header["files"] == [str(f) for f in files]
    assert {k: header[k] for k in ("layout", "range", "channel_order")} == {
        "layout": "NCHW",
        "range": "[0,1]",
        "channel_order": "RGB",
    }


def test_square_size(tmp_path):
    result = preprocess(image(tmp_path / "a.png"), "--size", "33", "-o", tmp_path / "batch.bin")
    assert result.exit_code == 0, result.output
    assert tensorfile.read(tmp_path / "batch.bin")[0].shape == (1, 3, 33, 33)


def test_size_from_the_model_contract(tmp_path):
    model = scorer_artifact(tmp_path / "scorer.pt")
    result = preprocess(image(tmp_path / "a.png"), "--model", model, "-o", tmp_path / "batch.bin")
    assert result.exit_code == 0, result.output
    assert tensorfile.read(tmp_path / "batch.bin")[0].shape == (1, 3, 48, 40)


def test_the_whole_model_contract_is_followed(tmp_path):
    contract = {"size": [20, 24], "range": "[-1,1]", "channel_order": "BGR", "layout": "NHWC"}
    model = scorer_artifact(tmp_path / "scorer.pt", contract)
    source = image(tmp_path / "a.png")
    assert preprocess(source, "--model", model, "-o", tmp_path / "batch.bin").exit_code == 0
    assert preprocess(source, "--size", "20,24", "-o", tmp_path / "plain.bin").exit_code == 0
    array, header = tensorfile.read(tmp_path / "batch.bin")
    plain = tensorfile.read(tmp_path / "plain.bin")[0]
    np.testing.assert_allclose(array, (plain * 2 - 1)[:, ::-1].transpose(0, 2, 3, 1), atol=1e-6)
    assert {k: header[k] for k in ("range", "channel_order", "layout")} == {
        k: contract[k] for k in ("range", "channel_order", "layout")
    }


def test_a_model_without_contract_gets_the_default(tmp_path):
    model = scorer_artifact(tmp_path / "loss.pt", contract=None)
    result = preprocess(image(tmp_path / "a.png"), "--model", model, "-o", tmp_path / "batch.bin")
    assert result.exit_code == 0, result.output
    assert tensorfile.read(tmp_path / "batch.bin")[0].shape == (1, 3, 256, 256)


def test_folders_are_scanned(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    image(folder / "b.png")
    image(folder / "sub" / "a.jpg", seed=1)
    (folder / "notes.txt").write_text("not an image")
    result = preprocess(folder, "--size", "16", "-o", tmp_path / "batch.bin")
    assert result.exit_code == 0, result.output
    array, header = tensorfile.read(tmp_path / "batch.bin")
    assert array.shape == (2, 3, 16, 16)
    assert header["files"] == [str(folder / "b.png"), str(folder / "sub" / "a.jpg")]
    assert "skipped" in result.output and "notes.txt" in result.output


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["{missing}", "--size", "16"], "missing.png"),
        (["{text}", "--size", "16"], "not-an-image.png"),
        (["{good}", "--size", "0"], "--size expects"),
        (["{good}", "--size", "big"], "--size expects"),
        (["{good}", "--size", "1,2,3"], "--size expects"),
        (["{good}", "--size", "8", "--model", "{model}"], "not both"),
        (["{good}"], "give the image size"),
        (["{good}", "--model", "{text}"], "not a readable ONNX model"),
        (["{good}", "--model", "{missing}"], "missing.png"),
        ([], "give IMAGES"),
        (["{good}", "--random", "2,3"], "not both"),
        (["--random", "2,x"], "--random expects"),
        (["--random", "2,3", "--size", "4"], "apply to images"),
    ],
)
def test_bad_input_is_a_one_line_error_and_writes_nothing(tmp_path, arguments, message):
    paths = {
        "good": image(tmp_path / "good.png"),
        "missing": tmp_path / "missing.png",
        "text": tmp_path / "not-an-image.png",
        "model": scorer_artifact(tmp_path / "scorer.pt"),
    }
    paths["text"].write_text("this is not an image")
    output = tmp_path / "out" / "batch.bin"
    output.parent.mkdir()
    output.write_bytes(b"previous contents")
    result = preprocess(*[a.format(**paths) for a in arguments], "-o", output)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert output.read_bytes() == b"previous contents"
    assert [p.name for p in output.parent.iterdir()] == ["batch.bin"]


def test_missing_output_folder(tmp_path):
    result = preprocess("--random", "2", "-o", tmp_path / "absent" / "t.bin")
    assert result.exit_code == 2 and "does not exist" in result.output
