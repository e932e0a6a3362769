"""Make lossport's built-in calibration set (``lossport/export/calibration_data/``) from the
photos scikit-image ships, with the image set's crops and generated-looking kinds.

    python tests/export/make_calibration_set.py [FOLDER]     (default: the package folder)

Per photo of ``PHOTOS`` (public domain or CC0, all from the image set's *train* split, none
from its eval split): ``REAL_PER_PHOTO`` seeded crops and as many generated-looking images (the
image set's ``KINDS``, cycled), each resized to ``SIZE`` x ``SIZE`` (Pillow bilinear) and saved
as JPEG quality ``QUALITY``. Every image is drawn from its own generator seeded with
``(SEED, photo, k, label)``.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import List

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, for the image set

from imageset import GENERATED, KINDS, REAL, SOURCES, load_photo, random_crop

PHOTOS = ("astronaut", "coffee", "camera", "hubble_deep_field", "grass", "brick")
REAL_PER_PHOTO = 3
SIZE = 256
QUALITY = 90
SEED = 1107
PACKAGE_FOLDER = HERE.parents[1] / "lossport" / "export" / "calibration_data"

assert set(PHOTOS) <= set(SOURCES["train"]), "calibration photos must come from the train split"


def encode(image: np.ndarray) -> bytes:
    """``image`` resized to SIZE x SIZE and JPEG-encoded."""
    picture = Image.fromarray(image)
    if picture.size != (SIZE, SIZE):
        picture = picture.resize((SIZE, SIZE), Image.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=QUALITY, subsampling=0)
    return buffer.getvalue()


def make_calibration_set(folder: Path) -> List[Path]:
    """Write the set into ``folder`` (created); returns the written files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kinds = list(KINDS)
    written = []
    for p, name in enumerate(PHOTOS):
        photo = load_photo(name)
        for k in range(REAL_PER_PHOTO):
            rng = np.random.default_rng([SEED, p, k, REAL])
            path = folder / f"real_{name}_{k}.jpg"
            path.write_bytes(encode(random_crop(photo, rng, (SIZE, SIZE))))
            written.append(path)
            rng = np.random.default_rng([SEED, p, k, GENERATED])
            kind = kinds[(p * REAL_PER_PHOTO + k) % len(kinds)]
            path = folder / f"generated_{kind}_{name}_{k}.jpg"
            path.write_bytes(encode(KINDS[kind](photo, rng)))
            written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE_FOLDER
    files = make_calibration_set(target)
    print(f"wrote {len(files)} images to {target} ({sum(f.stat().st_size for f in files)} bytes)")
