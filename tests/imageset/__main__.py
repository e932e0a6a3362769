"""``python -m imageset DIR [--seed N]`` (with ``tests`` on ``PYTHONPATH``): build the image set
in ``DIR`` (or reuse it) and print its counts."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from imageset import GENERATED, REAL, SEED, SPLITS, build_imageset

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", type=Path)
parser.add_argument("--seed", type=int, default=SEED)
args = parser.parse_args()
images = build_imageset(args.folder, args.seed)
for split in SPLITS:
    kinds = Counter(e.kind for e in images.select(split, GENERATED))
    print(
        f"{images.folder(split)}: {len(images.select(split, REAL))} real, "
        f"{len(images.select(split, GENERATED))} generated ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})"
    )
