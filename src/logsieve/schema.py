"""Column names and dtypes of logsieve's two tables, in one place.

Events table: one row per input line (``logsieve parse``).
Windows table: one row per session or window (``logsieve group`` / ``sequences``).
"""

from __future__ import annotations

import polars as pl

# events
LINE_ID = "line_id"  # int64, 1-based line number in the input (across all input files)
TIMESTAMP = "timestamp"  # Datetime(us, UTC) or null
CONTENT = "content"  # the message part of the line (whole line when it does not match the format)
EVENT_ID = "event_id"  # string, stable: "E12"; "E0" is the unseen-message id
TEMPLATE = "template"  # string, tokens with <*> for variables
LABEL = "label"  # int8 0/1, null when unknown
SOURCE = "source"  # optional: input file the line came from
VALUES = "values"  # optional (parse --values): list[str] per line; list[list[str]] per window
ELAPSED = "elapsed"  # optional, windows: list[f64], seconds since the window's previous line
MESSAGES = "messages"  # optional, windows: list[str], each line's raw message (raw-text models)
PART = "part"  # train_windows.parquet of a model: "train" or "valid"

# windows
WINDOW_ID = "window_id"  # string
EVENT_IDS = "event_ids"  # list[str]
LINE_IDS = "line_ids"  # list[int64]
START = "start"  # Datetime or null
END = "end"  # Datetime or null

UNSEEN_EVENT_ID = "E0"
UNSEEN_TEMPLATE = "<unseen>"

TS_DTYPE = pl.Datetime("us", "UTC")

WINDOW_SCHEMA = pl.Schema({
    WINDOW_ID: pl.String(),
    EVENT_IDS: pl.List(pl.String),
    LINE_IDS: pl.List(pl.Int64),
    START: TS_DTYPE,
    END: TS_DTYPE,
    LABEL: pl.Int8(),
})
