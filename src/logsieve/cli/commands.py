"""Glue between CLI options and the library for parse, synth and demo. No logic of its own
beyond turning options into calls and results into summary dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from logsieve.cli.ui import byte_progress


def parse(
    inputs: list[Path],
    output: Path,
    format: str,
    masks: list[str],
    state: Path | None,
    match_only: bool,
    templates_out: Path | None,
    truth: Path | None,
    depth: int | None,
    sim_th: float | None,
    quiet: bool,
    no_templates: bool = False,
) -> dict[str, Any]:
    from logsieve.parsing.masks import Mask
    from logsieve.pipeline.jobs import parse_job

    with byte_progress("parsing", enabled=not quiet) as progress:
        return parse_job(
            inputs, output, format=format, masks=[Mask.parse(m) for m in masks], state=state,
            match_only=match_only, templates_out=templates_out, truth=truth,
            no_templates=no_templates, progress=progress, depth=depth, sim_th=sim_th,
        )  # fmt: skip


def synth(output: Path, lines: int, seed: int, anomaly_ratio: float) -> dict[str, Any]:
    from logsieve.synth import generate

    stats = generate(output, lines=lines, seed=seed, anomaly_ratio=anomaly_ratio)
    return stats.to_dict() if hasattr(stats, "to_dict") else dict(vars(stats))


def demo(
    workdir: Path, lines: int, seed: int, dataset: Path | None, labels: Path | None, quiet: bool
) -> dict[str, Any]:
    """synthetic (or given) HDFS log -> parse -> sessions by block id -> summary."""
    from logsieve.grouping.specs import build_spec
    from logsieve.pipeline.jobs import group_job, parse_job

    workdir.mkdir(parents=True, exist_ok=True)
    kinds_path: Path | None = None
    if dataset is None:
        from logsieve.synth import generate

        log_path = workdir / "synthetic_hdfs.log"
        gen = generate(log_path, lines=lines, seed=seed)
        labels = Path(gen.labels_path)
        kinds_path = Path(gen.kinds_path)
    else:
        log_path = dataset
    events_path = workdir / "events.parquet"
    windows_path = workdir / "windows.parquet"
    with byte_progress("parsing", enabled=not quiet) as progress:
        stats = parse_job([log_path], events_path, format="hdfs", progress=progress)
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
    # DeepLog on the first 70% of the sessions (normal ones), scored on the last 30%.
    model_dir = workdir / "deeplog"
    trained = train_command_quiet(windows_path, model_dir, events_path, quiet)
    scores_path = workdir / "scores.parquet"
    det, alerts = detect(
        model_dir / "test_windows.parquet", model_dir, scores_path, format=None, events=events_path,
        state=None, session=None, window=None, time=None, labels=None, top=3,
    )
    from logsieve.evaluation.scores import evaluate_scores

    metrics = evaluate_scores(scores_path)
    summary.update(
        {
            "model": str(model_dir),
            "train_seconds": round(trained["train_seconds"], 2),
            "test_windows": det["windows"],
            "alerts": det["anomalies"],
            "precision": round(metrics["precision"], 3),
            "recall": round(metrics["recall"], 3),
            "f1": round(metrics["f1"], 3),
            "scores": str(scores_path),
        }
    )
    if kinds_path is not None:
        # DeepLog sees the order of events only: say which injected kinds it catches.
        kinds = pl.read_csv(kinds_path).select(pl.col("BlockId").alias("window_id"), "Kind")
        caught = pl.read_parquet(scores_path).join(kinds, on="window_id").group_by("Kind").agg(
            pl.col("is_anomaly").sum().alias("caught"), pl.len().alias("of")
        ).sort("Kind")
        summary["caught_by_kind"] = {r["Kind"]: f"{r['caught']}/{r['of']}" for r in caught.iter_rows(named=True)}
    if not quiet:
        from logsieve.cli.ui import print_alerts

        print_alerts(alerts)
    return summary


def train_command_quiet(windows_path: Path, model_dir: Path, events_path: Path, quiet: bool) -> dict[str, Any]:
    """The demo's DeepLog: 60/10/30 chronological split, trained on normal sessions."""
    from logsieve.cli.ui import epoch_progress
    from logsieve.pipeline.jobs import train_job

    with epoch_progress("training DeepLog", total=5, enabled=not quiet) as cb:
        return train_job(
            windows_path, "deeplog", {"epochs": 5, "random_state": 0}, model_dir, split="0.6,0.1,0.3",
            split_method="chronological", train_normal_only=True, progress=cb,
        )


def train(
    windows: Path, model: str, sets: list[str], output: Path, *, split: str, valid: float, test: float,
    valid_file: Path | None, seed: int, normal_only: bool, include_anomalies: bool, templates: Path | None,
    events: Path | None, state: Path | None, quiet: bool,
) -> dict[str, Any]:
    from logsieve.cli.options import parse_sets
    from logsieve.cli.ui import epoch_progress
    from logsieve.pipeline.jobs import train_job

    params = parse_sets(sets)
    if valid_file is not None:
        fractions = None if test == 0 else f"{1 - test},0,{test}"
    else:
        fractions = f"{1 - valid - test},{valid}" + (f",{test}" if test else "")
    epochs = params.get("epochs")
    total = epochs if isinstance(epochs, int) else None
    with epoch_progress(f"training {model}", total=total, enabled=not quiet) as cb:
        summary = train_job(
            windows, model, params, output, split=fractions, valid=valid_file, split_method=split,
            seed=seed, train_normal_only=normal_only, include_anomalies=include_anomalies,
            templates=templates, events=events, state=state, progress=cb,
        )  # fmt: skip
    summary.pop("history", None)
    return summary


def detect(
    input: Path, model_dir: Path, output: Path, *, format: str | None, events: Path | None, state: Path | None,
    session: str | None, window: str | None, time: str | None, labels: Path | None, top: int,
    templates: Path | None = None, session_field: str | None = None, idle: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score a windows table, an events table or a raw log; return the top-N alerts."""
    from logsieve.grouping.specs import build_spec
    from logsieve.pipeline.jobs import detect_job

    given = session or window or time or session_field or idle
    grouping = (
        build_spec(session=session, window=window, time=time, idle=idle, session_field=session_field)
        if given
        else None
    )
    return detect_job(
        input, model_dir, output, format=format, events=events, state=state, grouping=grouping,
        labels=labels, top=top, templates=templates,
    )  # fmt: skip
