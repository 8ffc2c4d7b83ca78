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
) -> dict[str, Any]:
    from logsieve.io.atomic import atomic_path
    from logsieve.parsing.masks import Mask
    from logsieve.parsing.parser import parse_file, template_counts

    extra = [Mask.parse(m) for m in masks]
    params = {k: v for k, v in {"depth": depth, "sim_th": sim_th}.items() if v is not None}
    with byte_progress("parsing", enabled=not quiet) as progress:
        _, stats, _parser = parse_file(
            inputs, format=format, output=output, state=state, match_only=match_only,
            extra_masks=extra, progress=progress, **params,
        )
    summary: dict[str, Any] = {"output": str(output), **stats.to_dict()}
    if templates_out is not None:
        counts = template_counts(pl.scan_parquet(output))
        with atomic_path(templates_out, suffix=".csv") as tmp:
            counts.write_csv(tmp)
        summary["templates_out"] = str(templates_out)
    if truth is not None:
        from logsieve.parsing.accuracy import evaluate, load_truth

        pred = pl.read_parquet(output, columns=["line_id", "event_id", "template"])
        summary["accuracy"] = evaluate(load_truth(truth), pred)
    return summary


def synth(output: Path, lines: int, seed: int, anomaly_ratio: float) -> dict[str, Any]:
    from logsieve.synth import generate

    stats = generate(output, lines=lines, seed=seed, anomaly_ratio=anomaly_ratio)
    return stats.to_dict() if hasattr(stats, "to_dict") else dict(vars(stats))


def demo(
    workdir: Path, lines: int, seed: int, dataset: Path | None, labels: Path | None, quiet: bool
) -> dict[str, Any]:
    """synthetic (or given) HDFS log -> parse -> sessions by block id -> summary."""
    from logsieve.cli.group import group_command
    from logsieve.parsing.parser import parse_file

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
        _, stats, parser = parse_file(log_path, format="hdfs", output=events_path, progress=progress)
    grouped = group_command(events_path, windows_path, labels=labels)
    windows = pl.read_parquet(windows_path, columns=["label"])
    n_anom = int((windows["label"] == 1).sum())
    summary: dict[str, Any] = {
        "log": str(log_path),
        "lines": stats.lines,
        "parse_seconds": round(stats.seconds, 2),
        "lines_per_second": round(stats.lines_per_second),
        "templates": stats.templates,
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
    from logsieve.cli.models import evaluate_command

    metrics = evaluate_command(scores_path)
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
    from logsieve.cli.models import train_command
    from logsieve.cli.ui import epoch_progress

    with epoch_progress("training DeepLog", total=5, enabled=not quiet) as cb:
        return train_command(
            windows_path, "deeplog", {"epochs": 5, "random_state": 0}, model_dir, split="0.6,0.1,0.3",
            split_method="chronological", train_normal_only=True, templates=events_path, progress=cb,
        )


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs; values are read as JSON when they parse (5, 0.1, true, [3,4])."""
    import json

    from logsieve.errors import LogsieveError

    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise LogsieveError(f"--set takes key=value, not {item!r}")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def train(
    windows: Path, model: str, sets: list[str], output: Path, *, split: str, valid: float, test: float,
    valid_file: Path | None, seed: int, normal_only: bool, include_anomalies: bool, templates: Path | None,
    events: Path | None, state: Path | None, quiet: bool,
) -> dict[str, Any]:
    import shutil

    from logsieve.cli.models import train_command
    from logsieve.cli.ui import epoch_progress
    from logsieve.detectors.registry import get_detector_class
    from logsieve.errors import LogsieveError

    if split not in ("chronological", "random"):
        raise LogsieveError(f"--split is chronological or random, not {split!r}")
    params = parse_sets(sets)
    if include_anomalies:
        params["include_anomalies"] = True
    cls = get_detector_class(model)
    if "random_state" in cls().get_params() and "random_state" not in params:
        params["random_state"] = seed
    if valid_file is not None:
        fractions = None if test == 0 else f"{1 - test},0,{test}"
    else:
        fractions = f"{1 - valid - test},{valid}" + (f",{test}" if test else "")
    epochs = params.get("epochs")
    with epoch_progress(f"training {model}", total=epochs if isinstance(epochs, int) else None, enabled=not quiet) as cb:
        summary = train_command(
            windows, model, params, output, split=fractions, valid=valid_file, split_method=split, seed=seed,
            train_normal_only=normal_only, templates=templates, progress=cb, events=events,
        )
    if state is not None:
        shutil.copyfile(state, Path(output) / "parser_state.json")
        summary["parser_state"] = str(Path(output) / "parser_state.json")
    summary.pop("history", None)
    return summary


def detect(
    input: Path, model_dir: Path, output: Path, *, format: str | None, events: Path | None, state: Path | None,
    session: str | None, window: str | None, time: str | None, labels: Path | None, top: int,
    templates: Path | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score a windows table, or parse + group + score a raw log; return the top-N alerts."""
    import json

    from logsieve.cli.group import build_spec
    from logsieve.cli.models import detect_command
    from logsieve.errors import LogsieveError
    from logsieve.formats import get_format
    from logsieve.grouping import group, read_labels
    from logsieve.parsing.parser import parse_file

    events_df: pl.DataFrame | None = None
    if format is not None:
        state = state or (model_dir / "parser_state.json")
        if not Path(state).exists():
            raise LogsieveError(
                "a raw log needs the parser state the model was trained with: "
                "`logsieve train ... --state STATE.json` or `detect --state STATE.json`"
            )
        events_df, _, _ = parse_file(input, format=format, state=state, match_only=True)
        fmt = get_format(format)
        if session is None and window is None and time is None:
            session = fmt.session_pattern
            if session is None:
                raise LogsieveError(f"format {fmt.name!r} has no default session key: pass --session, --window or --time")
        spec = build_spec(session=session, window=window, time=time, idle=None)
        windows: pl.DataFrame | Path = group(
            events_df, spec, labels=read_labels(labels) if labels is not None else None
        ).windows
    else:
        windows = input
        if events is not None:
            events_df = pl.read_parquet(events)
    summary = detect_command(windows, model_dir, output, events=events_df, templates=templates, explain_top=max(top, 0))
    shown: list[dict[str, Any]] = []
    if top > 0:  # the N highest scores, flagged or not (an operator sees how close the rest came)
        scores = pl.read_parquet(output).with_row_index("__row")
        worst = scores.sort(["score", "__row"], descending=[True, False]).head(top)
        table = windows if isinstance(windows, pl.DataFrame) else pl.read_parquet(windows)
        for row in worst.iter_rows(named=True):
            entry: dict[str, Any] = {
                "window_id": row["window_id"],
                "score": row["score"],
                "is_anomaly": row["is_anomaly"],
                "label": row["label"],
                "explanation": json.loads(row["explanation"]) if row["explanation"] else None,
            }
            if events_df is not None and "line_ids" in table.columns:
                ids = table["line_ids"][row["__row"]].to_list()
                lines = events_df.filter(pl.col("line_id").is_in(ids)).sort("line_id")
                entry["lines"] = [
                    {"line_id": r["line_id"], "content": r["content"], "event_id": r["event_id"]}
                    for r in lines.select("line_id", "content", "event_id").iter_rows(named=True)
                ]
            shown.append(entry)
    return summary, shown
