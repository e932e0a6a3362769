"""File identity by content: a file's name and sha256, as recorded in artifacts (never its
path, which would leak a local folder and mean nothing on another machine)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping

from lossport.errors import ArtifactError

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileRecord:
    """A file as recorded in metadata: base name and sha256."""

    file: str
    sha256: str

    @staticmethod
    def of(path: Path) -> "FileRecord":
        return FileRecord(Path(path).name, sha256_file(path))

    def to_json(self) -> Dict[str, str]:
        return {"file": self.file, "sha256": self.sha256}

    @staticmethod
    def from_json(data: Any, source: str) -> "FileRecord":
        """Parse ``{"file": name, "sha256": 64 hex digits}``; :class:`ArtifactError` otherwise."""
        ok = (
            isinstance(data, Mapping)
            and set(data) == {"file", "sha256"}
            and isinstance(data["file"], str)
            and 0 < len(data["file"]) <= 255
            and "/" not in data["file"]
            and "\\" not in data["file"]
            and isinstance(data["sha256"], str)
            and len(data["sha256"]) == 64
            and all(c in "0123456789abcdef" for c in data["sha256"])
        )
        if not ok:
            raise ArtifactError(
                f"{source}: invalid weights record {data!r} (expected a file name and a sha256)"
            )
        return FileRecord(data["file"], data["sha256"])

    def matches(self, path: Path) -> bool:
        return sha256_file(path) == self.sha256
