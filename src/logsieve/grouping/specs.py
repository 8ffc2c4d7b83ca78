"""Grouping specs as data: built from CLI-style options, saved with a model, read back.

A grouping spec is one of :class:`~.windows.Sessions`, :class:`~.windows.CountWindows`,
:class:`~.windows.TimeWindows` or :class:`~.fields.FieldSessions`. The pipeline stores it in
the windows table's provenance and in the model directory, so scoring a new log groups its
lines exactly as the training windows were grouped, without repeating options.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.grouping.fields import FieldSessions, client_sessions
from logsieve.grouping.windows import (
    HDFS_BLOCK_PATTERN,
    CountWindows,
    GroupResult,
    Sessions,
    TimeWindows,
    group,
)
from logsieve.io.tables import scan_table
from logsieve.schema import EVENT_IDS

AnySpec = Sessions | CountWindows | TimeWindows | FieldSessions

__all__ = [
    "AnySpec",
    "build_spec",
    "group_any",
    "parse_time_option",
    "parse_window_option",
    "spec_from_dict",
    "spec_to_dict",
]


def parse_window_option(text: str) -> CountWindows:
    """``"N"`` or ``"N,STEP"`` -> :class:`CountWindows`."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise LogsieveError(f"bad --window {text!r}: expected N or N,STEP (positive integers)")
    return CountWindows(int(parts[0]), int(parts[1]) if len(parts) == 2 else None)


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
    session_field: str | None = None,
    default: AnySpec | None = None,
) -> AnySpec:
    """The spec for CLI-style options (at most one kind); ``default`` when none is given."""
    chosen = [
        name
        for name, v in (
            ("--session", session),
            ("--session-field", session_field),
            ("--window", window),
            ("--time", time),
        )
        if v
    ]
    if len(chosen) > 1:
        raise LogsieveError(f"choose one of --session, --session-field, --window, --time "
                            f"(got {', '.join(chosen)})")
    if idle and (window or time):
        raise LogsieveError("--idle only applies to sessions")
    if window:
        return parse_window_option(window)
    if time:
        return parse_time_option(time)
    if session_field:
        return FieldSessions(session_field, idle) if idle else FieldSessions(session_field)
    if session or idle or default is None:
        if default is not None and not session and isinstance(default, Sessions):
            return Sessions(default.pattern, idle or None)
        return Sessions(session or HDFS_BLOCK_PATTERN, idle or None)
    return default


def _duration(value: timedelta | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        us = int(value / timedelta(microseconds=1))
        for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000),
                           ("s", 1_000_000), ("ms", 1_000)):
            if us and us % size == 0:
                return f"{us // size}{unit}"
        return f"{us}us"
    return value


def spec_to_dict(spec: AnySpec) -> dict[str, Any]:
    """A JSON-able description that :func:`spec_from_dict` turns back into the same spec."""
    if isinstance(spec, Sessions):
        return {"kind": "session", "pattern": spec.pattern, "idle": _duration(spec.idle)}
    if isinstance(spec, FieldSessions):
        return {"kind": "session_field", "field": spec.field, "idle": _duration(spec.idle)}
    if isinstance(spec, CountWindows):
        return {"kind": "count", "size": spec.size, "step": spec.step}
    if isinstance(spec, TimeWindows):
        return {"kind": "time", "size": _duration(spec.size), "step": _duration(spec.step)}
    raise LogsieveError(f"unknown grouping {spec!r}")


def spec_from_dict(data: Mapping[str, Any]) -> AnySpec:
    """The spec a :func:`spec_to_dict` description stands for (one-line error otherwise)."""
    try:
        kind = data["kind"]
        if kind == "session":
            return Sessions(data["pattern"], data.get("idle"))
        if kind == "session_field":
            return FieldSessions(data["field"], data.get("idle"))
        if kind == "count":
            return CountWindows(int(data["size"]), data.get("step"))
        if kind == "time":
            return TimeWindows(data["size"], data.get("step"))
    except (KeyError, TypeError, ValueError) as exc:
        raise LogsieveError(f"bad grouping description {dict(data)!r}: {exc}") from exc
    raise LogsieveError(f"unknown grouping kind {kind!r}")


def group_any(
    events: pl.DataFrame | pl.LazyFrame | str | Path,
    spec: AnySpec,
    labels: str | Path | pl.DataFrame | None = None,
) -> GroupResult:
    """Group ``events`` by any spec, field-keyed sessions included."""
    if not isinstance(spec, FieldSessions):
        return group(events, spec, labels=labels)
    if labels is not None:
        raise LogsieveError(
            "--labels does not apply to --session-field: window labels come from the lines"
        )
    windows = client_sessions(events, spec.field, spec.idle)
    lf = scan_table(events) if isinstance(events, (str, Path)) else events.lazy()
    lines = int(lf.select(pl.len()).collect().item())
    grouped = int(windows[EVENT_IDS].list.len().sum() or 0)
    return GroupResult(windows, lines, lines - grouped)  # dropped: lines whose field is empty
