"""A labelled folder of real photos and generated-looking images, built from the photos that
scikit-image ships (``skimage.data``), for judging image scorers where scores spread.

    from imageset import build_imageset      # tests/ on sys.path (tests/conftest.py does it)
    images = build_imageset(Path("/tmp/imageset"))
    images.folder("eval")                      # -> /tmp/imageset/eval, for --images DIR

Layout under ``root`` (sources, licences and kinds: README.md beside this file)::

    manifest.json                  one entry per image: path, split, label, kind, source, size
    train/real/<source>_<k>.jpg|png
    train/generated/<kind>_<source>_<k>.jpg|png
    eval/real/...  eval/generated/...

Conventions:

- ``label`` 1 = real photo, 0 = generated-looking (TIGAS's score convention: 1 = real).
- Splits are disjoint by *source photo*: no photo that feeds ``train`` (its crops, or the
  generated images derived from it) feeds ``eval``. Each split has as many generated images as
  real ones.
- Real images are crops of a photo at a seeded position, downscaled by a factor >= 1 (never
  upsampled), square or not, 192-512 px a side and at most 90% of the photo's, saved as PNG or
  as JPEG of quality 60-95.
- Generated-looking images (``KINDS``): upsampled noise, smooth gradients, heavily blurred
  crops, crops downscaled and re-encoded as JPEG of quality 5-15 then upscaled, crops whose
  patches are shuffled, crops upscaled 4x with nearest-neighbour (blocky).
- Deterministic: every image is drawn from its own ``numpy`` generator seeded with
  ``(seed, split, source, k)``, and encoded with Pillow's fixed settings; two builds with the
  same seed and the same scikit-image and Pillow releases are byte-identical.
- Cached: a folder whose ``manifest.json`` records the same ``VERSION`` and ``seed`` is reused
  as it is; anything else is rebuilt from scratch. The manifest is written last, so an
  interrupted build is never taken for a finished one.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageFilter

VERSION = 2
SEED = 20240601
MANIFEST = "manifest.json"
SPLITS = ("train", "eval")
REAL, GENERATED = 1, 0

# Source photos by split (skimage.data function names); disjoint. Licences: README.md.
SOURCES: Dict[str, Tuple[str, ...]] = {
    "train": ("astronaut", "coffee", "hubble_deep_field", "immunohistochemistry", "camera", "grass", "brick"),
    "eval": ("chelsea", "retina", "rocket", "gravel", "coins"),
}
# Real crops per source photo, by split.
CROPS_PER_SOURCE = {"train": 20, "eval": 16}
ASPECTS = ((1, 1), (1, 1), (1, 1), (3, 4), (4, 3), (2, 3), (3, 2))
LONG_SIDES = (256, 256, 256, 320, 384, 512, 224)
JPEG_QUALITIES = (95, 90, 80, 70, 60)
PNG_SHARE = 0.25
MIN_SIDE = 192
CROP_SHARE = 0.9  # an output side spans at most this share of the photo: crops differ


@dataclass(frozen=True)
class Entry:
    """One image of the set; ``path`` is relative to the set's root."""

    path: str
    split: str
    label: int
    kind: str
    source: str
    width: int
    height: int


@dataclass(frozen=True)
class ImageSet:
    """A built image set: its root folder and its manifest entries."""

    root: Path
    entries: Tuple[Entry, ...]

    def folder(self, split: str) -> Path:
        """The folder holding every image of ``split`` (real and generated)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.root / split

    def select(self, split: Optional[str] = None, label: Optional[int] = None) -> List[Entry]:
        """Entries of ``split`` and ``label`` (``None``: any), in manifest order."""
        return [
            e
            for e in self.entries
            if (split is None or e.split == split) and (label is None or e.label == label)
        ]

    def paths(self, split: Optional[str] = None, label: Optional[int] = None) -> List[Path]:
        """Absolute paths of :meth:`select`."""
        return [self.root / e.path for e in self.select(split, label)]


def load_photo(name: str) -> np.ndarray:
    """The ``skimage.data`` photo ``name`` as ``uint8 [H, W, 3]`` (grey replicated to RGB)."""
    import skimage.data

    photo = np.asarray(getattr(skimage.data, name)())
    if photo.ndim == 2:
        photo = np.repeat(photo[:, :, None], 3, axis=2)
    return np.ascontiguousarray(photo[:, :, :3].astype(np.uint8))


def build_imageset(root: Path, seed: int = SEED) -> ImageSet:
    """Build (or reuse, see the module docstring) the image set under ``root``."""
    root = Path(root)
    cached = _read_manifest(root)
    if cached is not None and cached.get("version") == VERSION and cached.get("seed") == seed:
        return ImageSet(root, tuple(Entry(**e) for e in cached["images"]))
    for split in SPLITS:
        shutil.rmtree(root / split, ignore_errors=True)
    (root / MANIFEST).unlink(missing_ok=True)
    entries: List[Entry] = []
    for split_index, split in enumerate(SPLITS):
        entries += _build_split(root, split, split_index, seed)
    manifest = {
        "version": VERSION,
        "seed": seed,
        "sources": {split: list(names) for split, names in SOURCES.items()},
        "images": [asdict(e) for e in entries],
    }
    temporary = root / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=1))
    temporary.replace(root / MANIFEST)
    return ImageSet(root, tuple(entries))


def _read_manifest(root: Path) -> Optional[dict]:
    try:
        return json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _build_split(root: Path, split: str, split_index: int, seed: int) -> List[Entry]:
    entries: List[Entry] = []
    kinds = list(KINDS)
    count = 0
    for source_index, source in enumerate(SOURCES[split]):
        photo = load_photo(source)
        for k in range(CROPS_PER_SOURCE[split]):
            rng = np.random.default_rng([seed, split_index, source_index, k, REAL])
            entries.append(_save(root, split, REAL, "photo", source, k, real_crop(photo, rng), rng))
            rng = np.random.default_rng([seed, split_index, source_index, k, GENERATED])
            kind = kinds[count % len(kinds)]
            count += 1
            image = KINDS[kind](photo, rng)
            entries.append(_save(root, split, GENERATED, kind, source, k, image, rng))
    return entries


def _save(
    root: Path, split: str, label: int, kind: str, source: str, k: int, image: np.ndarray, rng
) -> Entry:
    folder = "real" if label == REAL else "generated"
    stem = f"{source}_{k:02d}" if label == REAL else f"{kind}_{source}_{k:02d}"
    picture = Image.fromarray(image)
    if rng.random() < PNG_SHARE:
        relative = f"{split}/{folder}/{stem}.png"
        data = _encode(picture, "PNG")
    else:
        relative = f"{split}/{folder}/{stem}.jpg"
        data = _encode(picture, "JPEG", int(rng.choice(JPEG_QUALITIES)))
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Entry(relative, split, label, kind, source, picture.width, picture.height)


def _encode(picture: Image.Image, fmt: str, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        picture.save(buffer, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
    else:
        picture.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def output_size(rng, limit: Tuple[int, int]) -> Tuple[int, int]:
    """A seeded ``(height, width)``: an aspect of ``ASPECTS``, a long side of ``LONG_SIDES``,
    shrunk (keeping the aspect) to fit ``limit`` and at least ``MIN_SIDE`` on the short side
    when the limit allows."""
    ah, aw = ASPECTS[int(rng.integers(len(ASPECTS)))]
    if rng.random() < 0.5:
        ah, aw = aw, ah
    long_side = LONG_SIDES[int(rng.integers(len(LONG_SIDES)))]
    height, width = (long_side, long_side * aw // ah) if ah >= aw else (long_side * ah // aw, long_side)
    shrink = min(1.0, limit[0] / height, limit[1] / width)
    height, width = int(height * shrink), int(width * shrink)
    grow = min(max(1.0, MIN_SIDE / min(height, width)), limit[0] / height, limit[1] / width)
    return int(height * grow), int(width * grow)


def random_crop(photo: np.ndarray, rng, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """A crop of ``photo`` at a seeded position, downscaled (Pillow bilinear, antialiased) by a
    seeded factor from 1 to as much as the photo allows (at most 2.5) to ``size`` (default:
    :func:`output_size`)."""
    height, width = photo.shape[:2]
    out_h, out_w = size or output_size(rng, (height, width))
    most = min(2.5, height / out_h, width / out_w)
    factor = 1.0 + rng.random() * max(0.0, most - 1.0)
    crop_h, crop_w = min(height, round(out_h * factor)), min(width, round(out_w * factor))
    top = int(rng.integers(height - crop_h + 1))
    left = int(rng.integers(width - crop_w + 1))
    crop = Image.fromarray(photo[top : top + crop_h, left : left + crop_w])
    if (crop_h, crop_w) != (out_h, out_w):
        crop = crop.resize((out_w, out_h), Image.BILINEAR)
    return np.asarray(crop)


def real_crop(photo: np.ndarray, rng) -> np.ndarray:
    """:func:`random_crop` with output sides within ``CROP_SHARE`` of the photo's, so that no
    two crops of a small photo are the whole photo at the same size."""
    height, width = photo.shape[:2]
    return random_crop(photo, rng, output_size(rng, (int(height * CROP_SHARE), int(width * CROP_SHARE))))


def _fit(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    return np.clip((values - low) / max(high - low, 1e-6) * 255.0, 0, 255).round().astype(np.uint8)


def upsampled_noise(photo: np.ndarray, rng) -> np.ndarray:
    """Gaussian noise on a grid 8-32x coarser than the image, upsampled bicubically."""
    height, width = output_size(rng, (512, 512))
    cell = int(rng.choice((8, 16, 32)))
    coarse = rng.normal(size=(max(2, height // cell), max(2, width // cell), 3))
    channels = [
        np.asarray(Image.fromarray(coarse[:, :, c].astype(np.float32)).resize((width, height), Image.BICUBIC))
        for c in range(3)
    ]
    return _fit(np.stack(channels, axis=2))


def smooth_gradient(photo: np.ndarray, rng) -> np.ndarray:
    """A linear blend of two random colours along a random direction, plus a radial term."""
    height, width = output_size(rng, (512, 512))
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    angle = rng.random() * 2 * np.pi
    t = np.cos(angle) * x + np.sin(angle) * y
    cy, cx = rng.random(2)
    r = np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
    start, end, ring = rng.random((3, 3)) * 255.0
    mix = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    image = start * (1 - mix[..., None]) + end * mix[..., None] + (ring - 128.0) * r[..., None] * 0.5
    return np.clip(image, 0, 255).round().astype(np.uint8)


def heavy_blur(photo: np.ndarray, rng) -> np.ndarray:
    """A photo crop under a Gaussian blur of radius 1.5-6 px."""
    crop = Image.fromarray(random_crop(photo, rng))
    return np.asarray(crop.filter(ImageFilter.GaussianBlur(1.5 + 4.5 * rng.random())))


def reencoded(photo: np.ndarray, rng) -> np.ndarray:
    """A photo crop downscaled 4-8x, JPEG-encoded at quality 5-15, upscaled back bilinearly."""
    crop = Image.fromarray(random_crop(photo, rng))
    factor = int(rng.choice((4, 6, 8)))
    small = crop.resize((max(8, crop.width // factor), max(8, crop.height // factor)), Image.BILINEAR)
    decoded = Image.open(io.BytesIO(_encode(small, "JPEG", int(rng.integers(5, 16))))).convert("RGB")
    return np.asarray(decoded.resize(crop.size, Image.BILINEAR))


def patch_shuffled(photo: np.ndarray, rng) -> np.ndarray:
    """A photo crop (sides a multiple of the patch) cut into 16-64 px patches, shuffled."""
    patch = int(rng.choice((16, 32, 64)))
    height, width = output_size(rng, photo.shape[:2])
    height, width = max(patch, height // patch * patch), max(patch, width // patch * patch)
    crop = random_crop(photo, rng, (height, width))
    rows, cols = height // patch, width // patch
    tiles = (
        crop.reshape(rows, patch, cols, patch, 3)
        .transpose(0, 2, 1, 3, 4)
        .reshape(rows * cols, patch, patch, 3)
    )
    tiles = tiles[rng.permutation(rows * cols)]
    return np.ascontiguousarray(
        tiles.reshape(rows, cols, patch, patch, 3).transpose(0, 2, 1, 3, 4).reshape(height, width, 3)
    )


def blocky(photo: np.ndarray, rng) -> np.ndarray:
    """A photo crop downscaled 4x and upscaled back with nearest-neighbour (4x4 blocks)."""
    crop = Image.fromarray(random_crop(photo, rng))
    small = crop.resize((max(8, crop.width // 4), max(8, crop.height // 4)), Image.BILINEAR)
    return np.asarray(small.resize(crop.size, Image.NEAREST))


KINDS: Dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "noise": upsampled_noise,
    "gradient": smooth_gradient,
    "blur": heavy_blur,
    "reencoded": reencoded,
    "shuffled": patch_shuffled,
    "blocky": blocky,
}


def split_sources(entries: Sequence[Entry]) -> Dict[str, set]:
    """The source photos each split draws on."""
    return {split: {e.source for e in entries if e.split == split} for split in SPLITS}
