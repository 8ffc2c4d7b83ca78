"""The command line: exit codes, one-line errors, JSON output, outputs on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from logsieve.cli.app import app

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_help_and_version() -> None:
    res = invoke("--help")
    assert res.exit_code == 0
    for cmd in ("parse", "group", "sequences", "synth", "datasets", "demo", "formats"):
        assert cmd in res.output
    assert invoke("--version").output.startswith("logsieve ")


def test_python_dash_m_works() -> None:
    out = subprocess.run([sys.executable, "-m", "logsieve", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("logsieve ")


def test_formats_json() -> None:
    res = invoke("formats", "--json")
    assert res.exit_code == 0
    names = {row["name"] for row in json.loads(res.output)}
    assert {"hdfs", "bgl", "thunderbird", "spirit", "openssh", "weblog"} <= names


def test_parse_writes_events_and_templates(tmp_path: Path) -> None:
    out, tpl, state = tmp_path / "ev.parquet", tmp_path / "tpl.csv", tmp_path / "state.json"
    res = invoke("parse", DATA / "tiny_hdfs.log", "-o", out, "--format", "hdfs",
                 "--templates-out", tpl, "--state", state, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["lines"] == 10 and summary["malformed_lines"] == 1
    events = pl.read_parquet(out)
    assert events.height == 9
    counts = pl.read_csv(tpl)
    assert counts.columns == ["event_id", "template", "count"] and counts["count"].sum() == 9
    assert json.loads(state.read_text())["state_version"] == 1


def test_parse_custom_format_and_mask(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("2024-01-02 10:00:00 INFO pool: opened conn-17\n2024-01-02 10:00:01 INFO pool: opened conn-99\n")
    out = tmp_path / "ev.parquet"
    res = invoke("parse", log, "-o", out, "--format", "<Date> <Time> <Level> <Component>: <Content>",
                 "--mask", r"conn=conn-\d+", "-q")
    assert res.exit_code == 0, res.output
    events = pl.read_parquet(out)
    assert events["event_id"].n_unique() == 1
    assert events["template"][0] == "opened <*>"


def test_parse_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    res = invoke("parse", tmp_path / "missing.log", "-o", tmp_path / "x.parquet")
    assert res.exit_code == 2
    assert "missing.log: no such file" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "x.parquet").exists()


def test_parse_truncated_gzip_exit_2_no_output(tmp_path: Path) -> None:
    import gzip

    payload = "".join(f"081109 203518 1 INFO a: message {i} {i * 7919 % 104729}\n" for i in range(30_000)).encode()
    whole = gzip.compress(payload)
    bad = tmp_path / "cut.log.gz"
    bad.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "ev.parquet"
    res = invoke("parse", bad, "-o", out)
    assert res.exit_code == 2
    assert "cut.log.gz" in res.output and "gzip" in res.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_parse_bad_mask_exit_2(tmp_path: Path) -> None:
    res = invoke("parse", DATA / "tiny_hdfs.log", "-o", tmp_path / "x.parquet", "--mask", "nonsense")
    assert res.exit_code == 2 and "mask" in res.output.lower()


def test_parse_unknown_format_exit_2(tmp_path: Path) -> None:
    res = invoke("parse", DATA / "tiny_hdfs.log", "-o", tmp_path / "x.parquet", "--format", "zzz")
    assert res.exit_code == 2 and "unknown format" in res.output


def test_parse_with_truth_prints_accuracy(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "loghub_2k" / "HDFS"
    res = invoke("parse", folder / "HDFS_2k.log", "-o", tmp_path / "ev.parquet",
                 "--truth", folder / "HDFS_2k.log_structured.csv", "--json")
    assert res.exit_code == 0, res.output
    acc = json.loads(res.stdout.strip().splitlines()[-1])["accuracy"]
    assert acc["GA"] >= 0.99 and {"PA", "F1_GA"} <= set(acc)
