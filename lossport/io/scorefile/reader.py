"""Reading an existing score file to continue it (``lossport score -o FILE --resume``).

The file is untrusted input: it may be truncated by a killed run, corrupt, or not a score file
at all. :func:`read_existing` reads it as a stream, record by record, each at most
``MAX_RECORD`` bytes (Parquet: the footer at most ``MAX_FOOTER`` bytes, the ``path`` column in
slices), so that what it holds is the set of scored paths and nothing that grows with the
file. A last csv/jsonl record without its line end is what a killed run leaves: it is dropped
(``Existing.end`` is where the complete records end). Anything else that is not what the writer
writes is a :class:`~.format.ScoreFileError`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, List, Optional, Set

from lossport.io.scorefile.format import (
    COLUMNS,
    HEADER_KEY,
    MAX_RECORD,
    Header,
    ScoreFileError,
    kind_of,
    pyarrow_modules,
)

MAX_FOOTER = 16 * 1024 * 1024
_CSV_MARK = f"# {HEADER_KEY} ".encode()


@dataclass
class Existing:
    """A score file as found: its header, the paths it holds, and (csv/jsonl) the byte offset
    where its complete records end (``end < size``: a partial last record to drop)."""

    header: Optional[Header]
    paths: Set[str]
    end: Optional[int] = None
    size: int = 0


def read_existing(path: Path) -> Existing:
    """The header and scored paths of ``path``; :class:`ScoreFileError` for a file that is not
    a score file (complete, or cut short by a killed run). An empty file (a run killed before
    it wrote anything) has ``header=None``."""
    kind = kind_of(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            if kind == "parquet":
                return _read_parquet(path, handle, size)
            reader = _read_csv if kind == "csv" else _read_jsonl
            return reader(_Lines(handle, path), size)
    except OSError as exc:
        raise ScoreFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None


class _Lines:
    """Lines of a binary file as text (UTF-8, undecodable bytes kept as surrogates), with the
    byte offset after the last line given out and whether that line was complete."""

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self.handle, self.path = handle, path
        self.offset = 0
        self.complete = True

    def __iter__(self) -> Iterator[str]:
        while True:
            line = self.handle.readline(MAX_RECORD + 1)
            if not line:
                return
            if len(line) > MAX_RECORD:
                raise self.error(f"a line longer than {MAX_RECORD} bytes")
            self.offset += len(line)
            self.complete = line.endswith(b"\n")
            yield line.decode("utf-8", "surrogateescape")

    def error(self, what: str) -> ScoreFileError:
        return ScoreFileError(
            f"{self.path}: {what} near byte {self.offset}: not a lossport score file, or corrupt; "
            "choose another -o file, or remove this one"
        )


def _header(text: str, lines: _Lines, wrapped: bool) -> Header:
    """The header from its JSON text (``wrapped``: as ``{HEADER_KEY: header}``)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise lines.error("an unreadable header") from None
    if wrapped:
        if not (isinstance(data, dict) and set(data) == {HEADER_KEY}):
            raise lines.error(f"a first line that is not a {HEADER_KEY} header")
        data = data[HEADER_KEY]
    return Header.from_json(data, str(lines.path))


def _row(values: List[object], lines: _Lines, number_type: type) -> str:
    """The path of a parsed row, after checking its four values (numbers as ``number_type``:
    ``str`` in CSV, ``float`` in JSON)."""
    if len(values) != len(COLUMNS) or not isinstance(values[0], str) or not values[0]:
        raise lines.error(f"a row that is not {', '.join(COLUMNS)}")
    for value in values[1:]:
        if isinstance(value, bool) or not isinstance(value, (number_type, int)):
            raise lines.error("a row with a score that is not a number")
        try:
            float(value)
        except (ValueError, OverflowError):
            raise lines.error("a row with a score that is not a number") from None
    return values[0]


def _read_csv(lines: _Lines, size: int) -> Existing:
    stream = iter(lines)
    first = next(stream, None)
    if first is None:
        return Existing(None, set(), 0, size)
    if not (first.startswith(_CSV_MARK.decode()) and lines.complete):
        raise lines.error(f"no '# {HEADER_KEY}' header line")
    header = _header(first[len(_CSV_MARK) :], lines, wrapped=False)
    if next(stream, None) != ",".join(COLUMNS) + "\n":
        raise lines.error(f"no column line {','.join(COLUMNS)}")
    existing = Existing(header, set(), lines.offset, size)
    records = csv.reader(stream, strict=True)
    while True:
        try:
            values = next(records)
        except StopIteration:
            return existing
        except csv.Error as exc:
            # at the end of the file, a record cut short: a line without its end, or a quoted
            # field (a path with a line break) left open
            if lines.offset == size and (not lines.complete or "end of data" in str(exc)):
                return existing
            raise lines.error("a malformed CSV record") from None
        if not lines.complete:  # the last record, cut short
            return existing
        if lines.offset - existing.end > MAX_RECORD:
            raise lines.error(f"a record longer than {MAX_RECORD} bytes")
        existing.paths.add(_row(values, lines, str))
        existing.end = lines.offset


def _read_jsonl(lines: _Lines, size: int) -> Existing:
    existing: Optional[Existing] = None
    for text in lines:
        if not lines.complete:  # the last line, cut short
            break
        if existing is None:
            existing = Existing(_header(text, lines, wrapped=True), set(), lines.offset, size)
            continue
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise lines.error("a line that is not JSON") from None
        if not isinstance(data, dict) or set(data) != set(COLUMNS):
            raise lines.error(f"a row that is not an object with keys {', '.join(COLUMNS)}")
        existing.paths.add(_row([data[c] for c in COLUMNS], lines, float))
        existing.end = lines.offset
    if existing is None:
        if lines.offset:
            raise lines.error("an incomplete header line")
        return Existing(None, set(), 0, size)
    return existing


def _read_parquet(path: Path, handle: BinaryIO, size: int) -> Existing:
    pa, pq = pyarrow_modules()
    if size == 0:
        return Existing(None, set(), None, 0)
    problem = _parquet_frame_problem(handle, size)
    if problem is not None:
        raise ScoreFileError(f"{path}: {problem}; choose another -o file, or remove this one")
    try:
        parquet = pq.ParquetFile(handle)
        schema = parquet.schema_arrow
        metadata = schema.metadata or {}
        raw = metadata.get(HEADER_KEY.encode())
        if raw is None or len(raw) > MAX_RECORD:
            raise ScoreFileError(f"{path}: no {HEADER_KEY} header in its metadata: not a lossport score file")
        expected = [("path", pa.string())] + [(c, pa.float64()) for c in COLUMNS[1:]]
        if [(f.name, f.type) for f in schema] != expected:
            raise ScoreFileError(
                f"{path}: columns {[f.name for f in schema]} are not {list(COLUMNS)}: not a lossport score file"
            )
        try:
            header = Header.from_json(json.loads(raw.decode("utf-8")), str(path))
        except (ValueError, RecursionError):
            raise ScoreFileError(f"{path}: an unreadable {HEADER_KEY} header") from None
        paths: Set[str] = set()
        for batch in parquet.iter_batches(batch_size=4096, columns=["path"]):
            column = batch.column(0)
            if column.null_count:
                raise ScoreFileError(f"{path}: a row without a path: corrupt")
            paths.update(column.to_pylist())
        return Existing(header, paths, None, size)
    except ScoreFileError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError, MemoryError) as exc:
        raise ScoreFileError(
            f"{path}: not a readable Parquet file ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "choose another -o file, or remove this one"
        ) from None


def _parquet_frame_problem(handle: BinaryIO, size: int) -> Optional[str]:
    """What is wrong with the magic numbers and footer length, before pyarrow reads the footer."""
    if size < 12:
        return "too short for a Parquet file"
    handle.seek(0)
    head = handle.read(4)
    handle.seek(size - 8)
    tail = handle.read(8)
    if head != b"PAR1":
        return "not a Parquet file"
    if tail[4:] != b"PAR1":
        return "a Parquet file without its footer (the run writing it was killed)"
    footer = int.from_bytes(tail[:4], "little")
    if footer > MAX_FOOTER or footer > size - 12:
        return f"a Parquet footer of {footer} bytes, beyond the file or the {MAX_FOOTER}-byte limit"
    handle.seek(0)
    return None
