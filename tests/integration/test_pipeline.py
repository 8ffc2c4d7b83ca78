"""The pipeline end to end through the CLI: self-describing tables, one model directory,
`detect RAW.log -m MODEL_DIR` with no options, honest training summaries, and a model
directory that a failed run never damages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from logsieve.cli.app import app
from logsieve.io.tables import read_meta
from logsieve.pipeline import Pipeline
from logsieve.synth import generate

runner = CliRunner()


def invoke(*args: object) -> object:
    return runner.invoke(app, [str(a) for a in args])


def ok(*args: object) -> dict:
    res = invoke(*args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def hdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A synthetic HDFS log run through the README's parse + group lines."""
    d = tmp_path_factory.mktemp("pipeline")
    gen = generate(d / "hdfs.log", lines=12_000, seed=3)
    ok("parse", d / "hdfs.log", "--format", "hdfs", "-o", d / "events.parquet",
       "--state", d / "parser.json", "--templates-out", d / "templates.csv")  # fmt: skip
    ok("group", d / "events.parquet", "--session", r"blk_-?\d+", "--labels", gen.labels_path,
       "-o", d / "windows.parquet")  # fmt: skip
    return {"dir": d, "log": d / "hdfs.log", "labels": Path(gen.labels_path),
            "events": d / "events.parquet", "windows": d / "windows.parquet",
            "templates": d / "templates.csv", "state": d / "parser.json"}  # fmt: skip


def _train(hdfs: dict[str, Path], out: Path, *extra: object, model: str = "deeplog") -> dict:
    return ok("train", hdfs["windows"], "--model", model, "--test", "0.3", "--seed", "0",
              "--set", "epochs=2", *extra, "-o", out)  # fmt: skip


def test_tables_carry_their_provenance(hdfs: dict[str, Path]) -> None:
    events = read_meta(hdfs["events"])
    windows = read_meta(hdfs["windows"])
    assert events["table"] == "events" and windows["table"] == "windows"
    assert events["format"] == "hdfs" and windows["format"] == "hdfs"
    assert windows["grouping"] == {"kind": "session", "pattern": r"blk_-?\d+", "idle": None}
    assert windows["parser_state_sha256"] == events["parser_state_sha256"]
    table = pl.read_parquet(hdfs["events"]).unique("event_id").sort("event_id")
    assert events["templates"] == dict(zip(table["event_id"], table["template"], strict=True))


def test_readme_path_gives_every_event_its_template(hdfs: dict[str, Path], tmp_path: Path) -> None:
    """The five README lines: the templates CSV of `parse` is read as written, header and all."""
    model = tmp_path / "model"
    _train(hdfs, model, "--normal-only", "--templates", hdfs["templates"], "--state", hdfs["state"])
    truth = pl.read_parquet(hdfs["events"]).unique("event_id")
    expected = dict(zip(truth["event_id"], truth["template"], strict=True))
    saved = json.loads((model / "model.json").read_text())["templates"]
    assert saved == expected
    res = ok("detect", model / "test_windows.parquet", "-m", model, "--events", hdfs["events"],
             "-o", tmp_path / "scores.parquet", "--top", "3")  # fmt: skip
    for alert in res["top"]:
        for pos in (alert["explanation"] or {}).get("positions", []):
            if pos.get("template") is not None:
                assert pos["template"] == expected[pos["event_id"]]


def test_templates_come_from_the_windows_table(hdfs: dict[str, Path], tmp_path: Path) -> None:
    with_file = _train(hdfs, tmp_path / "a", "--templates", hdfs["templates"], model="logrobust")
    without = _train(hdfs, tmp_path / "b", model="logrobust")
    assert with_file["threshold"] == without["threshold"]
    a = Pipeline.load(tmp_path / "a")
    b = Pipeline.load(tmp_path / "b")
    test = pl.read_parquet(tmp_path / "a" / "test_windows.parquet")
    assert np.array_equal(a.score(test), b.score(test))


def test_a_semantic_model_without_templates_names_the_flag(tmp_path: Path) -> None:
    windows = pl.DataFrame(
        {"window_id": [str(i) for i in range(40)], "event_ids": [["1", "2", "3"]] * 40,
         "label": [0, 1] * 20},
        schema_overrides={"label": pl.Int8},
    )  # fmt: skip
    windows.write_parquet(tmp_path / "w.parquet")  # no provenance: made outside logsieve
    res = invoke("train", tmp_path / "w.parquet", "--model", "logrobust", "-o", tmp_path / "m")
    assert res.exit_code == 2 and "--templates" in res.output
    assert not (tmp_path / "m").exists()


def test_detect_a_raw_log_with_no_options(hdfs: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "model"
    _train(hdfs, model, "--normal-only")
    raw = ok("detect", hdfs["log"], "-m", model, "--labels", hdfs["labels"],
             "-o", tmp_path / "raw.parquet")  # fmt: skip
    table = ok("detect", hdfs["windows"], "-m", model, "-o", tmp_path / "table.parquet")
    assert raw["windows"] == table["windows"] and raw["anomalies"] == table["anomalies"]
    a = pl.read_parquet(tmp_path / "raw.parquet").sort("window_id")
    b = pl.read_parquet(tmp_path / "table.parquet").sort("window_id")
    assert a["window_id"].to_list() == b["window_id"].to_list()
    assert np.allclose(a["score"].to_numpy(), b["score"].to_numpy())
    assert a["label"].to_list() == b["label"].to_list()
    events = ok("detect", hdfs["events"], "-m", model, "-o", tmp_path / "events.parquet")
    assert events["windows"] == table["windows"]


def test_training_summary_counts_every_dropped_window(hdfs: dict[str, Path], tmp_path: Path) -> None:
    by_model = _train(hdfs, tmp_path / "a")["training"]
    assert by_model["dropped_anomalous_by_split"] == 0
    assert by_model["dropped_by_model"] > 0
    by_split = _train(hdfs, tmp_path / "b", "--normal-only")["training"]
    # --normal-only drops from train and validation, the model from its training part only
    assert by_split["dropped_anomalous_by_split"] >= by_model["dropped_by_model"]
    assert by_split["dropped_by_model"] == 0
    kept = _train(hdfs, tmp_path / "c", "--include-anomalies")["training"]
    assert kept["dropped_by_model"] == 0 and kept["dropped_anomalous_by_split"] == 0
    saved = json.loads((tmp_path / "a" / "train_summary.json").read_text())
    assert saved["training"] == by_model


def test_raw_text_models_need_no_parser(tmp_path: Path, hdfs: dict[str, Path]) -> None:
    events = tmp_path / "raw_events.parquet"
    ok("parse", hdfs["log"], "--format", "hdfs", "--no-templates", "-o", events)
    assert read_meta(events)["templates_mined"] is False
    assert pl.read_parquet(events)["event_id"].null_count() == pl.read_parquet(events).height
    ok("group", events, "--labels", hdfs["labels"], "-o", tmp_path / "w.parquet")
    windows = pl.read_parquet(tmp_path / "w.parquet")
    assert "messages" in windows.columns
    res = invoke("train", tmp_path / "w.parquet", "--model", "deeplog", "-o", tmp_path / "m")
    assert res.exit_code == 2 and "--no-templates" in res.output
    ok("train", tmp_path / "w.parquet", "--model", "bursic", "--test", "0.3",
       "--set", "text_epochs=1", "--set", "epochs=1", "-o", tmp_path / "b")  # fmt: skip
    det = ok("detect", tmp_path / "b" / "test_windows.parquet", "-m", tmp_path / "b",
             "-o", tmp_path / "s.parquet")  # fmt: skip
    assert det["windows"] > 0


def test_a_failed_train_leaves_the_previous_model_intact(
    hdfs: dict[str, Path], tmp_path: Path
) -> None:
    model = tmp_path / "model"
    _train(hdfs, model, "--normal-only")
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    res = invoke("train", hdfs["windows"], "--model", "deeplog", "--test", "0.3",
                 "--set", "epochs=-1", "-o", model)  # fmt: skip
    assert res.exit_code == 2
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]
    fresh = tmp_path / "fresh"
    res = invoke("train", hdfs["windows"], "--model", "deeplog", "--set", "epochs=-1", "-o", fresh)
    assert res.exit_code == 2 and not fresh.exists()


def test_bad_parser_state_is_refused_before_training(hdfs: dict[str, Path], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\xffnot json")
    res = invoke("train", hdfs["windows"], "--model", "pca", "--state", garbage, "-o", tmp_path / "m")
    assert res.exit_code == 2 and "garbage.bin" in res.output and not (tmp_path / "m").exists()
    missing = invoke("train", hdfs["windows"], "--model", "pca", "--state", tmp_path / "no.json",
                     "-o", tmp_path / "m")  # fmt: skip
    assert missing.exit_code == 2 and not (tmp_path / "m").exists()


def test_retraining_replaces_the_parser_state(hdfs: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "model"
    _train(hdfs, model, "--normal-only")
    stale = model / "parser_state.json"
    stale.write_text(json.dumps({"stale": True}))
    _train(hdfs, model, "--normal-only")
    assert json.loads(stale.read_text()) == read_meta(hdfs["windows"])["parser_state"]


def test_refuses_to_replace_a_directory_that_is_not_a_model(
    hdfs: dict[str, Path], tmp_path: Path
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    res = invoke("train", hdfs["windows"], "--model", "pca", "-o", precious)
    assert res.exit_code == 2 and "refusing" in res.output
    assert (precious / "notes.txt").read_text() == "keep me"
