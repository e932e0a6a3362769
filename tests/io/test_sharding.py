"""--shard I/N: the N shards are disjoint, cover every image, and do not depend on the order
images are listed in; I/N is validated."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossport.errors import ConfigError
from lossport.io.images import ImageSource
from lossport.io.sharding import Shard

keys = st.lists(st.text(min_size=1, max_size=30), max_size=60, unique=True)


def sources_of(names):
    return [ImageSource(Path("/mnt/data") / name, False, name) for name in names]


@settings(max_examples=200, deadline=None)
@given(names=keys, count=st.integers(1, 12), seed=st.integers(0, 2**32))
def test_shards_partition_the_images_in_any_listing_order(names, count, seed):
    sources = sources_of(names)
    shards = [Shard(i, count).select(sources) for i in range(1, count + 1)]
    held = [s.key for shard in shards for s in shard]
    assert sorted(held) == sorted(names)  # covering, and disjoint: nothing twice
    shuffled = list(sources)
    random.Random(seed).shuffle(shuffled)
    for i in range(1, count + 1):
        assert {s.key for s in Shard(i, count).select(shuffled)} == {s.key for s in shards[i - 1]}


@given(names=keys, count=st.integers(1, 12))
def test_shard_follows_the_relative_path_not_the_mount_point(names, count):
    here = sources_of(names)
    there = [ImageSource(Path("/elsewhere/images") / n, False, n) for n in names]
    for i in range(1, count + 1):
        assert [s.key for s in Shard(i, count).select(here)] == [s.key for s in Shard(i, count).select(there)]


def test_documented_hash():
    """Shard of a key: first 8 bytes of its UTF-8 sha256, big-endian, modulo N (so that any
    tool can recompute it)."""
    key = "cats/0001.jpg"
    expected = int(hashlib.sha256(key.encode()).hexdigest()[:16], 16) % 7 + 1
    (source,) = sources_of([key])
    assert [i for i in range(1, 8) if Shard(i, 7).select([source])] == [expected]


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "a/b", "1", "1/2/3", "-1/4", "", "1/99999999", "²/4"])
def test_invalid_shards(text):
    with pytest.raises(ConfigError, match="I/N"):
        Shard.parse(text)


def test_valid_shard_round_trips():
    assert str(Shard.parse(" 3 / 8 ")) == "3/8"
