"""Calibration images for int8 artifacts: which images, through which preprocessing, and the
digest an artifact records of them.

Calibration feeds images to the fp32 model to measure each activation's range. The images go
through the spec's preprocessing contract (``lossport.preprocess``: resize, value range, channel
order, as ``lossport score`` feeds them), in batches of :data:`BATCH`. A spec can be calibrated
when it takes one image batch ``[batch, 3, height, width]`` and records a contract; anything else
has no images to calibrate on.

Sets: ``--calibrate DIR`` (every image file under ``DIR``, recursive, sorted by path; at most
:data:`MAX_IMAGES`: beyond that, :data:`MAX_IMAGES` evenly spaced in path order), or by default
the built-in set shipped in ``calibration_data/`` (36 photo crops and generated-looking images,
provenance and licences in its README). Every image must be readable: an unreadable one stops
the export, naming the file.

Digest (``CalibrationRecord.sha256``): sha256 over the concatenated sha256 digests (32 raw
bytes each) of the images' file bytes, sorted: it identifies the set by content, whatever the
file names, folder or order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from lossport.artifact.metadata import CalibrationRecord, preprocess_of
from lossport.errors import ConfigError
from lossport.io.batching import load_batches
from lossport.io.digest import sha256_file
from lossport.io.images import IMAGE_SUFFIXES, ImageSource, scan_directory
from lossport.spec import Spec
from lossport.spec.preprocess import Preprocess, takes_image_batch

CALIBRATED = ("int8",)  # the precisions that need a calibration set
BUILTIN = Path(__file__).resolve().with_name("calibration_data")
MAX_IMAGES = 128
BATCH = 8


@dataclass(frozen=True)
class CalibrationSet:
    """The images to calibrate on, the contract that turns them into the input named
    ``input_name``, and whether they are the built-in set."""

    paths: Tuple[Path, ...]
    preprocess: Preprocess
    input_name: str
    builtin: bool

    @property
    def record(self) -> CalibrationRecord:
        """What the artifact's metadata records of the set (never a path)."""
        return CalibrationRecord(images=len(self.paths), sha256=set_digest(self.paths), builtin=self.builtin)

    def batches(self) -> Iterator[np.ndarray]:
        """The preprocessed images, float32 arrays of up to :data:`BATCH` images each."""
        sources = [ImageSource(p, explicit=True) for p in self.paths]
        for _, images in load_batches(sources, self.preprocess.size, BATCH, []):
            yield self.preprocess.apply(images).to(torch.float32).numpy()


def set_digest(paths: Sequence[Path]) -> str:
    """The set's sha256 (see the module docstring)."""
    digests = sorted(bytes.fromhex(sha256_file(p)) for p in paths)
    return hashlib.sha256(b"".join(digests)).hexdigest()


def calibration_set(
    spec: Spec,
    config: Mapping[str, Any],
    folder: Optional[Path],
    *,
    precision: str,
    dynamic: Sequence[str],
    with_grad: bool,
) -> CalibrationSet:
    """The calibration set of an export of ``spec`` at ``config`` to ``precision``, from
    ``folder`` (``None``: the built-in set). :class:`ConfigError`, one line, when the export
    cannot be calibrated: a gradient graph, a spec that takes no image batch or records no
    preprocessing contract, static image sides other than the contract's, a missing or empty
    folder."""
    if with_grad:
        raise ConfigError(
            f"--precision {precision} with --with-grad: a quantized gradient graph computes no "
            f"meaningful gradient (rounding has zero derivative); export gradients as fp32 or fp16"
        )
    if not takes_image_batch(spec.inputs):
        raise ConfigError(
            f"--precision {precision} calibrates on images, and {spec.name} takes no image batch "
            f"(inputs {', '.join(f'{t.name}{list(t.shape)}' for t in spec.inputs)}, not one "
            f"[batch, 3, height, width]); use fp32 or fp16"
        )
    meta = spec.metadata(config) if spec.metadata is not None else {}
    contract = preprocess_of(meta, spec.name)
    if contract is None or contract.layout != "NCHW":
        raise ConfigError(
            f"--precision {precision} feeds calibration images through the spec's preprocessing "
            f"contract, and {spec.name} records no NCHW one; use fp32 or fp16"
        )
    image = spec.inputs[0]
    sizes = spec.sizes(0, config)
    fixed = [
        f"{dim}={sizes[dim]}"
        for dim, side in zip(image.shape[2:], contract.size)
        if isinstance(dim, str) and dim not in dynamic and sizes.get(dim) != side
    ]
    if fixed:
        raise ConfigError(
            f"--precision {precision} calibrates at the contract's {contract.size[0]}x"
            f"{contract.size[1]} images, but this export fixes {', '.join(fixed)}; keep height and "
            f"width dynamic (--dynamic all)"
        )
    paths, builtin = (_folder_images(folder), False) if folder is not None else (_builtin_images(), True)
    return CalibrationSet(tuple(paths), contract, image.name, builtin)


def _folder_images(folder: Path) -> list:
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--calibrate {folder}: no such folder; give a folder of calibration images")
    images, _ = scan_directory(folder)
    if not images:
        raise ConfigError(
            f"--calibrate {folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in it; give a "
            f"folder of calibration images"
        )
    if len(images) > MAX_IMAGES:
        images = [images[i * len(images) // MAX_IMAGES] for i in range(MAX_IMAGES)]
    return images


def _builtin_images() -> list:
    images, _ = scan_directory(BUILTIN)
    return images
