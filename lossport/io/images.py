"""Image files to tensors, independent of any model format.

Convention: an image becomes a float32 tensor ``[3, H, W]`` (RGB, channels first) with values
in ``[0, 1]``. Conversions: grayscale (8- and 16-bit) is replicated to three channels, 16-bit
values are scaled by 1/65535 (not clipped at 255 as Pillow's own conversion does), an alpha
channel is dropped (no compositing, as upstream TIGAS's ``convert("RGB")``), palette, CMYK and
bilevel images are converted by Pillow. Resizing is Pillow's bilinear filter (antialiased when
shrinking), as torchvision's ``Resize`` does on PIL images.

Directory scans are recursive; files with the suffixes in ``IMAGE_SUFFIXES`` (any case) are
images, hidden files and folders are ignored, every other file is reported as not an image.
Batches of decoded images: :mod:`lossport.io.batching`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lossport.errors import ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
PathLike = Union[str, Path]
Size = Tuple[int, int]  # (height, width)
_HIGH_BIT_MODES = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I": 65535.0}


def open_image(path: PathLike) -> Image.Image:
    """Open and decode an image file; :class:`ImageError` names the file when it cannot."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (Pillow cannot identify it)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from None


def image_to_tensor(image: Image.Image, size: Optional[Size] = None) -> torch.Tensor:
    """A PIL image -> float32 ``[3, H, W]`` in ``[0, 1]``, resized to ``size = (H, W)`` if given.

    See the module docstring for the colour conversions.
    """
    scale = _HIGH_BIT_MODES.get(image.mode)
    if scale is not None:
        plane = Image.fromarray(np.asarray(image, dtype=np.float32) / scale, mode="F")
        if size is not None:
            plane = plane.resize((size[1], size[0]), Image.BILINEAR)
        array = np.clip(np.asarray(plane, dtype=np.float32), 0.0, 1.0)
        return torch.from_numpy(np.ascontiguousarray(array)).unsqueeze(0).expand(3, -1, -1).clone()
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode != "RGB":
        image = image.convert("RGB")
    if size is not None:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def load_image(path: PathLike, size: Optional[Size] = None) -> torch.Tensor:
    """:func:`open_image` then :func:`image_to_tensor`."""
    return image_to_tensor(open_image(path), size)


@dataclass(frozen=True)
class Skipped:
    """A file that was not scored, and why."""

    path: str
    reason: str


def scan_directory(directory: PathLike) -> Tuple[List[Path], List[Skipped]]:
    """Image files under ``directory`` (recursive, sorted by path) and the other files,
    skipped."""
    directory = Path(directory)
    images: List[Path] = []
    others: List[Skipped] = []
    for root, folders, files in os.walk(directory):
        folders[:] = [f for f in folders if not f.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = Path(root) / name
            if path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(path)
            else:
                others.append(
                    Skipped(str(path), f"not an image file (suffix not one of {', '.join(IMAGE_SUFFIXES)})")
                )
    return sorted(images), sorted(others, key=lambda item: item.path)


@dataclass(frozen=True)
class ImageSource:
    """One image to score: ``explicit`` ones (named by the user) must be readable; the ones
    found in a directory are skipped when they are not. ``key`` names the image independently
    of where the dataset is mounted: the path relative to the directory it was found in (POSIX
    separators), or the path as given for an explicit file."""

    path: Path
    explicit: bool
    key: Optional[str] = None

    @property
    def stable_key(self) -> str:
        return self.key if self.key is not None else self.path.as_posix()


def collect_sources(paths: Sequence[PathLike]) -> Tuple[List[ImageSource], List[Skipped]]:
    """Expand files and directories into image sources; a missing path is an error."""
    sources: List[ImageSource] = []
    skipped: List[Skipped] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found, others = scan_directory(path)
            sources.extend(ImageSource(p, False, p.relative_to(path).as_posix()) for p in found)
            skipped.extend(others)
        elif path.exists():
            sources.append(ImageSource(path, True, path.as_posix()))
        else:
            raise ImageError(f"{path}: no such file or directory")
    return sources, skipped


def read_source(source: ImageSource, size: Optional[Size]) -> Union[torch.Tensor, Skipped]:
    """The image ``[3, H, W]`` (resized to ``size`` if given), or why a found file was skipped;
    an unreadable explicit source raises :class:`ImageError`."""
    try:
        return load_image(source.path, size)
    except ImageError as exc:
        if source.explicit:
            raise
        return Skipped(str(source.path), str(exc).split(": ", 1)[-1])
