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
    if dataset is None:
        from logsieve.synth import generate

        log_path = workdir / "synthetic_hdfs.log"
        gen = generate(log_path, lines=lines, seed=seed)
        labels = Path(gen.labels_path)
    else:
        log_path = dataset
    events_path = workdir / "events.parquet"
    windows_path = workdir / "windows.parquet"
    with byte_progress("parsing", enabled=not quiet) as progress:
        _, stats, parser = parse_file(log_path, format="hdfs", output=events_path, progress=progress)
    grouped = group_command(events_path, windows_path, labels=labels)
    windows = pl.read_parquet(windows_path, columns=["label"])
    n_anom = int((windows["label"] == 1).sum())
    return {
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
        **{f"group_{k}": v for k, v in grouped.items() if k in ("lines_without_key",)},
    }
