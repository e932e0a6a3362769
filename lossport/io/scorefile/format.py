"""The layout of a score file (``lossport score -o FILE``), shared by its writer and reader.

One row per scored image, columns ``path, score, logit_generated, logit_real`` (the path as
printed; floats written with 9 significant digits, which round-trip float32). What the file
was made with, the **header** (a JSON object), comes first::

    {"format": 1, "model": {"file": "tigas.onnx", "sha256": "<64 hex>"},
     "preprocess": {"size": [256, 256], ...}, "shard": "2/8"}    (shard: null for no --shard)

- ``.csv``: line 1 is ``# lossport-score <header JSON>``, line 2 the column names, then one
  record per row (pandas: ``read_csv(FILE, skiprows=1)``).
- ``.jsonl``: line 1 is ``{"lossport-score": <header>}``, then one object per row with the
  four columns as keys (pandas: ``read_json(FILE, lines=True).iloc[1:]``).
- ``.parquet``: the header under the schema metadata key ``lossport-score``; columns ``path``
  (string) and float64 scores, one row group per batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from lossport.errors import ConfigError

COLUMNS = ("path", "score", "logit_generated", "logit_real")
HEADER_KEY = "lossport-score"
FORMAT_VERSION = 1
KINDS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
MAX_RECORD = 64 * 1024  # bytes of one line (csv: one record) or of the header
Row = Tuple[str, float, float, float]  # COLUMNS


class ScoreFileError(ConfigError):
    """An existing score file cannot be continued: corrupt, foreign, or made otherwise."""


def kind_of(path: Path) -> str:
    """``"csv"``, ``"jsonl"`` or ``"parquet"`` from the file name's suffix (any case)."""
    kind = KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise ConfigError(f"-o {path}: give a file name ending in {', '.join(KINDS)}")
    return kind


def format_float(value: float) -> str:
    return f"{value:.9g}"


@dataclass(frozen=True)
class Header:
    """What a score file was made with: the model file (name and sha256), the preprocessing
    contract (its JSON object) and the shard (``"I/N"`` or ``None``)."""

    model_file: str
    model_sha256: str
    preprocess: Dict[str, Any]
    shard: Optional[str] = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT_VERSION,
                "model": {"file": self.model_file, "sha256": self.model_sha256},
                "preprocess": self.preprocess,
                "shard": self.shard,
            },
            sort_keys=True,
        )

    @staticmethod
    def from_json(data: Any, source: str) -> "Header":
        """Parse the header's JSON value; :class:`ScoreFileError` names ``source`` otherwise."""
        model = data.get("model") if isinstance(data, dict) else None
        ok = (
            isinstance(data, dict)
            and set(data) == {"format", "model", "preprocess", "shard"}
            and data["format"] == FORMAT_VERSION
            and isinstance(model, dict)
            and set(model) == {"file", "sha256"}
            and isinstance(model["file"], str)
            and isinstance(model["sha256"], str)
            and len(model["sha256"]) == 64
            and isinstance(data["preprocess"], dict)
            and (data["shard"] is None or isinstance(data["shard"], str))
        )
        if not ok:
            raise ScoreFileError(
                f"{source}: its {HEADER_KEY} header is not one lossport {FORMAT_VERSION} writes; "
                "choose another -o file, or remove this one"
            )
        return Header(model["file"], model["sha256"], data["preprocess"], data["shard"])

    def conflict(self, other: "Header") -> Optional[str]:
        """Why a run described by ``other`` cannot continue a file made as ``self``, or ``None``."""
        if self.model_sha256 != other.model_sha256:
            return (
                f"was scored with model {self.model_file} (sha256 {self.model_sha256[:12]}...), "
                f"not {other.model_file} (sha256 {other.model_sha256[:12]}...)"
            )
        if self.preprocess != other.preprocess:
            return f"was scored with preprocessing {self.preprocess}, not {other.preprocess}"
        if self.shard != other.shard:
            return f"holds shard {self.shard or 'none (all images)'}, not {other.shard or 'all images'}"
        return None


def pyarrow_modules() -> Tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or a :class:`ConfigError` saying how to install them."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ConfigError(
            "-o FILE.parquet needs pyarrow: pip install pyarrow (or write .csv or .jsonl)"
        ) from None
    return pyarrow, pyarrow.parquet
