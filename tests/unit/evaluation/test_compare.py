"""Side-by-side comparison (logsieve.evaluation.compare) and its CLI function, plus per-client sessions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from detector_fixtures import TEMPLATES, make_windows

from logsieve.detectors.autoencoders import Autoencoder
from logsieve.detectors.registry import get_detector_class
from logsieve.errors import LogsieveError
from logsieve.evaluation.compare import QUANTILES, compare, jaccard
from logsieve.grouping.fields import client_sessions
from logsieve.schema import WINDOW_SCHEMA

FAST = {
    "ae": {**Autoencoder._test_params(), "epochs": 20},
    "lstm_ae": {**get_detector_class("lstm_ae")._test_params(), "epochs": 20},
}


@pytest.fixture(scope="module")
def windows() -> pl.DataFrame:
    return make_windows(seed=2)


@pytest.fixture(scope="module")
def result(windows):
    return compare(windows, ["ae", "lstm_ae"], top=5, params=FAST, templates=TEMPLATES)


def test_jaccard():
    assert jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 1.0
    assert jaccard({1}, {1}) == 1.0


def test_top_lists_are_the_highest_scores(result, windows):
    assert result.names == ["ae", "lstm_ae"]
    for m in result.models:
        assert len(m.top) == 5
        scores = [t["score"] for t in m.top]
        assert scores == sorted(scores, reverse=True)
        assert scores[-1] >= np.sort(m.scores)[-5]
        assert [t["rank"] for t in m.top] == [1, 2, 3, 4, 5]
        for t in m.top:
            row = windows.row(t["row"], named=True)
            assert row["window_id"] == t["window_id"] and t["label"] == row["label"]
            assert t["lines"] == row["messages"][:20] and t["n_lines"] == len(row["event_ids"])
            assert t["is_anomaly"] == (t["score"] > m.threshold)


def test_summary_overlap_and_metrics(result):
    table = result.summary_table()
    assert table.get_column("model").to_list() == ["ae", "lstm_ae"]
    qs = [f"q{round(q * 100)}" for q in QUANTILES]
    for row in table.iter_rows(named=True):
        values = [row[q] for q in qs]
        assert values == sorted(values) and row["count"] == 264
    (pair,) = result.overlap()
    sets = result.top_sets()
    assert pair["jaccard"] == jaccard(sets["ae"], sets["lstm_ae"]) and pair["common"] == len(
        sets["ae"] & sets["lstm_ae"]
    )
    matrix = result.overlap_matrix()
    assert matrix["ae"].to_list() == [1.0, pair["jaccard"]]
    for m in result.models:
        assert m.metrics is not None and 0.0 <= m.metrics["top_precision"] <= 1.0
        assert m.metrics["n"] == 264 and not m.trained_with_labels
    frame = result.scores_frame()
    assert frame.columns == ["window_id", "ae", "ae_rank", "lstm_ae", "lstm_ae_rank"]
    best = frame.sort("ae_rank").get_column("window_id")[0]
    assert best == result["ae"].top[0]["window_id"]


def test_every_window_is_training_data(result, windows):
    # labels never filter the training windows: anomalies are fitted too
    assert result["ae"].detector.n_train_windows_ == windows.height - int(windows.height * 0.1)


def test_to_dict_is_json(result):
    doc = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert doc["windows"] == 264 and doc["top"] == 5 and doc["labelled"]
    assert [m["name"] for m in doc["models"]] == ["ae", "lstm_ae"]
    assert set(doc["models"][0]["summary"]) >= {"mean", "std", "q50", "q99", "flagged"}


def test_plots_are_written_atomically(result, tmp_path):
    paths = result.plot(tmp_path / "plots")
    assert [p.name for p in paths] == ["ae_scores.png", "lstm_ae_scores.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(x.name for x in (tmp_path / "plots").iterdir()) == [
        "ae_scores.png",
        "lstm_ae_scores.png",
    ]
    assert result.plots == [str(p) for p in paths]


def test_detector_objects_and_repeated_names(windows):
    det = Autoencoder(**{**FAST["ae"], "epochs": 3})
    res = compare(
        windows.drop("messages"),
        [det, "ae"],
        top=3,
        params={"ae": {**FAST["ae"], "epochs": 3}},
        templates=TEMPLATES,
    )
    assert res.names == ["ae", "ae#2"]
    assert res["ae"].detector is det and hasattr(det, "threshold_")
    assert res["ae"].top[0]["lines"][0] in TEMPLATES.values()  # no messages: templates shown


def test_bad_requests(windows):
    with pytest.raises(LogsieveError, match="unknown detector"):
        compare(windows, "nope")
    with pytest.raises(LogsieveError, match="not compared"):
        compare(windows, "ae", params={"lstm_ae": {}})
    with pytest.raises(LogsieveError, match="top"):
        compare(windows, "ae", top=0)
    with pytest.raises(LogsieveError, match="at least one model"):
        compare(windows, " , ")
    with pytest.raises(LogsieveError, match="at least one window"):
        compare(windows.head(0), "ae")


# ---------------------------------------------------------------- client sessions
def _events() -> pl.DataFrame:
    t0 = datetime(2017, 11, 29, 6, 0, tzinfo=UTC)
    minutes = [0, 1, 2, 50, 51, 3, 4, 5]
    return pl.DataFrame(
        {
            "line_id": list(range(1, 9)),
            "timestamp": [t0 + timedelta(minutes=m) for m in minutes],
            "IP": ["a", "a", "b", "a", "a", "b", None, "b"],
            "event_id": ["E1", "E2", "E1", "E3", "E4", "E2", "E9", "E5"],
            "label": [None, None, None, 1, None, None, None, 0],
        },
        schema_overrides={"label": pl.Int8},
    )


def test_client_sessions_cut_on_idle_gaps():
    w = client_sessions(_events(), "IP", "30m")
    assert w.schema == pl.Schema(WINDOW_SCHEMA)
    assert w["window_id"].to_list() == ["a#1", "b#1", "a#2"]
    assert w["event_ids"].to_list() == [["E1", "E2"], ["E1", "E2", "E5"], ["E3", "E4"]]
    assert w["line_ids"].to_list() == [[1, 2], [3, 6, 8], [4, 5]]
    assert w["label"].to_list() == [None, 0, 1]
    whole = client_sessions(_events(), "IP", None)
    assert whole["window_id"].to_list() == ["a#1", "b#1"]
    with pytest.raises(LogsieveError, match="no 'Host' column"):
        client_sessions(_events(), "Host")


def test_weblog_sessions_and_compare(shared_data):
    import dataclasses

    from logsieve.formats import get_format
    from logsieve.parsing.parser import LogParser

    path = shared_data / "weblog_http" / "webLog_zpettry_cleaned.csv"
    if not path.is_file():
        pytest.skip("weblog data not present")
    fmt = dataclasses.replace(
        get_format("weblog"), skip_pattern=None
    )  # the file has no header line
    events, stats = LogParser(fmt).parse_files(path)
    assert stats.lines == 10787 and stats.malformed_lines == 0
    sessions = client_sessions(events, "IP", "30m")
    assert sessions["event_ids"].list.len().sum() == 10787
    assert sessions["window_id"].str.extract(r"^(.*)#").n_unique() == 5  # five client addresses
    res = compare(sessions, "ae", top=5, params={"ae": {**FAST["ae"], "epochs": 5}})
    assert len(res["ae"].top) == 5 and res["ae"].metrics is None
