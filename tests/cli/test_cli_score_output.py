"""``lossport score -o FILE`` (csv, jsonl, parquet), ``--resume`` and ``--shard``: the same
scores as the printed ones, continuing a cut or finished file, refusing a file made otherwise,
and one-line errors (exit 2) for bad values."""

from __future__ import annotations

import csv
import io
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scorer_models import mean_scorer_onnx

from lossport.cli import main

CONTRACT = {"size": [16, 16], "range": "[0,1]", "channel_order": "RGB", "layout": "NCHW"}


def run(*arguments):
    return CliRunner().invoke(main, ["score", *map(str, arguments)])


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    for index in range(9):
        pixels = rng.integers(0, 256, (20 + index, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / ("sub" if index % 3 == 0 else ".") / f"{index}.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    return root


@pytest.fixture
def model(tmp_path):
    return mean_scorer_onnx(tmp_path / "scorer.onnx", CONTRACT)


def printed_scores(folder, model):
    result = run(folder, "--model", model, "--json")
    assert result.exit_code == 0, result.output
    return {item["path"]: item["score"] for item in json.loads(result.stdout)["scores"]}


def data_rows(path):
    """``{path: score}`` of a score file, read without lossport."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pydict()
        return dict(zip(table["path"], table["score"]))
    lines = path.read_text().splitlines()
    if path.suffix == ".csv":
        assert lines[0].startswith("# lossport-score {")
        return {r["path"]: float(r["score"]) for r in csv.DictReader(io.StringIO("\n".join(lines[1:])))}
    assert "lossport-score" in json.loads(lines[0])
    return {r["path"]: r["score"] for r in map(json.loads, lines[1:])}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_output_file_holds_the_printed_scores(tmp_path, folder, model, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    expected = printed_scores(folder, model)
    out = tmp_path / f"scores{suffix}"
    result = run(folder, "--model", model, "-o", out, "--batch-size", 4)
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "scored 9 images, skipped 1 file" in result.stderr
    rows = data_rows(out)
    assert rows.keys() == expected.keys()
    assert all(abs(rows[p] - expected[p]) < 1e-6 for p in rows)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_resume_scores_only_what_is_missing(tmp_path, folder, model, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"scores{suffix}"
    first = run(folder / "sub", "--model", model, "-o", out)  # 3 of the 9 images
    assert first.exit_code == 0, first.output
    again = run(folder, "--model", model, "-o", out, "--resume", "--batch-size", 2)
    assert again.exit_code == 0, again.output
    assert "scored 6 images (3 already in" in again.stderr
    rows = data_rows(out)
    assert len(rows) == 9 and rows.keys() == printed_scores(folder, model).keys()
    done = run(folder, "--model", model, "-o", out, "--resume")
    assert done.exit_code == 0 and "scored 0 images (9 already in" in done.stderr


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_resume_drops_a_row_cut_by_a_killed_run(tmp_path, folder, model, suffix):
    out = tmp_path / f"scores{suffix}"
    assert run(folder, "--model", model, "-o", out).exit_code == 0
    content = out.read_bytes()
    out.write_bytes(content[: content.rstrip(b"\n").rfind(b"\n") + 12])  # the last row, cut
    result = run(folder, "--model", model, "-o", out, "--resume")
    assert result.exit_code == 0, result.output
    assert "scored 1 image (8 already in" in result.stderr
    assert out.read_bytes() == content


@pytest.mark.parametrize(
    "content, match",
    [
        (b"\x00\x01garbage\n", "not a lossport score file"),
        (b"path,score,logit_generated,logit_real\nx.png,1,0,1\n", "not a lossport score file"),
    ],
)
def test_resume_refuses_a_foreign_file(tmp_path, folder, model, content, match):
    out = tmp_path / "scores.csv"
    out.write_bytes(content)
    result = run(folder, "--model", model, "-o", out, "--resume")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0]
    assert out.read_bytes() == content


def test_resume_refuses_another_model_or_shard(tmp_path, folder, model):
    out = tmp_path / "scores.jsonl"
    assert run(folder, "--model", model, "-o", out, "--shard", "1/2").exit_code == 0
    before = out.read_bytes()
    other = mean_scorer_onnx(tmp_path / "other.onnx", {**CONTRACT, "size": [8, 8]})
    for arguments, match in [
        (["--model", other, "--shard", "1/2"], "sha256"),
        (["--model", model, "--shard", "2/2"], "shard 1/2"),
        (["--model", model], "shard 1/2"),
    ]:
        result = run(folder, *arguments, "-o", out, "--resume")
        assert result.exit_code == 2 and match in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == before


def test_existing_file_needs_resume_and_bad_input_leaves_nothing(tmp_path, folder, model):
    out = tmp_path / "scores.csv"
    out.write_text("precious")
    result = run(folder, "--model", model, "-o", out)
    assert result.exit_code == 2 and "--resume" in result.stderr and out.read_text() == "precious"
    fresh = tmp_path / "fresh.csv"
    failed = run(folder / "1.png", folder / "broken.png", "--model", model, "-o", fresh)
    assert failed.exit_code == 2 and "broken.png" in failed.stderr
    assert not fresh.exists() and not list(tmp_path.glob(".fresh*"))


def test_shards_split_the_images(tmp_path, folder, model):
    everything = printed_scores(folder, model)
    held = []
    for index in (1, 2, 3):
        result = run(folder, "--model", model, "--shard", f"{index}/3", "--json")
        assert result.exit_code == 0, result.output
        held += [item["path"] for item in json.loads(result.stdout)["scores"]]
    assert sorted(held) == sorted(everything)


@pytest.mark.parametrize(
    "arguments, match",
    [
        (["--shard", "3/2"], "I/N"),
        (["--shard", "x"], "I/N"),
        (["-o", "{tmp}/scores.txt"], ".csv, .jsonl, .parquet"),
        (["-o", "{tmp}/missing/scores.csv"], "does not exist"),
        (["--resume"], "give -o"),
        (["-o", "{tmp}/s.csv", "--json"], "give one"),
        (["--workers", "-1"], "--workers"),
    ],
)
def test_usage_errors(tmp_path, folder, model, arguments, match):
    result = run(folder, "--model", model, *[a.format(tmp=tmp_path) for a in arguments])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0]


def test_parquet_without_pyarrow(tmp_path, folder, model, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = run(folder, "--model", model, "-o", tmp_path / "s.parquet")
    assert result.exit_code == 2 and "pip install pyarrow" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("workers", ["0", "3"])
def test_table_and_csv_stream_in_order(folder, model, workers):
    expected = list(printed_scores(folder, model))
    table = run(folder, "--model", model, "--workers", workers, "--batch-size", 2)
    assert table.exit_code == 0, table.output
    lines = table.stdout.strip().splitlines()
    assert lines[0].split() == ["score", "verdict", "path"] and [r.split()[2] for r in lines[1:]] == expected
    as_csv = run(folder, "--model", model, "--workers", workers, "--csv", "--batch-size", 2)
    assert [r["path"] for r in csv.DictReader(io.StringIO(as_csv.stdout))] == expected
