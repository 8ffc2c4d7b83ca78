"""Sessions keyed by a field of the events table, such as the client address of an HTTP log.

The session grouping of :mod:`.windows` keys sessions by a regular expression over
``content``; for an HTTP access log the natural key is a header field (the client ``IP`` of
the ``weblog``/``clf``/``combined`` formats), with a session cut wherever a client has been
idle for longer than ``idle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.grouping.windows import parse_duration
from logsieve.io.tables import scan_table
from logsieve.schema import (
    END,
    EVENT_ID,
    EVENT_IDS,
    LABEL,
    LINE_ID,
    LINE_IDS,
    START,
    TIMESTAMP,
    WINDOW_ID,
    WINDOW_SCHEMA,
)

#: Default idle gap that ends a client's session: the 30 minutes web analytics use for a
#: visit. Without a gap every client would be one session spanning the whole log.
DEFAULT_CLIENT_IDLE = "30m"

__all__ = ["DEFAULT_CLIENT_IDLE", "FieldSessions", "client_sessions"]


@dataclass(frozen=True)
class FieldSessions:
    """Sessions keyed by the value of column ``field``, cut after ``idle`` without a line."""

    field: str = "IP"
    idle: timedelta | str | None = DEFAULT_CLIENT_IDLE

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field:
            raise LogsieveError(f"session field must be a column name, not {self.field!r}")
        if self.idle is not None:
            object.__setattr__(self, "idle", parse_duration(self.idle))


def client_sessions(
    events: pl.DataFrame | pl.LazyFrame | str | Path,
    field: str = "IP",
    idle: timedelta | str | None = DEFAULT_CLIENT_IDLE,
) -> pl.DataFrame:
    """Sessions keyed by a header field (the client address of a ``weblog`` events table).

    The lines of each value of ``field`` (in ``line_id`` order) form one session, cut
    wherever a line comes more than ``idle`` after the previous line of the same client
    (None: one session per client). Lines whose ``field`` is null are dropped.
    ``window_id`` is ``<value>#<n>`` (n from 1 per client); ``label`` is the max of the
    lines' labels. Rows are ordered by ``start`` then first ``line_id``, so a
    chronological split is a row slice.
    """
    if isinstance(events, (str, Path)):
        lf = scan_table(events)
    elif isinstance(events, (pl.DataFrame, pl.LazyFrame)):
        lf = events.lazy()
    else:
        raise LogsieveError(
            f"events must be a DataFrame, LazyFrame or parquet path, not {type(events).__name__}"
        )
    names = lf.collect_schema().names()
    for col in (LINE_ID, EVENT_ID, field):
        if col not in names:
            raise LogsieveError(f"events table has no {col!r} column (columns: {', '.join(names)})")
    gap = parse_duration(idle) if idle is not None else None
    if gap is not None and TIMESTAMP not in names:
        raise LogsieveError("idle cuts need a 'timestamp' column")
    ts = pl.col(TIMESTAMP) if TIMESTAMP in names else pl.lit(None, dtype=WINDOW_SCHEMA[START])
    lab = pl.col(LABEL).cast(pl.Int8) if LABEL in names else pl.lit(None, dtype=pl.Int8)
    df = (
        lf.select(
            pl.col(field).cast(pl.String).alias("_key"),
            LINE_ID,
            EVENT_ID,
            ts.alias(TIMESTAMP),
            lab.alias(LABEL),
        )
        .filter(pl.col("_key").is_not_null())
        .sort("_key", LINE_ID)
        .collect()
    )
    if gap is not None:
        prev = pl.col(TIMESTAMP).forward_fill().shift(1).over("_key")
        new = (pl.col(TIMESTAMP) - prev > gap).fill_null(False)
        df = df.with_columns(new.cast(pl.Int64).cum_sum().over("_key").alias("_n"))
    else:
        df = df.with_columns(pl.lit(0, dtype=pl.Int64).alias("_n"))
    windows = (
        df.group_by("_key", "_n", maintain_order=True)
        .agg(
            pl.col(EVENT_ID).alias(EVENT_IDS),
            pl.col(LINE_ID).alias(LINE_IDS),
            pl.col(TIMESTAMP).min().alias(START),
            pl.col(TIMESTAMP).max().alias(END),
            pl.col(LABEL).max().alias(LABEL),
            pl.col(LINE_ID).min().alias("_first"),
        )
        .with_columns((pl.col("_key") + "#" + (pl.col("_n") + 1).cast(pl.String)).alias(WINDOW_ID))
        .sort([START, "_first", WINDOW_ID], nulls_last=True)
    )
    return windows.select([pl.col(c).cast(t) for c, t in WINDOW_SCHEMA.items()])
