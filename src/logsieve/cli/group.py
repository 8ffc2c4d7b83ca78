"""Thin functions behind ``logsieve group`` and ``logsieve sequences`` (wired in app.py).

Option strings parsed here:

- ``--session REGEX``: sessions keyed by the regex (default: HDFS block ids);
- ``--window "N[,STEP]"``: count windows of N lines every STEP lines;
- ``--time "DUR[,STEP]"``: time windows, e.g. ``"30m"`` or ``"1h,10m"``;
- ``--idle DUR``: cut sessions at gaps longer than DUR (sessions only);
- ``--labels FILE``: side-file key labels (``BlockId,Label`` CSV or a list of anomalous ids).
- ``--session-field FIELD``: sessions keyed by a column of the events table (a format field,
  e.g. ``IP`` of ``weblog``), with ``--idle``; labels come from the lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.grouping.sequences import concat_windows, read_sequences
from logsieve.grouping.windows import (
    HDFS_BLOCK_PATTERN,
    CountWindows,
    GroupResult,
    GroupSpec,
    Sessions,
    TimeWindows,
    describe,
    group,
)
from logsieve.io.atomic import write_parquet
from logsieve.schema import EVENT_IDS, LABEL


def parse_window_option(text: str) -> CountWindows:
    """``"N"`` or ``"N,STEP"`` -> :class:`CountWindows`."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise LogsieveError(f"bad --window {text!r}: expected N or N,STEP (positive integers)")
    size = int(parts[0])
    step = int(parts[1]) if len(parts) == 2 else None
    return CountWindows(size, step)


def parse_time_option(text: str) -> TimeWindows:
    """``"DUR"`` or ``"DUR,STEP"`` -> :class:`TimeWindows` (e.g. ``"1h,10m"``)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 2 or not all(parts):
        raise LogsieveError(f"bad --time {text!r}: expected DUR or DUR,STEP (e.g. 30m or 1h,10m)")
    return TimeWindows(parts[0], parts[1] if len(parts) == 2 else None)


def build_spec(
    session: str | None = None,
    window: str | None = None,
    time: str | None = None,
    idle: str | None = None,
) -> GroupSpec:
    """The grouping spec for the CLI options (exactly one kind; sessions by default)."""
    chosen = [
        name for name, v in (("--session", session), ("--window", window), ("--time", time)) if v
    ]
    if len(chosen) > 1:
        raise LogsieveError(f"choose one of --session, --window, --time (got {', '.join(chosen)})")
    if idle and (window or time):
        raise LogsieveError("--idle only applies to sessions")
    if window:
        return parse_window_option(window)
    if time:
        return parse_time_option(time)
    return Sessions(session or HDFS_BLOCK_PATTERN, idle or None)


def group_command(
    events_path: str | Path,
    output: str | Path,
    session: str | None = None,
    window: str | None = None,
    time: str | None = None,
    idle: str | None = None,
    labels: str | Path | None = None,
    session_field: str | None = None,
) -> dict[str, Any]:
    """Group a parsed events parquet into windows and write them as parquet (atomically).

    ``session_field``: sessions keyed by a field of the events table instead (a column
    of the log format, e.g. the client ``IP`` of a ``weblog`` log), cut at gaps longer
    than ``idle`` (see :func:`logsieve.compare.client_sessions`); a window's label is the
    largest label of its lines.

    Returns a summary: grouping, windows, anomalous/normal/unlabelled, lines, lines
    dropped, and the output path.
    """
    events = Path(events_path)
    if session_field is not None:
        others = [name for name, v in (("--session", session), ("--window", window), ("--time", time)) if v]
        if others:
            raise LogsieveError(f"--session-field cannot be combined with {', '.join(others)}")
        if labels is not None:
            raise LogsieveError("--labels does not apply to --session-field: window labels come from the lines")
    if not events.is_file():
        raise LogsieveError(f"{events}: events file not found (run `logsieve parse` first)")
    if session_field is not None:
        return _group_by_field(events, output, session_field, idle)
    spec = build_spec(session, window, time, idle)
    result = group(events, spec, labels=labels)
    write_parquet(result.windows, output)
    return {"grouping": describe(spec), **result.summary(), "output": str(output)}


def _group_by_field(events: Path, output: str | Path, field: str, idle: str | None) -> dict[str, Any]:
    from logsieve.compare import client_sessions

    windows = client_sessions(events, field, idle)
    write_parquet(windows, output)
    lines = int(pl.scan_parquet(events).select(pl.len()).collect().item())
    grouped = int(windows[EVENT_IDS].list.len().sum() or 0)
    result = GroupResult(windows, lines, lines - grouped)  # dropped: lines whose field is empty
    grouping = {"kind": "session_field", "field": field, "idle": idle}
    return {"grouping": grouping, **result.summary(), "output": str(output)}


def sequences_command(
    paths: Sequence[str | Path],
    output: str | Path,
    label: int | None = None,
) -> dict[str, Any]:
    """Import pre-parsed sequence files into one windows parquet (atomically).

    Returns a summary: windows, anomalous/normal/unlabelled, per-file counts, output path.
    """
    if not paths:
        raise LogsieveError("no sequence files given")
    tables = [read_sequences(p, label=label) for p in paths]
    windows = concat_windows(tables)
    write_parquet(windows, output)
    lab = windows[LABEL]
    return {
        "windows": windows.height,
        "anomalous": int((lab == 1).sum()),
        "normal": int((lab == 0).sum()),
        "unlabelled": int(lab.null_count()),
        "files": {str(p): t.height for p, t in zip(paths, tables, strict=True)},
        "output": str(output),
    }
