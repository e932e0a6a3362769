"""The image set of tests/imageset: counts, labels, splits disjoint by source photo, sizes that
exercise resizing, and byte-identical rebuilds."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
from imageset import GENERATED, KINDS, MANIFEST, REAL, SPLITS, build_imageset
from PIL import Image


def test_at_least_200_real_photos_and_as_many_generated(imageset):
    assert len(imageset.select(label=REAL)) >= 200
    for split in SPLITS:
        real, generated = imageset.select(split, REAL), imageset.select(split, GENERATED)
        assert len(real) == len(generated) > 0
        assert {e.kind for e in real} == {"photo"}
        assert set(Counter(e.kind for e in generated)) == set(KINDS)


def test_labels_match_folders_and_files_hold_what_the_manifest_says(imageset):
    for entry in imageset.entries:
        path = imageset.root / entry.path
        assert path.parts[-3:-1] == (entry.split, "real" if entry.label == REAL else "generated")
        with Image.open(path) as image:
            assert image.mode == "RGB" and image.size == (entry.width, entry.height)


def test_split_folders_hold_only_their_images(imageset):
    for split in SPLITS:
        on_disk = sorted(p for p in imageset.folder(split).rglob("*") if p.is_file())
        assert on_disk == sorted(imageset.paths(split))


def test_splits_share_no_source_photo(imageset):
    sources = {split: {e.source for e in imageset.select(split)} for split in SPLITS}
    assert sources["train"] and sources["eval"] and not sources["train"] & sources["eval"]


def test_real_photos_are_distinct_crops_of_varied_size(imageset):
    real = imageset.select(label=REAL)
    sizes = Counter((e.width, e.height) for e in real)
    assert any(w != h for w, h in sizes) and any(max(w, h) > 256 for w, h in sizes)
    assert min(min(w, h) for w, h in sizes) >= 128
    # no two crops of the same photo are the same pixels
    digests = Counter(np.asarray(Image.open(imageset.root / e.path)).tobytes() for e in real)
    assert max(digests.values()) == 1
    assert {p.suffix for p in imageset.paths(label=REAL)} == {".jpg", ".png"}


def test_generated_images_are_smoother_than_photos_on_the_whole(imageset):
    """A sanity check on the labels, independent of any scorer: the mean absolute difference of
    neighbouring pixels of a blurred or noise image is small next to a photo's."""

    def roughness(entry) -> float:
        pixels = np.asarray(Image.open(imageset.root / entry.path).convert("L"), dtype=np.float64)
        return float(np.mean(np.abs(np.diff(pixels, axis=1))))

    real = np.median([roughness(e) for e in imageset.select("eval", REAL)])
    smooth = [e for e in imageset.select("eval", GENERATED) if e.kind in ("noise", "gradient", "blur")]
    assert np.median([roughness(e) for e in smooth]) < real / 2


def test_rebuilds_are_byte_identical_and_a_finished_set_is_reused(imageset, tmp_path):
    again = build_imageset(tmp_path / "again")
    assert again.entries == imageset.entries
    for entry in imageset.entries:
        assert (again.root / entry.path).read_bytes() == (imageset.root / entry.path).read_bytes(), entry.path
    marker = again.root / again.entries[0].path
    marker.write_bytes(b"kept")
    assert build_imageset(again.root).entries == again.entries and marker.read_bytes() == b"kept"


def test_an_unfinished_or_other_seed_folder_is_rebuilt(tmp_path):
    root = tmp_path / "set"
    (root / "train" / "real").mkdir(parents=True)
    (root / "train" / "real" / "stale.png").write_bytes(b"left over")
    (root / MANIFEST).write_text(json.dumps({"version": -1, "seed": 0, "images": []}))
    built = build_imageset(root)
    assert not (root / "train" / "real" / "stale.png").exists()
    assert len(built.entries) == len(json.loads((root / MANIFEST).read_text())["images"]) > 0
