"""The demo job behind ``logsieve demo``: every stage once, end to end.

A synthetic (or given) HDFS log is parsed with its parameter values, grouped into sessions
by block id, DeepLog (key model and parameter-value model) is trained on the normal
sessions of the first 60% (10% validate its thresholds) and scores the last 30%; the
summary gives the parsing speed, the windows, the metrics and, for a synthetic log, which
injected anomaly kinds each part of DeepLog catches. Two kinds are out of the key model's
reach by design; for them the demo names and runs the model that catches them (the value
model's timing for ``stalled``, Invariant Mining for ``missing_step``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.evaluation.scores import evaluate_scores
from logsieve.grouping.specs import build_spec
from logsieve.pipeline.jobs import detect_job, group_job, parse_job, train_job

__all__ = [
    "BY_DESIGN", "DEMO_EPOCHS", "MODEL_NAMES", "caught_by_kind", "held_out_lines", "run_demo",
]  # fmt: skip

#: DeepLog's training epochs in the demo (for a progress bar's total)
DEMO_EPOCHS = 5

#: why DeepLog's key model misses a kind by design, and which model the demo shows instead
#: readable names of the flag columns of ``caught_by_kind``
MODEL_NAMES = {
    "deeplog_keys": "DeepLog's key model",
    "deeplog_values": "DeepLog's value model (its time since the previous line)",
    "invariants": "Invariant Mining (`invariants`, event counts)",
    "deeplog": "DeepLog, both parts",
}

BY_DESIGN: dict[str, tuple[str, str]] = {
    "stalled": (
        "the key model cannot see it by design: a stalled block logs the normal keys in the "
        "normal order, only late",
        "deeplog_values",
    ),
    "missing_step": (
        "the key model sees it only when the key after the gap is outside its top-g: after a "
        "lost replica or responder line the next key is still a likely one; the lost line "
        "breaks a count invariant instead",
        "invariants",
    ),
}


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
    stats = parse_job([log_path], events_path, format="hdfs", values=True, progress=parse_progress)
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
    # DeepLog, key and value models: 60/10/30 chronological split, trained on normal sessions.
    split: dict[str, Any] = {
        "split": "0.6,0.1,0.3", "split_method": "chronological", "train_normal_only": True
    }  # fmt: skip
    model_dir = workdir / "deeplog"
    params = {"epochs": DEMO_EPOCHS, "random_state": 0, "parameter_model": True}
    trained = train_job(
        windows_path, "deeplog", params, model_dir, progress=train_progress, **split
    )
    test_path = model_dir / "test_windows.parquet"
    scores_path = workdir / "scores.parquet"
    detected, alerts = detect_job(test_path, model_dir, scores_path, events=events_path, top=top)
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
    if kinds_path is None:
        return summary, alerts
    # which part of DeepLog flags what, and Invariant Mining (event counts) beside it
    flags = _deeplog_parts(model_dir, test_path)
    inv_dir = workdir / "invariants"
    inv = train_job(windows_path, "invariants", {}, inv_dir, **split)
    inv_scores = workdir / "invariants_scores.parquet"
    detect_job(inv_dir / "test_windows.parquet", inv_dir, inv_scores)
    flags["invariants"] = pl.read_parquet(inv_scores).select("window_id", "is_anomaly")
    summary["invariants_train_seconds"] = round(inv["train_seconds"], 2)
    flags["deeplog"] = pl.read_parquet(scores_path).select("window_id", "is_anomaly")
    table = {
        name: caught_by_kind(frame, kinds_path) for name, frame in flags.items()
    }  # fmt: skip
    normal = pl.read_parquet(test_path, columns=["window_id", "label"]).filter(pl.col("label") == 0)
    summary["normal_flagged"] = {
        name: f"{frame.join(normal, on='window_id')['is_anomaly'].sum()}/{normal.height}"
        for name, frame in flags.items()
    }
    summary["caught_by_kind"] = {
        kind: {name: table[name].get(kind, "0/0") for name in flags}
        for kind in sorted(table["deeplog"])
    }
    summary["by_design"] = {
        kind: f"{why}; {MODEL_NAMES[model]} catches {table[model].get(kind, '0/0')}"
        for kind, (why, model) in BY_DESIGN.items()
        if kind in table["deeplog"]
    }
    return summary, alerts


def _deeplog_parts(model_dir: Path, test_path: Path) -> dict[str, pl.DataFrame]:
    """Flags of DeepLog's key model alone and of its value model alone on the test windows."""
    from logsieve.pipeline import Pipeline

    detector = Pipeline.load(model_dir).detector
    test = pl.read_parquet(test_path)
    ids = test.get_column("window_id")
    values = getattr(detector, "values_", None)
    out = {}
    if values is not None:
        flagged = values.window_scores(test) > values.z_
        out["deeplog_values"] = pl.DataFrame({"window_id": ids, "is_anomaly": flagged})
        setattr(detector, "values_", None)  # noqa: B010  (a loaded copy: the key model alone from here)
    key = detector.predict(test).astype(bool)
    return {"deeplog_keys": pl.DataFrame({"window_id": ids, "is_anomaly": key}), **out}


def caught_by_kind(scores: str | Path | pl.DataFrame, kinds_path: str | Path) -> dict[str, str]:
    """``{kind: "caught/of"}``: flagged windows per injected anomaly kind.

    ``scores``: a scores file or a frame with ``window_id`` and ``is_anomaly``.
    """
    kinds = pl.read_csv(kinds_path).select(pl.col("BlockId").alias("window_id"), "Kind")
    frame = scores if isinstance(scores, pl.DataFrame) else pl.read_parquet(scores)
    caught = (
        frame.join(kinds, on="window_id")
        .group_by("Kind")
        .agg(pl.col("is_anomaly").sum().alias("caught"), pl.len().alias("of"))
        .sort("Kind")
    )
    return {r["Kind"]: f"{r['caught']}/{r['of']}" for r in caught.iter_rows(named=True)}


def held_out_lines(log: str | Path, model_dir: str | Path) -> list[str]:
    """The raw lines of the demo's test windows, in log order: what ``logsieve demo --serve``
    feeds the service's stream (the model never saw them in training).

    ``log``: the demo's log (plain or gzip); ``model_dir``: its model (``test_windows.parquet``
    holds the test windows' line numbers).
    """
    from logsieve.io.reader import iter_line_chunks

    wanted = (
        pl.read_parquet(Path(model_dir) / "test_windows.parquet", columns=["line_ids"])
        .get_column("line_ids")
        .explode()
        .drop_nulls()
        .unique()
    )
    keep: list[str] = []
    for chunk in iter_line_chunks(log):
        numbers = pl.int_range(chunk.first_line, chunk.first_line + len(chunk.lines), eager=True)
        keep.extend(chunk.lines.filter(numbers.is_in(wanted.implode())).to_list())
    return keep
