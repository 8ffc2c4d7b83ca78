"""Parameter values and timing for windows (DeepLog's parameter-value model, section 3.2).

An events table parsed with ``logsieve parse --values`` has a ``values`` column (list[str]:
the tokens each line's template masks). Grouping carries them into the windows as a
``values`` list-of-lists column (one list per line of the window, in the order of
``line_ids``) and adds ``elapsed`` (list[f64]): the seconds since the previous line of
the window (0 for the first line; null when a timestamp is missing).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.schema import ELAPSED, LINE_ID, LINE_IDS, TIMESTAMP, VALUES

__all__ = ["ELAPSED", "VALUES", "attach_values", "has_values"]


def has_values(events: pl.DataFrame | pl.LazyFrame | str | Path) -> bool:
    """True when an events table (frame or Parquet path) has a ``values`` column."""
    if isinstance(events, (str, Path)):
        return VALUES in pl.read_parquet_schema(events)
    return VALUES in events.lazy().collect_schema().names()


def attach_values(
    windows: pl.DataFrame, events: pl.DataFrame | pl.LazyFrame | str | Path
) -> pl.DataFrame:
    """Add ``values`` (list[list[str]]) and ``elapsed`` (list[f64]) to ``windows``.

    Each window's ``line_ids`` are looked up in ``events``; lines missing there are an
    error (the windows and events would not belong together).
    """
    lf = pl.scan_parquet(events) if isinstance(events, (str, Path)) else events.lazy()
    names = lf.collect_schema().names()
    if VALUES not in names:
        raise LogsieveError(
            "events table has no 'values' column: parse with `logsieve parse --values`"
        )
    empty_v = pl.lit([], dtype=pl.List(pl.List(pl.String)))
    empty_e = pl.lit([], dtype=pl.List(pl.Float64))
    if windows.height == 0:
        return windows.with_columns(empty_v.alias(VALUES), empty_e.alias(ELAPSED))
    exploded = (
        windows.select(LINE_IDS)
        .with_row_index("__w")
        .explode(LINE_IDS)
        .with_row_index("__pos")
        .filter(pl.col(LINE_IDS).is_not_null())
    )
    needed = exploded.select(pl.col(LINE_IDS).unique().alias(LINE_ID))
    ts = pl.col(TIMESTAMP) if TIMESTAMP in names else pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    lines = (
        lf.select(LINE_ID, pl.col(VALUES).alias("__v"), ts.alias("__t"))
        .join(needed.lazy(), on=LINE_ID, how="semi")
        .collect()
    )
    joined = exploded.join(lines, left_on=LINE_IDS, right_on=LINE_ID, how="left")
    if joined.height and joined["__v"].null_count():
        raise LogsieveError(
            f"{joined['__v'].null_count()} line id(s) of the windows are not in the events table"
        )
    gap = (pl.col("__t") - pl.col("__t").shift(1)).dt.total_microseconds() / 1e6
    grouped = (
        joined.sort("__pos")
        .with_columns(gap.over("__w").fill_null(0.0).alias("__e"))
        .with_columns(
            pl.when(pl.col("__t").is_null()).then(None).otherwise(pl.col("__e")).alias("__e")
        )
        .group_by("__w", maintain_order=True)
        .agg(pl.col("__v").alias(VALUES), pl.col("__e").alias(ELAPSED))
    )
    out = windows.drop(VALUES, ELAPSED, strict=False).with_row_index("__w")
    out = out.join(grouped, on="__w", how="left", maintain_order="left")
    return out.with_columns(
        pl.col(VALUES).fill_null(empty_v), pl.col(ELAPSED).fill_null(empty_e)
    ).drop("__w")
