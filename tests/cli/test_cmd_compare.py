"""`logsieve compare`: its --set parser, its rendering, and the command itself.

test_parse_model_params and test_compare_command_end_to_end moved here from
tests/unit/evaluation/test_compare.py (they test CLI functions)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from detector_fixtures import TEMPLATES, make_windows
from typer.testing import CliRunner

from logsieve.cli.app import app
from logsieve.cli.options import parse_model_params
from logsieve.errors import LogsieveError
from logsieve.evaluation.compare import compare_files
from logsieve.evaluation.compare import render_text as render_compare

runner = CliRunner()


@pytest.fixture(scope="module")
def windows() -> pl.DataFrame:
    return make_windows(seed=2)


def test_parse_model_params():
    assert parse_model_params(
        ["ae.epochs=20", "lstm_ae.reduce=max", "ae.dropout=0.1", "ae.patience=null"]
    ) == {
        "ae": {"epochs": 20, "dropout": 0.1, "patience": None},
        "lstm_ae": {"reduce": "max"},
    }
    with pytest.raises(LogsieveError, match="MODEL.PARAM=VALUE"):
        parse_model_params(["epochs=3"])


def test_compare_command_end_to_end(tmp_path, windows):
    lines = windows.select("line_ids", "messages", "event_ids").explode(
        ["line_ids", "messages", "event_ids"]
    )
    events = lines.select(
        pl.col("line_ids").alias("line_id"),
        pl.col("messages").alias("content"),
        pl.col("event_ids").alias("event_id"),
        pl.col("event_ids").replace_strict(TEMPLATES, return_dtype=pl.String).alias("template"),
    )
    events.write_parquet(tmp_path / "events.parquet")
    windows.drop("messages").write_parquet(tmp_path / "windows.parquet")
    report = compare_files(
        tmp_path / "windows.parquet",
        "ae,lstm_ae",
        top=3,
        events_path=tmp_path / "events.parquet",
        plot_dir=tmp_path / "plots",
        output=tmp_path / "report.json",
        params=parse_model_params(["ae.epochs=5", "lstm_ae.epochs=5", "lstm_ae.max_len=16"]),
    )
    assert json.loads((tmp_path / "report.json").read_text())["models"][0]["name"] == "ae"
    first = report["models"][0]["top"][0]
    assert (
        first["lines"][0]
        in windows.filter(pl.col("window_id") == first["window_id"])["messages"][0].to_list()
    )
    assert len(report["plots"]) == 2 and report["input"]["events"].endswith("events.parquet")
    text = render_compare(report)
    assert "score distributions" in text and "top-N overlap" in text and "lstm_ae" in text
    with pytest.raises(LogsieveError, match="events file not found"):
        compare_files(tmp_path / "windows.parquet", "ae", events_path=tmp_path / "missing.parquet")


def test_compare_command_json_text_and_bad_set(tmp_path: Path, windows: pl.DataFrame) -> None:
    path = tmp_path / "windows.parquet"
    windows.write_parquet(path)
    args = [str(path), "--models", "ae", "--top", "2", "--set", "ae.epochs=2"]
    res = runner.invoke(app, ["compare", *args, "--json", "-o", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert [m["name"] for m in report["models"]] == ["ae"] and len(report["models"][0]["top"]) == 2
    assert report["output"] == str(tmp_path / "r.json") and report["input"]["events"] is None
    text = runner.invoke(app, ["compare", *args])
    assert (
        text.exit_code == 0
        and "score distributions" in text.output
        and "top 2 of ae" in text.output
    )
    assert runner.invoke(app, ["compare", *args, "-q"]).output == ""
    bad = runner.invoke(app, ["compare", str(path), "--models", "ae", "--set", "epochs=2"])
    assert bad.exit_code == 2 and "MODEL.PARAM=VALUE" in bad.output
