"""Score files: what the writer writes reads back; a file cut at any byte (a killed run) reads
as its complete rows and is continued cleanly; any other damage, or a foreign file, is one
ScoreFileError and never another exception (property-based, with hypothesis)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossport.io.scorefile import Header, ScoreFileError, open_writer, read_existing
from lossport.io.scorefile.reader import MAX_RECORD

HEADER = Header("tigas.onnx", "ab" * 32, {"size": [8, 8], "range": "[0,1]"}, "2/3")
LINE_KINDS = ["csv", "jsonl"]
paths = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
numbers = st.floats(allow_nan=False, width=32)
rows = st.lists(st.tuples(paths, numbers, numbers, numbers), max_size=12, unique_by=lambda r: r[0])
fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write_rows(path, rows):
    """Write one row per batch; csv/jsonl: the file size after the header and after each row
    (where its record ends)."""
    size = (lambda: path.stat().st_size) if path.suffix != ".parquet" else (lambda: None)
    writer = open_writer(path, HEADER)
    ends = [size()]
    for row in rows:
        writer.write([row])
        ends.append(size())
    writer.close()
    return ends


@pytest.mark.parametrize("kind", [*LINE_KINDS, "parquet"])
@fuzz
@given(rows=rows)
def test_rows_read_back(tmp_path, kind, rows):
    if kind == "parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"scores.{kind}"
    path.unlink(missing_ok=True)
    write_rows(path, rows)
    existing = read_existing(path)
    assert existing.header == HEADER
    assert existing.paths == {r[0] for r in rows}


@pytest.mark.parametrize("kind", LINE_KINDS)
@fuzz
@given(rows=rows, data=st.data())
def test_a_file_cut_anywhere_keeps_its_complete_rows_and_continues(tmp_path, kind, rows, data):
    path = tmp_path / f"scores.{kind}"
    path.unlink(missing_ok=True)
    ends = write_rows(path, rows)
    cut = data.draw(st.integers(ends[0], ends[-1]), label="cut")
    with open(path, "r+b") as handle:
        handle.truncate(cut)
    existing = read_existing(path)
    complete = [row for row, end in zip(rows, ends[1:]) if end <= cut]
    assert existing.paths == {r[0] for r in complete}
    assert existing.end == ends[len(complete)]
    writer = open_writer(path, HEADER, existing)
    writer.write([("resumed.png", 0.5, -1.0, 1.0)])
    writer.close()
    again = read_existing(path)
    assert again.paths == {r[0] for r in complete} | {"resumed.png"}
    assert again.end == again.size


@pytest.mark.parametrize("kind", LINE_KINDS)
@fuzz
@given(rows=rows.filter(bool), data=st.data())
def test_damaged_files_fail_with_one_error(tmp_path, kind, rows, data):
    """Flip, insert or delete bytes anywhere: the reader returns or raises ScoreFileError."""
    path = tmp_path / f"scores.{kind}"
    path.unlink(missing_ok=True)
    write_rows(path, rows)
    content = bytearray(path.read_bytes())
    at = data.draw(st.integers(0, len(content) - 1), label="at")
    action = data.draw(st.sampled_from(["flip", "insert", "delete"]), label="action")
    noise = data.draw(st.binary(min_size=1, max_size=8), label="noise")
    if action == "flip":
        content[at] ^= noise[0] or 1
    elif action == "insert":
        content[at:at] = noise
    else:
        del content[at : at + len(noise)]
    path.write_bytes(bytes(content))
    try:
        existing = read_existing(path)
    except ScoreFileError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert existing.end is not None and existing.end <= existing.size


@pytest.mark.parametrize("kind", [*LINE_KINDS, "parquet"])
@fuzz
@given(content=st.binary(max_size=300))
def test_foreign_bytes_fail_with_one_error(tmp_path, kind, content):
    if kind == "parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"scores.{kind}"
    path.write_bytes(content)
    try:
        existing = read_existing(path)
    except ScoreFileError:
        return
    assert existing.header is None and not content  # only an empty file reads as "nothing yet"


@pytest.mark.parametrize(
    "content",
    [
        b"path,score,logit_generated,logit_real\na.png,0.5,0.1,0.2\n",  # a plain CSV, no header
        b'# lossport-score {"format": 2}\npath,score,logit_generated,logit_real\n',
        b"# lossport-score " + HEADER.to_json().encode() + b"\npath,score\n",
        b"# lossport-score "
        + HEADER.to_json().encode()
        + b"\npath,score,logit_generated,logit_real\na,b,c,d\n",
        b"# lossport-score " + HEADER.to_json().encode() + b"\npath,score,logit_generated,logit_real\na,1\n",
        b"# lossport-score " + b"[" * 100000 + b"\n",
        b"# lossport-score " + HEADER.to_json().encode() + b"\n" + b"x" * (MAX_RECORD + 10) + b"\n",
    ],
)
def test_foreign_csv(tmp_path, content):
    path = tmp_path / "scores.csv"
    path.write_bytes(content)
    with pytest.raises(ScoreFileError, match="scores.csv"):
        read_existing(path)


def test_foreign_jsonl(tmp_path):
    path = tmp_path / "scores.jsonl"
    header = json.dumps({"lossport-score": json.loads(HEADER.to_json())})
    for row in ['{"path": "a", "score": true, "logit_generated": 0, "logit_real": 0}', '{"path": 1}', "[1]"]:
        path.write_text(f"{header}\n{row}\n")
        with pytest.raises(ScoreFileError):
            read_existing(path)
    path.write_text('{"something": "else"}\n')
    with pytest.raises(ScoreFileError, match="header"):
        read_existing(path)


def test_parquet_without_footer_or_foreign(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "scores.parquet"
    write_rows(path, [("a.png", 0.5, 0.1, 0.2)])
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ScoreFileError, match="footer"):
        read_existing(path)
    pq.write_table(pa.table({"path": ["a"], "score": [0.5]}), path)
    with pytest.raises(ScoreFileError, match="lossport-score|columns"):
        read_existing(path)


def test_huge_parquet_footer_length_is_refused_before_reading(tmp_path):
    path = tmp_path / "scores.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 100 + (2**31).to_bytes(4, "little") + b"PAR1")
    with pytest.raises(ScoreFileError, match="footer"):
        read_existing(path)


@pytest.mark.parametrize("kind", [*LINE_KINDS, "parquet"])
def test_fresh_file_removed_when_not_kept(tmp_path, kind):
    if kind == "parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"scores.{kind}"
    writer = open_writer(path, HEADER)
    writer.write([("a.png", 0.5, 0.0, 1.0)])
    writer.close(keep=False)
    assert list(tmp_path.iterdir()) == []


def test_header_conflicts():
    assert HEADER.conflict(HEADER) is None
    other_model = Header("tigas.onnx", "cd" * 32, HEADER.preprocess, HEADER.shard)
    assert "sha256" in HEADER.conflict(other_model)
    assert "shard" in HEADER.conflict(Header(HEADER.model_file, HEADER.model_sha256, HEADER.preprocess, None))
    resized = Header(HEADER.model_file, HEADER.model_sha256, {"size": [9, 9]}, HEADER.shard)
    assert "preprocessing" in HEADER.conflict(resized)


def test_written_numbers_round_trip_float32(tmp_path):
    path = tmp_path / "scores.csv"
    value = 0.1234567891234
    write_rows(path, [("a.png", value, -value, math.pi)])
    last = path.read_text().splitlines()[-1].split(",")
    assert abs(float(last[1]) - value) < 1e-8 and abs(float(last[3]) - math.pi) < 1e-8
