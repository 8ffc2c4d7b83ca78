"""The demo job behind ``logsieve demo``: every stage once, end to end.

A synthetic (or given) HDFS log is parsed, grouped into sessions by block id, DeepLog is
trained on the normal sessions of the first 60% (10% validate its threshold) and scores
the last 30%; the summary gives the parsing speed, the windows, the metrics and, for a
synthetic log, which injected anomaly kinds DeepLog catches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.evaluation.scores import evaluate_scores
from logsieve.grouping.specs import build_spec
from logsieve.pipeline.jobs import detect_job, group_job, parse_job, train_job

__all__ = ["DEMO_EPOCHS", "caught_by_kind", "run_demo"]

#: DeepLog's training epochs in the demo (for a progress bar's total)
DEMO_EPOCHS = 5


def run_demo(
    workdir: str | Path,
    *,
    lines: int = 200_000,
    seed: int = 0,
    dataset: str | Path | None = None,
    labels: str | Path | None = None,
    top: int = 3,
    parse_progress: Callable[[int, int], None] | None = None,
    train_progress: Callable[[Any], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Synthetic (or given) HDFS log -> parse -> sessions by block id -> DeepLog -> scores.

    ``dataset``/``labels``: an HDFS log (plain or .gz) and its ``BlockId,Label`` CSV instead
    of a synthetic log of ``lines`` lines generated with ``seed``. Writes the log, the events
    and windows tables, the model directory ``deeplog/`` and ``scores.parquet`` under
    ``workdir``. ``parse_progress`` gets ``(bytes_done, bytes_total)``; ``train_progress``
    one report per epoch. Returns the summary and the ``top`` highest-scoring test
    windows, explained, with their raw lines.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    kinds_path: Path | None = None
    if dataset is None:
        from logsieve.synth import generate

        log_path = workdir / "synthetic_hdfs.log"
        gen = generate(log_path, lines=lines, seed=seed)
        labels = Path(gen.labels_path)
        kinds_path = Path(gen.kinds_path)
    else:
        log_path = Path(dataset)
    events_path = workdir / "events.parquet"
    windows_path = workdir / "windows.parquet"
    stats = parse_job([log_path], events_path, format="hdfs", progress=parse_progress)
    grouped = group_job(events_path, windows_path, build_spec(), labels=labels)
    windows = pl.read_parquet(windows_path, columns=["label"])
    n_anom = int((windows["label"] == 1).sum())
    summary: dict[str, Any] = {
        "log": str(log_path),
        "lines": stats["lines"],
        "parse_seconds": round(stats["seconds"], 2),
        "lines_per_second": round(stats["lines_per_second"]),
        "templates": stats["templates"],
        "windows": windows.height,
        "anomalous_windows": n_anom,
        "anomaly_ratio": round(n_anom / windows.height, 4) if windows.height else 0.0,
        "events": str(events_path),
        "windows_table": str(windows_path),
        "lines_without_block_id": grouped.get("lines_dropped"),
    }
    # DeepLog: 60/10/30 chronological split, trained on the normal sessions.
    model_dir = workdir / "deeplog"
    trained = train_job(
        windows_path, "deeplog", {"epochs": DEMO_EPOCHS, "random_state": 0}, model_dir,
        split="0.6,0.1,0.3", split_method="chronological", train_normal_only=True,
        progress=train_progress,
    )  # fmt: skip
    scores_path = workdir / "scores.parquet"
    detected, alerts = detect_job(
        model_dir / "test_windows.parquet", model_dir, scores_path, events=events_path, top=top
    )
    metrics = evaluate_scores(scores_path)
    summary.update(
        {
            "model": str(model_dir),
            "train_seconds": round(trained["train_seconds"], 2),
            "test_windows": detected["windows"],
            "alerts": detected["anomalies"],
            "precision": round(metrics["precision"], 3),
            "recall": round(metrics["recall"], 3),
            "f1": round(metrics["f1"], 3),
            "scores": str(scores_path),
        }
    )
    if kinds_path is not None:
        summary["caught_by_kind"] = caught_by_kind(scores_path, kinds_path)
    return summary, alerts


def caught_by_kind(scores_path: str | Path, kinds_path: str | Path) -> dict[str, str]:
    """``{kind: "caught/of"}``: flagged windows per injected anomaly kind (DeepLog sees the
    order of events only, so some kinds are out of its reach)."""
    kinds = pl.read_csv(kinds_path).select(pl.col("BlockId").alias("window_id"), "Kind")
    caught = (
        pl.read_parquet(scores_path)
        .join(kinds, on="window_id")
        .group_by("Kind")
        .agg(pl.col("is_anomaly").sum().alias("caught"), pl.len().alias("of"))
        .sort("Kind")
    )
    return {r["Kind"]: f"{r['caught']}/{r['of']}" for r in caught.iter_rows(named=True)}
