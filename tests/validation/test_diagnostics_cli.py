"""Bad input to the diagnostics options (``--nodes``, ``--repro``, ``--html``, ``--backends``):
one ``error:`` line, exit code 2, nothing written, before any work; and a passing run writes
no repro bundle."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from lossport.cli import main


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--nodes", "n.txt"], "give a .csv or .json file name"),
        (["--nodes", "absent/n.csv"], "does not exist"),
        (["--nodes", "."], "is a directory"),
        (["--repro", "file.txt"], "is a file"),
        (["--repro", "full"], "the folder is not empty"),
        (["--repro", "absent/deeper"], "parent folder does not exist"),
        (["--html", "absent/r.html"], "does not exist"),
        (["--html", "full"], "is a directory"),
        (["--backends", "eager,onnxref"], "unknown backend onnxref"),
        (["--backends", ""], "unknown backend (empty)"),
    ],
)
def test_bad_report_options(extra, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("keep")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("keep")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(main, ["validate", "losses", "rmse", *extra, "--json", "r.json"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output and "seed" not in result.output  # no work started
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_a_passing_run_writes_no_bundle_and_an_empty_node_table(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "validate",
            "losses",
            "rmse",
            "--backends",
            "ort-cpu",
            "--repro",
            str(tmp_path / "repro"),
            "--nodes",
            str(tmp_path / "n.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "no failing ONNX Runtime check to reproduce; nothing written" in result.output
    assert not (tmp_path / "repro").exists()
    assert (tmp_path / "n.csv").read_text().splitlines()[0].startswith("spec,backend,case,index,graph,value")
    assert "nodes: 0 paired value(s)" in result.output
