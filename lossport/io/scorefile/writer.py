"""Writing a score file batch by batch (layout: :mod:`.format`).

- ``.csv`` / ``.jsonl``: each batch's rows are appended and flushed at once, so a killed run
  leaves every earlier batch in the file and at most one record cut short, which
  :func:`~.reader.read_existing` drops. Continuing a file first truncates that partial record.
- ``.parquet``: one row group per batch, written to ``.FILE.partial`` beside ``FILE`` and moved
  over ``FILE`` when the writer closes (at the end, on an error, on Ctrl-C or SIGTERM): ``FILE``
  is always a complete Parquet file. Continuing it copies its row groups into the new file
  first. A run killed outright (SIGKILL, power loss) loses what it added to a Parquet file;
  write ``.csv`` or ``.jsonl`` where that matters.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

from lossport.io.scorefile.format import (
    COLUMNS,
    HEADER_KEY,
    Header,
    Row,
    format_float,
    kind_of,
    pyarrow_modules,
)
from lossport.io.scorefile.reader import Existing


class ScoreWriter:
    """Appends rows to a score file; :meth:`close` with ``keep=False`` removes what a fresh
    file's run wrote (a run that failed on bad input leaves nothing behind)."""

    def write(self, rows: Sequence[Row]) -> None:
        raise NotImplementedError

    def close(self, keep: bool = True) -> None:
        raise NotImplementedError


def open_writer(path: Path, header: Header, existing: Optional[Existing] = None) -> ScoreWriter:
    """A writer for ``path``: continuing ``existing`` (read with
    :func:`~.reader.read_existing`, header already checked) or, without it, a new file."""
    if existing is not None and existing.header is None:
        existing = None  # an empty file: start it afresh
    if kind_of(path) == "parquet":
        return _ParquetWriter(path, header, existing)
    return _LineWriter(path, header, existing)


class _LineWriter(ScoreWriter):
    def __init__(self, path: Path, header: Header, existing: Optional[Existing]) -> None:
        self.path = path
        self.fresh = existing is None
        self.csv = kind_of(path) == "csv"
        if existing is not None:
            if existing.end is not None and existing.end < existing.size:
                os.truncate(path, existing.end)
            self.handle = open(path, "ab")  # noqa: SIM115 (closed by close())
            return
        self.handle = open(path, "wb")  # noqa: SIM115 (closed by close())
        if self.csv:
            first = f"# {HEADER_KEY} {header.to_json()}\n{','.join(COLUMNS)}\n"
        else:
            first = f'{{"{HEADER_KEY}": {header.to_json()}}}\n'
        self._emit(first)

    def _emit(self, text: str) -> None:
        self.handle.write(text.encode("utf-8", "surrogateescape"))
        self.handle.flush()

    def write(self, rows: Sequence[Row]) -> None:
        if self.csv:
            self._emit("".join(_csv_record(row) for row in rows))
        else:
            self._emit(
                "".join(
                    json.dumps(dict(zip(COLUMNS, [row[0], *(float(format_float(v)) for v in row[1:])])))
                    + "\n"
                    for row in rows
                )
            )

    def close(self, keep: bool = True) -> None:
        self.handle.close()
        if not keep and self.fresh:
            self.path.unlink(missing_ok=True)


def _csv_record(row: Row) -> str:
    """One CSV record ending in ``\n``; a path holding ``\r`` or ``\n`` is quoted (the csv
    module quotes only the characters of its line terminator, hence ``\r\n`` here)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([row[0], *map(format_float, row[1:])])
    return out.getvalue()[:-2] + "\n"


class _ParquetWriter(ScoreWriter):
    def __init__(self, path: Path, header: Header, existing: Optional[Existing]) -> None:
        self.pa, pq = pyarrow_modules()
        self.path = path
        self.fresh = existing is None
        self.partial = path.with_name(f".{path.name}.partial")
        fields = [("path", self.pa.string())] + [(c, self.pa.float64()) for c in COLUMNS[1:]]
        self.schema = self.pa.schema(fields, metadata={HEADER_KEY: header.to_json()})
        self.writer: Any = pq.ParquetWriter(str(self.partial), self.schema)
        if existing is not None:
            source = pq.ParquetFile(str(path))
            for index in range(source.num_row_groups):
                self.writer.write_table(source.read_row_group(index).cast(self.schema))

    def write(self, rows: Sequence[Row]) -> None:
        columns = [list(column) for column in zip(*rows)] if rows else [[] for _ in COLUMNS]
        self.writer.write_table(self.pa.Table.from_arrays(columns, schema=self.schema))

    def close(self, keep: bool = True) -> None:
        self.writer.close()
        if keep or not self.fresh:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)
