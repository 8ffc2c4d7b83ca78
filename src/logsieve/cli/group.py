"""Thin functions behind ``logsieve group`` and ``logsieve sequences`` (wired in app.py).

Option strings parsed here:

- ``--session REGEX``: sessions keyed by the regex (default: HDFS block ids);
- ``--window "N[,STEP]"``: count windows of N lines every STEP lines;
- ``--time "DUR[,STEP]"``: time windows, e.g. ``"30m"`` or ``"1h,10m"``;
- ``--idle DUR``: cut sessions at gaps longer than DUR (sessions only);
- ``--labels FILE``: side-file key labels (``BlockId,Label`` CSV or a list of anomalous ids).
- ``--session-field FIELD``: sessions keyed by a column of the events table (a format field,
  e.g. ``IP`` of ``weblog``), cut after ``--idle`` (default 30m); labels come from the lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from logsieve.grouping.specs import build_spec


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
    """Group a parsed events table into windows (see :func:`logsieve.pipeline.jobs.group_job`)."""
    from logsieve.pipeline.jobs import group_job

    spec = build_spec(session, window, time, idle, session_field=session_field)
    return group_job(events_path, output, spec, labels=labels)


def sequences_command(
    paths: Sequence[str | Path],
    output: str | Path,
    label: int | None = None,
) -> dict[str, Any]:
    """Import pre-parsed sequence files (see :func:`logsieve.pipeline.jobs.sequences_job`)."""
    from logsieve.pipeline.jobs import sequences_job

    return sequences_job(paths, output, label=label)
