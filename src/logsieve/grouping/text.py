"""Raw text for windows: models that skip parsing (NeuralLog-style, Bursic et al.) read the
messages of each window from a ``messages`` column (list[str], in line order)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.io.tables import scan_table
from logsieve.schema import CONTENT, LINE_ID, LINE_IDS, MESSAGES, WINDOW_ID


def attach_messages(
    windows: pl.DataFrame, events: pl.DataFrame | pl.LazyFrame | str | Path, column: str = CONTENT
) -> pl.DataFrame:
    """Add ``messages`` (list[str]) to a windows table from its events table.

    Each window's ``line_ids`` are looked up in ``events`` (a DataFrame, LazyFrame or
    Parquet path); the order of ``line_ids`` is kept. Lines missing from ``events`` give
    a LogsieveError, since the windows and events would then not belong together.
    """
    if isinstance(events, (str, Path)):
        events = scan_table(events)
    lf = events.lazy()
    if column not in lf.collect_schema().names():
        raise LogsieveError(f"events table has no {column!r} column")
    if windows.height == 0:
        return windows.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias(MESSAGES))
    exploded = (
        windows.select(WINDOW_ID, LINE_IDS)
        .with_row_index("__w")
        .explode(LINE_IDS)
        .with_row_index("__pos")
        .filter(pl.col(LINE_IDS).is_not_null())
    )
    needed = exploded.select(pl.col(LINE_IDS).unique().alias(LINE_ID))
    text = (
        lf.select(LINE_ID, pl.col(column).alias("__text"))
        .join(needed.lazy(), on=LINE_ID, how="semi")
        .collect()
    )
    joined = exploded.join(text, left_on=LINE_IDS, right_on=LINE_ID, how="left")
    missing = joined["__text"].null_count()
    if missing:
        raise LogsieveError(f"{missing} line id(s) of the windows are not in the events table")
    grouped = (
        joined.sort("__pos")
        .group_by("__w", maintain_order=True)
        .agg(pl.col("__text").alias(MESSAGES))
    )
    out = windows.with_row_index("__w").join(grouped, on="__w", how="left", maintain_order="left")
    return out.with_columns(pl.col(MESSAGES).fill_null(pl.lit([], dtype=pl.List(pl.String)))).drop(
        "__w"
    )
