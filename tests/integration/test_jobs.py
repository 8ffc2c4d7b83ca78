"""The jobs behind train / detect / evaluate, called as a program would (no CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from detector_fixtures import make_windows

from logsieve.detectors.registry import describe_detectors
from logsieve.errors import LogsieveError
from logsieve.evaluation.scores import evaluate_scores
from logsieve.pipeline.jobs import detect_job, parse_split, train_job

TINY = {"hidden_size": 16, "num_layers": 1, "epochs": 2, "batch_size": 64}


def test_train_detect_evaluate_jobs(tmp_path: Path) -> None:
    data = make_windows(n_normal=200, n_anomalous=40, seed=3)
    src = tmp_path / "windows.parquet"
    data.write_parquet(src)
    progress: list = []
    summary = train_job(
        src, "deeplog", {**TINY, "patience": None}, tmp_path / "model", split="0.6,0.2,0.2",
        train_normal_only=True, progress=progress.append,
    )  # fmt: skip
    # an explicit None is a value (--set patience=null); parameters left out keep defaults
    assert summary["model"] == "deeplog" and summary["params"]["patience"] is None
    assert summary["params"]["hidden_size"] == 16 and summary["params"]["session_bounds"] is True
    assert progress and progress[0].epoch == 1
    assert (tmp_path / "model" / "model.json").is_file()
    assert (tmp_path / "model" / "train_summary.json").is_file()
    out = tmp_path / "scores.parquet"
    det, top = detect_job(tmp_path / "model" / "test_windows.parquet", tmp_path / "model", out, top=3)
    scores = pl.read_parquet(out)
    assert scores.columns == ["window_id", "score", "is_anomaly", "label", "explanation"]
    explained = scores.filter(pl.col("explanation").is_not_null())
    assert explained.height == det["explained"]
    # every flagged window is explained, and so are the 3 highest scores, flagged or not
    assert set(scores.filter(pl.col("is_anomaly"))["window_id"]) <= set(explained["window_id"])
    worst = scores.sort("score", descending=True).head(3)["window_id"].to_list()
    assert [t["window_id"] for t in top] == worst
    assert json.loads(explained["explanation"][0])["window_id"] == explained["window_id"][0]
    metrics = evaluate_scores(out)
    for key in ("precision", "recall", "specificity", "f1", "roc_auc", "pr_auc"):
        assert key in metrics
    assert metrics["roc_auc"] > 0.8
    assert metrics["n"] == scores.height


def test_job_errors_and_models_list(tmp_path: Path) -> None:
    assert parse_split("0.8,0.1") == (0.8, 0.1, None)
    with pytest.raises(LogsieveError):
        parse_split("0.8")
    with pytest.raises(LogsieveError, match="not found"):
        detect_job(tmp_path / "missing.parquet", tmp_path, tmp_path / "o.parquet")
    pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(LogsieveError, match="event_ids"):
        train_job(tmp_path / "bad.parquet", "deeplog", {}, tmp_path / "m")
    deeplog = next(r for r in describe_detectors() if r["name"] == "deeplog")
    assert deeplog["input_kind"] == "sequence" and deeplog["requires_labels"] is False


def test_training_that_flags_most_normals_says_so(tmp_path: Path) -> None:
    data = make_windows(n_normal=200, n_anomalous=40, seed=4)
    src = tmp_path / "windows.parquet"
    data.write_parquet(src)
    ok = train_job(src, "pca", {}, tmp_path / "ok", split="0.6,0.2,0.2")
    assert ok["warnings"] == []
    broken = train_job(src, "pca", {"threshold": -1e9}, tmp_path / "broken", split="0.6,0.2,0.2")
    assert len(broken["warnings"]) == 1 and "normal validation windows" in broken["warnings"][0]


def test_training_still_improving_at_its_last_epoch_says_so() -> None:
    """The transformer_nextlog case of issue 16: five epochs, validation loss still falling."""
    from types import SimpleNamespace

    from logsieve.pipeline.core import Pipeline

    def fake(losses: list[float], stopped: bool = False) -> SimpleNamespace:
        history = [{"epoch": i + 1, "valid_loss": x, "stopped": False} for i, x in enumerate(losses)]
        history[-1]["stopped"] = stopped
        return SimpleNamespace(history_=history)

    falling = Pipeline._health(fake([1.59, 1.20, 0.975, 0.957, 0.858]), None)  # type: ignore[arg-type]
    assert len(falling) == 1 and "still falling" in falling[0] and "0.957 -> 0.858" in falling[0]
    assert Pipeline._health(fake([1.59, 1.20, 0.975, 0.960, 0.958]), None) == []  # type: ignore[arg-type]
    assert Pipeline._health(fake([1.59, 1.20, 0.9], stopped=True), None) == []  # type: ignore[arg-type]
    assert "rose" in Pipeline._health(fake([1.0, 1.2, 1.3]), None)[0]  # type: ignore[arg-type]
