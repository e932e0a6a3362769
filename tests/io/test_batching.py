"""Batches of decoded images: the same batches with and without worker threads, grouping by
shape for images kept at their own size, bounded read-ahead, and the skip/error policy."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from lossport.errors import ImageError
from lossport.io import batching
from lossport.io.batching import MAX_GROUPS, load_batches
from lossport.io.images import ImageSource, collect_sources, load_image


def write_images(folder, shapes):
    rng = np.random.default_rng(1)
    for index, (height, width) in enumerate(shapes):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:03d}.png")
    return collect_sources([folder])[0]


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_fixed_size_keeps_order_and_pixels(tmp_path, workers):
    sources = write_images(tmp_path, [(20 + i, 30 - i) for i in range(11)])
    batches = list(load_batches(sources, (16, 12), 4, [], workers=workers))
    assert [len(names) for names, _ in batches] == [4, 4, 3]
    names = [n for batch_names, _ in batches for n in batch_names]
    assert names == [str(s.path) for s in sources]
    images = torch.cat([images for _, images in batches])
    for name, image in zip(names, images):
        torch.testing.assert_close(image, load_image(name, (16, 12)), rtol=0, atol=0)


@pytest.mark.parametrize("workers", [0, 2])
def test_native_size_batches_hold_one_shape(tmp_path, workers):
    shapes = [(8, 8), (8, 9), (8, 8), (9, 8), (8, 9), (8, 8), (7, 7), (6, 6), (5, 5), (4, 4), (3, 3), (8, 8)]
    sources = write_images(tmp_path, shapes)
    batches = list(load_batches(sources, None, 3, [], workers=workers))
    seen = []
    for names, images in batches:
        assert 1 <= len(names) <= 3 and images.shape[0] == len(names)
        for name in names:
            assert tuple(images.shape[2:]) == shapes[int(name[-7:-4])]
        seen += names
    assert sorted(seen) == sorted(str(s.path) for s in sources)


def test_read_ahead_is_bounded(tmp_path, monkeypatch):
    """However many sources, at most prefetch * batch_size images are decoded ahead of the
    consumer, plus partial batches."""
    sources = write_images(tmp_path, [(4, 4)] * 60)
    started = []
    lock = threading.Lock()
    real = batching.read_source

    def counting(source, size):
        with lock:
            started.append(source)
        return real(source, size)

    monkeypatch.setattr(batching, "read_source", counting)
    consumed = 0
    for names, _ in load_batches(sources, (4, 4), 5, [], workers=2, prefetch=2):
        consumed += len(names)
        assert len(started) - consumed <= 2 * 5 + MAX_GROUPS * 5
    assert consumed == 60


def test_closing_early_cancels_queued_work(tmp_path, monkeypatch):
    sources = write_images(tmp_path, [(4, 4)] * 40)
    calls = []
    real = batching.read_source
    monkeypatch.setattr(batching, "read_source", lambda s, size: calls.append(s) or real(s, size))
    batches = load_batches(sources, (4, 4), 2, [], workers=2, prefetch=2)
    next(batches)
    batches.close()
    assert len(calls) <= 2 + 2 * 2 + 2  # the first batch, the read-ahead, and what was running


@pytest.mark.parametrize("workers", [0, 2])
def test_found_unreadable_files_are_skipped_explicit_ones_raise(tmp_path, workers):
    sources = write_images(tmp_path, [(5, 5)] * 3)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    found = collect_sources([tmp_path])[0]
    skipped = []
    names = [n for batch, _ in load_batches(found, (5, 5), 2, skipped, workers=workers) for n in batch]
    assert names == [str(s.path) for s in sources]
    assert [s.path for s in skipped] == [str(tmp_path / "bad.png")]
    explicit = [*sources, ImageSource(tmp_path / "bad.png", explicit=True)]
    with pytest.raises(ImageError, match="bad.png"):
        list(load_batches(explicit, (5, 5), 2, [], workers=workers))
