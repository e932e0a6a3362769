"""Deterministic shards of a set of images, so that N machines split one dataset.

Shard ``I/N`` (``I`` from 1 to ``N``) holds the images whose key (:attr:`ImageSource.stable_key
<lossport.io.images.ImageSource.stable_key>`: the path relative to the folder it was found in)
hashes to ``I - 1`` modulo ``N``, the hash being the first 8 bytes of the key's UTF-8 SHA-256,
big-endian. So the N shards are disjoint and together hold every image, whatever order the file
system lists them in, on any machine that sees the same relative paths.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import List, Sequence

from lossport.errors import ConfigError
from lossport.io.images import ImageSource

MAX_SHARDS = 1_000_000


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as written on the command line)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (1 <= self.count <= MAX_SHARDS and 1 <= self.index <= self.count):
            raise ConfigError(
                f"shard {self.index}/{self.count}: give I/N with 1 <= I <= N <= {MAX_SHARDS}, e.g. 1/4"
            )

    @staticmethod
    def parse(text: str) -> "Shard":
        """``"2/8"`` -> ``Shard(2, 8)``; anything else is a :class:`ConfigError`."""
        match = re.fullmatch(r"\s*([0-9]{1,7})\s*/\s*([0-9]{1,7})\s*", text)
        if match is None:
            raise ConfigError(f"--shard {text!r}: give I/N with 1 <= I <= N <= {MAX_SHARDS}, e.g. 1/4")
        return Shard(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, key: str) -> bool:
        return shard_of(key, self.count) == self.index - 1

    def select(self, sources: Sequence[ImageSource]) -> List[ImageSource]:
        """The sources of this shard, in their given order."""
        return [s for s in sources if self.holds(s.stable_key)]


def shard_of(key: str, count: int) -> int:
    """The 0-based shard of ``key`` among ``count``."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count
