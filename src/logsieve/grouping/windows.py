"""Group the lines of an events table into sessions, count windows or time windows.

Input: an events table (``logsieve parse``) as a DataFrame, a LazyFrame, or a parquet
path. Needed columns: ``line_id`` and ``event_id``; ``content`` for sessions and for
side-file labels; ``timestamp`` for time windows and idle cuts; ``label`` is optional
(missing = unknown).

Output: a windows table with exactly :data:`logsieve.schema.WINDOW_SCHEMA`:

- within a window, events are in ``line_id`` order;
- ``start``/``end`` are the first/last *event* timestamps of the window (null when the
  window's lines have none);
- rows are ordered by ``start`` (nulls last), then by the window's first ``line_id``,
  then by ``window_id``. So a chronological split is a row slice.

Window kinds
------------
sessions (:class:`Sessions`)
    Key = every match of ``pattern`` in ``content`` (a line naming several keys belongs
    to each key's session, once). ``window_id`` = the key. With ``idle``, a session is
    cut where a line of the key comes more than ``idle`` after the key's previous
    timestamped line (in line order); ids become ``key#1``, ``key#2``... (every session
    gets a suffix). Lines with a null timestamp never cause a cut. Lines without a key
    are dropped (counted).
count windows (:class:`CountWindows`)
    By line position (in ``line_id`` order): window *k* covers positions
    ``[k*step, k*step + size)``. ``step == size`` (default) gives fixed windows,
    ``step < size`` sliding ones, ``step > size`` leaves gaps (those lines are dropped).
    The final partial window is kept, but a partial window entirely contained in the
    window before it is not emitted. ``window_id`` = ``w`` + zero-padded *k*.
    Sliding windows repeat each line about ``size / step`` times in the output.
time windows (:class:`TimeWindows`)
    By timestamp, aligned to the Unix epoch: window *k* covers
    ``[k*step, k*step + size)`` (so 30-minute windows start at :00 and :30 UTC).
    ``window_id`` = the window's boundary start, ISO-8601 UTC. Empty windows are not
    emitted. Lines with a null timestamp are dropped and counted (a warning is logged);
    if no line has a timestamp, :class:`LogsieveError` is raised.

Limits (one-line :class:`LogsieveError` when exceeded): count windows of at most
:data:`MAX_WINDOW_LINES` (10^9) lines, durations of at most :data:`MAX_DURATION`
(100 years), and sliding windows that put one line in at most
:data:`MAX_WINDOWS_PER_LINE` (10,000) windows (``ceil(size / step)``). Session and key
patterns must compile with Polars' Rust regex engine (no back-references, no
look-around) and must not match the empty string.

Labels
------
A window's label is the max of its lines' labels (1 if any line is 1; 0 if labels
are known and none is 1; null when nothing is known). A side file of key labels
(:mod:`logsieve.grouping.labels`) adds: for sessions, the key's label; for count/time
windows, each line's label from the keys its content names (``key_pattern``), so a
window is anomalous when any of its lines names an anomalous key. A side table none of
whose keys occurs in the data is refused (:class:`LogsieveError`): it would label every
window normal or unknown without a word.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from logsieve.errors import LogsieveError
from logsieve.formats import regex_error
from logsieve.grouping.labels import as_label_table, key_label_expr, label_coverage
from logsieve.io.tables import scan_table
from logsieve.schema import (
    CONTENT,
    END,
    EVENT_ID,
    EVENT_IDS,
    LABEL,
    LINE_ID,
    LINE_IDS,
    START,
    TIMESTAMP,
    TS_DTYPE,
    WINDOW_ID,
    WINDOW_SCHEMA,
)

logger = logging.getLogger(__name__)

HDFS_BLOCK_PATTERN = r"blk_-?\d+"
"""Session key of HDFS logs: the block id."""

EventsInput = pl.DataFrame | pl.LazyFrame | str | Path
LabelsInput = str | Path | pl.DataFrame | None

# ---------------------------------------------------------------------------------------
# durations

_UNITS_US = {
    "w": 7 * 86_400_000_000,
    "d": 86_400_000_000,
    "h": 3_600_000_000,
    "m": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
    "us": 1,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|us|w|d|h|m|s)", re.IGNORECASE)
_DURATION_FULL = re.compile(
    r"\s*(?:(?:\d+(?:\.\d*)?|\.\d+)\s*(?:ms|us|w|d|h|m|s)\s*)+", re.IGNORECASE
)
MAX_DURATION = timedelta(days=36_525)
"""Longest duration accepted (100 years)."""
MAX_WINDOW_LINES = 10**9
"""Largest count-window size or step, in lines."""
MAX_WINDOWS_PER_LINE = 10_000
"""Most windows one line may fall into (``ceil(size / step)`` of sliding windows)."""


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


def check_pattern(pattern: object, what: str) -> str:
    """``pattern`` if Polars' Rust regex engine (which runs it) compiles it and it cannot
    match the empty string; else a one-line :class:`LogsieveError` naming ``what``."""
    if not isinstance(pattern, str) or not pattern:
        raise LogsieveError(f"bad {what} {_short(pattern)}: a non-empty regex is needed")
    why = regex_error(pattern)
    if why is not None:
        raise LogsieveError(
            f"bad {what} {_short(pattern)}: {why} (Rust regex syntax: no back-references "
            "or look-around)"
        )
    probe = pl.Series(["", "a", "7", "a b"], dtype=pl.String).str.extract_all(pattern)
    if any("" in hits for hits in probe.to_list() if hits is not None):
        raise LogsieveError(f"bad {what} {_short(pattern)}: it can match the empty string")
    return pattern


def parse_duration(value: str | timedelta) -> timedelta:
    """Parse ``"30m"``, ``"1h"``, ``"10s"``, ``"2d"``, ``"1h30m"``, ``"1.5h"``, ``"500ms"``.

    Units: w, d, h, m, s, ms, us. A timedelta passes through. The result must be positive.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    if isinstance(value, timedelta):
        td = value
    else:
        text = str(value)
        if len(text) > 100 or not _DURATION_FULL.fullmatch(text):
            raise LogsieveError(
                f"bad duration {_short(text)}: use numbers with units w/d/h/m/s/ms/us, "
                "e.g. 30m, 1h30m, 10s, 2d"
            )
        us = sum(float(n) * _UNITS_US[u.lower()] for n, u in _DURATION_PART.findall(text))
        if not us <= _us(MAX_DURATION):  # also catches inf
            raise LogsieveError(f"duration {_short(text)} is longer than 100 years")
        td = timedelta(microseconds=round(us))
    if td > MAX_DURATION:
        raise LogsieveError(f"duration {td} is longer than 100 years")
    if td <= timedelta(0):
        raise LogsieveError(f"duration must be positive, not {value!r}")
    return td


def _us(td: timedelta) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds


# ---------------------------------------------------------------------------------------
# specs


@dataclass(frozen=True)
class Sessions:
    """Sessions keyed by every match of ``pattern`` in ``content``; optional ``idle`` cut."""

    pattern: str = HDFS_BLOCK_PATTERN
    idle: timedelta | str | None = None

    def __post_init__(self) -> None:
        check_pattern(self.pattern, "session pattern")
        if self.idle is not None:
            object.__setattr__(self, "idle", parse_duration(self.idle))


@dataclass(frozen=True)
class CountWindows:
    """Windows of ``size`` lines every ``step`` lines (``step`` None = ``size``: fixed)."""

    size: int
    step: int | None = None

    def __post_init__(self) -> None:
        step = self.size if self.step is None else self.step
        for name, v in (("size", self.size), ("step", step)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise LogsieveError(
                    f"count window {name} must be a positive integer, not {_short(v)}"
                )
            if v > MAX_WINDOW_LINES:
                raise LogsieveError(
                    f"count window {name} {v} is too large (at most {MAX_WINDOW_LINES:,} lines)"
                )
        _check_overlap(self.size, step, f"count windows of {self.size} lines, step {step}")
        object.__setattr__(self, "step", step)


@dataclass(frozen=True)
class TimeWindows:
    """Windows of duration ``size`` every ``step`` (``step`` None = ``size``: fixed)."""

    size: timedelta | str = "30m"
    step: timedelta | str | None = None

    def __post_init__(self) -> None:
        size = parse_duration(self.size)
        step = size if self.step is None else parse_duration(self.step)
        what = f"time windows of {_compact(size)}, step {_compact(step)}"
        _check_overlap(_us(size), _us(step), what)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "step", step)


def _compact(td: timedelta) -> str:
    """``1d``, ``90m``, ``1500ms``: a duration in its largest whole unit."""
    us = _us(td)
    for unit in ("w", "d", "h", "m", "s", "ms"):
        if us % _UNITS_US[unit] == 0:
            return f"{us // _UNITS_US[unit]}{unit}"
    return f"{us}us"


def _check_overlap(size: int, step: int, what: str) -> None:
    per_line = -(-size // step)
    if per_line > MAX_WINDOWS_PER_LINE:
        raise LogsieveError(
            f"{what}: each line would fall into {per_line:,} windows "
            f"(at most {MAX_WINDOWS_PER_LINE:,}); use a larger step"
        )


GroupSpec = Sessions | CountWindows | TimeWindows


@dataclass(frozen=True)
class GroupResult:
    """A windows table plus how many input lines were grouped."""

    windows: pl.DataFrame
    lines: int
    lines_dropped: int

    def summary(self) -> dict[str, int]:
        """Counts: windows, anomalous/normal/unlabelled windows, lines, lines dropped."""
        lab = self.windows[LABEL]
        return {
            "windows": self.windows.height,
            "anomalous": int((lab == 1).sum()),
            "normal": int((lab == 0).sum()),
            "unlabelled": int(lab.null_count()),
            "lines": self.lines,
            "lines_dropped": self.lines_dropped,
        }


# ---------------------------------------------------------------------------------------
# input


def _scan(events: EventsInput) -> pl.LazyFrame:
    if isinstance(events, pl.LazyFrame):
        return events
    if isinstance(events, pl.DataFrame):
        return events.lazy()
    if isinstance(events, (str, Path)):
        path = Path(events)
        if not path.exists():
            raise LogsieveError(f"{path}: events table not found")
        return scan_table(path)
    raise LogsieveError(
        f"events must be a DataFrame, LazyFrame or parquet path, not {type(events).__name__}"
    )


def _load(
    events: EventsInput, *, keys: str | None, need_time: bool, key_ids: bool = False
) -> pl.DataFrame:
    """Collect the columns grouping needs, typed, sorted by line_id.

    With ``keys`` (a regex), each line's distinct matches in ``content`` become ``_keys``,
    computed while streaming over the table: the message text itself is never held, so
    memory does not grow with the length of the lines. ``key_ids`` holds them as
    categories (4 bytes a key instead of its text).
    """
    lf = _scan(events)
    cols = lf.collect_schema().names()
    required = [LINE_ID, EVENT_ID] + ([CONTENT] if keys is not None else [])
    missing = [c for c in required if c not in cols]
    if need_time and TIMESTAMP not in cols:
        missing.append(TIMESTAMP)
    if missing:
        raise LogsieveError(f"events table lacks column(s) {', '.join(missing)}")
    event_id = pl.col(EVENT_ID).cast(pl.Categorical if key_ids else pl.String)
    exprs = [pl.col(LINE_ID).cast(pl.Int64), event_id]
    exprs.append(
        pl.col(TIMESTAMP).cast(TS_DTYPE)
        if TIMESTAMP in cols
        else pl.lit(None, dtype=TS_DTYPE).alias(TIMESTAMP)
    )
    exprs.append(
        pl.col(LABEL).cast(pl.Int8) if LABEL in cols else pl.lit(None, dtype=pl.Int8).alias(LABEL)
    )
    if keys is not None:
        found = pl.col(CONTENT).cast(pl.String).str.extract_all(keys)
        found = found.list.unique(maintain_order=True)
        if key_ids:
            found = found.cast(pl.List(pl.Categorical))
        exprs.append(found.alias("_keys"))
    df = lf.select(exprs).collect(engine="streaming")
    if df[LINE_ID].null_count():
        raise LogsieveError("events table has null line_id values")
    if not df[LINE_ID].is_sorted():
        df = df.sort(LINE_ID)
    return df


# ---------------------------------------------------------------------------------------
# building windows from runs of rows
#
# Every kind reduces to: a sequence of row positions into the line-ordered table, grouped
# window after window (ascending inside a window), plus each window's length. The list
# columns are then built zero-copy from offsets (Arrow), which avoids a group_by over
# (window, line) pairs: sliding windows of 11M lines stay fast and small.


def _lists(df: pl.DataFrame, pos: pl.Series | None, lengths: np.ndarray) -> pl.DataFrame:
    """Window rows from consecutive runs of ``lengths`` rows of ``df`` (gathered at ``pos``)."""
    cols = df.select(EVENT_ID, LINE_ID, TIMESTAMP, LABEL)
    if pos is not None:
        cols = cols[pos]
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]), type=pa.int64())
    built = {}
    for src, dst in (
        (EVENT_ID, EVENT_IDS),
        (LINE_ID, LINE_IDS),
        (TIMESTAMP, "_ts"),
        (LABEL, "_lab"),
    ):
        values = cols[src].to_arrow()
        arr = pl.from_arrow(pa.LargeListArray.from_arrays(offsets, values))
        assert isinstance(arr, pl.Series)
        built[dst] = arr.alias(dst)
    out = pl.DataFrame(list(built.values()))
    return out.with_columns(
        pl.col("_ts").list.min().alias(START),
        pl.col("_ts").list.max().alias(END),
        pl.col("_lab").list.max().alias(LABEL),
        pl.col(LINE_IDS).list.first().alias("_first"),
    ).drop("_ts", "_lab")


def _runs(keys: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of each run of equal values in ``keys``."""
    if keys.len() == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(keys.ne_missing(keys.shift(1)).fill_null(True).to_numpy())
    lengths = np.diff(np.append(starts, keys.len()))
    return starts, lengths


def _finish(windows: pl.DataFrame) -> pl.DataFrame:
    """Order rows by (start, first line, window id) and keep exactly WINDOW_SCHEMA."""
    ordered = windows.sort([START, "_first", WINDOW_ID], nulls_last=True)
    return ordered.select(list(WINDOW_SCHEMA)).cast(WINDOW_SCHEMA)


def _label_keys(labels: pl.DataFrame | None, key_pattern: str) -> str | None:
    """The key regex to extract for side-file labels (None without labels), checked."""
    if labels is None:
        return None
    check_pattern(key_pattern, "key pattern")
    return key_pattern


def _line_labels(df: pl.DataFrame, labels: LabelsInput, key_pattern: str) -> pl.DataFrame:
    """Fold side-file key labels into the per-line ``label`` column (for key-less windows)."""
    table = as_label_table(labels)
    if table is None:
        return df
    _check_coverage(table, df["_keys"], f"keys found with {key_pattern!r}")
    line_label = pl.max_horizontal(pl.col(LABEL), key_label_expr(pl.col("_keys"), table))
    return df.with_columns(line_label.alias(LABEL)).drop("_keys")


def _session_labels(windows: pl.DataFrame, labels: LabelsInput, pattern: str) -> pl.DataFrame:
    """Fold side-file key labels into session windows (their ``_key`` column)."""
    table = as_label_table(labels)
    if table is None:
        return windows
    _check_coverage(table, windows["_key"], f"session keys found with {pattern!r}")
    key_label = key_label_expr(pl.concat_list(pl.col("_key")), table)
    return windows.with_columns(pl.max_horizontal(pl.col(LABEL), key_label).alias(LABEL))


def _check_coverage(table: pl.DataFrame, keys: pl.Series, where: str) -> None:
    """Refuse a label table none of whose keys occurs in the data; log the coverage."""
    matched, total = label_coverage(table, keys)
    logger.info("labels: %d of %d labelled keys occur among the %s", matched, total, where)
    if matched == 0 and total and keys.len():
        raise LogsieveError(
            f"labels: none of the {total:,} labelled keys occurs among the {where}; "
            "wrong labels file, or wrong key pattern?"
        )


# ---------------------------------------------------------------------------------------
# the three kinds


def _idle_cuts(ts: pl.Series, new_key: pl.Series, idle_us: int) -> pl.Series:
    """True where a line is more than ``idle_us`` after the previous timestamped line of
    the same key (rows grouped by key, in line order; ``new_key`` marks each key's first row)."""
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    frame = pl.DataFrame({"ts": ts, "new": new_key})
    return (
        frame.select(
            (
                pl.when(pl.col("new")).then(row).forward_fill()  # first row of the key
                <= pl.when(pl.col("ts").is_not_null())
                .then(row)
                .forward_fill()
                .shift(1)  # last timed row before
            )
            & (
                (pl.col("ts") - pl.col("ts").forward_fill().shift(1)).dt.total_microseconds()
                > idle_us
            )
        )
        .to_series()
        .fill_null(False)
    )


def _sessions(df: pl.DataFrame, spec: Sessions, labels: LabelsInput) -> tuple[pl.DataFrame, int]:
    keys = df["_keys"]
    dropped = int((keys.list.len() == 0).sum())
    pairs = pl.DataFrame({"_pos": np.arange(df.height, dtype=np.int64), "_key": keys})
    windows = session_windows(df, pairs.explode("_key").drop_nulls("_key"), spec)
    windows = _session_labels(windows, labels, spec.pattern)
    return _finish(windows), dropped


def session_windows(df: pl.DataFrame, pairs: pl.DataFrame, spec: Sessions) -> pl.DataFrame:
    """The session windows of ``pairs`` (``_pos``: a row of the line-ordered ``df``, ``_key``:
    a session key that row names, Categorical or String; in row order), unordered.

    Each window keeps its key in ``_key`` and its first line id in ``_first``; labels come
    from the lines only. The Dask engine calls this on each hash partition of the pairs.
    """
    key = pairs["_key"]
    kid = (key if key.dtype == pl.Categorical else key.cast(pl.Categorical)).to_physical()
    # integer key ids, then a stable sort: rows of a key together, in line order
    pairs = pairs.with_columns(kid.alias("_kid")).sort("_kid", maintain_order=True)
    new = pairs["_kid"].ne_missing(pairs["_kid"].shift(1)).fill_null(True)
    if spec.idle is not None:
        new = new | _idle_cuts(df[TIMESTAMP].gather(pairs["_pos"]), new, _us(spec.idle))  # type: ignore[arg-type]
    starts = np.flatnonzero(new.to_numpy())
    lengths = np.diff(np.append(starts, pairs.height)).astype(np.int64)
    windows = _lists(df, pairs["_pos"], lengths)
    meta = pairs[["_key", "_kid"]][starts]
    windows = windows.with_columns(meta["_key"].cast(pl.String))
    if spec.idle is not None:
        part = pl.int_range(pl.len()).over(meta["_kid"]) + 1
        window_id = pl.col("_key") + "#" + part.cast(pl.String)
    else:
        window_id = pl.col("_key")
    return windows.with_columns(window_id.alias(WINDOW_ID))


def _count(df: pl.DataFrame, spec: CountWindows) -> tuple[pl.DataFrame, int]:
    size, step = spec.size, spec.step
    assert step is not None
    n = df.height
    k = np.arange((n - 1) // step + 1, dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
    if step < size:  # skip partial windows contained in the window before them
        k = k[(k == 0) | ((k - 1) * step + size < n)]
    s = k * step
    e = np.minimum(s + size, n)
    if step == size:
        pos = None  # windows tile the table: no gather
        dropped = 0
    else:
        ranges = pl.DataFrame({"s": s, "e": e}).select(pl.int_ranges("s", "e"))
        pos = ranges.to_series().explode().drop_nulls()
        dropped = 0 if step < size else n - int((e - s).sum())
    windows = _lists(df, pos, e - s)
    width = max(6, len(str(int(k[-1])))) if len(k) else 6
    wid = pl.Series(WINDOW_ID, k).cast(pl.String).str.zfill(width)
    windows = windows.with_columns(("w" + wid).alias(WINDOW_ID))
    return _finish(windows), dropped


def _time_pairs(
    df: pl.DataFrame, size_us: int, step_us: int
) -> tuple[pl.Series, np.ndarray, np.ndarray, int]:
    """General path: (position, window) pairs sorted by window. Returns pos, window index
    of each run, run lengths, and the number of lines in no window."""
    t = pl.col(TIMESTAMP).dt.epoch("us")
    pairs = df.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("_pos"))
    if step_us == size_us:
        pairs = pairs.with_columns(df.select(t // size_us)[TIMESTAMP].alias("_w"))
        gaps = 0
    else:
        w = df.select(pl.int_ranges((t - size_us) // step_us + 1, t // step_us + 1))[TIMESTAMP]
        pairs = pairs.with_columns(w.alias("_w"))
        gaps = int((w.list.len() == 0).sum())
        pairs = pairs.explode("_w").drop_nulls("_w")
    pairs = pairs.sort("_w", maintain_order=True)
    starts, lengths = _runs(pairs["_w"])
    return pairs["_pos"], pairs["_w"].to_numpy()[starts], lengths, gaps


def _time(df: pl.DataFrame, spec: TimeWindows) -> tuple[pl.DataFrame, int]:
    size_us, step_us = _us(spec.size), _us(spec.step)  # type: ignore[arg-type]
    null_ts = int(df[TIMESTAMP].null_count())
    if null_ts == df.height and df.height:
        raise LogsieveError(
            "time windows need timestamps, and no line has one (check the log format)"
        )
    if null_ts:
        logger.warning("time windows: dropping %d lines without a timestamp", null_ts)
        df = df.filter(pl.col(TIMESTAMP).is_not_null())
    t = df[TIMESTAMP].dt.epoch("us")
    n_candidates = (int(t.max()) // step_us - int(t.min()) // step_us + 1) if df.height else 0  # type: ignore[arg-type]
    if df.height and t.is_sorted() and n_candidates <= 4 * df.height + 10_000:
        # timestamps ascend with line order: each window is a contiguous row range
        t_np = t.to_numpy()
        k = np.arange((int(t_np[0]) - size_us) // step_us + 1, int(t_np[-1]) // step_us + 1)
        s = np.searchsorted(t_np, k * step_us, side="left")
        e = np.searchsorted(t_np, k * step_us + size_us, side="left")
        keep = e > s
        k, s, e = k[keep], s[keep], e[keep]
        if step_us == size_us:
            pos = None
        else:
            pos = (
                pl.DataFrame({"s": s, "e": e}).select(pl.int_ranges("s", "e")).to_series().explode()
            )
        gaps = df.height - int((e - s).sum()) if step_us > size_us else 0
        wk, lengths = k, e - s
    else:
        pos, wk, lengths, gaps = _time_pairs(df, size_us, step_us)
    windows = _lists(df, pos, lengths)
    boundary = pl.from_epoch(pl.Series(wk * step_us, dtype=pl.Int64), time_unit="us")
    fmt = "%Y-%m-%dT%H:%M:%SZ" if step_us % 1_000_000 == 0 else "%Y-%m-%dT%H:%M:%S%.6fZ"
    windows = windows.with_columns(boundary.dt.strftime(fmt).alias(WINDOW_ID))
    return _finish(windows), null_ts + gaps


# ---------------------------------------------------------------------------------------
# public API


def group(
    events: EventsInput,
    spec: GroupSpec | None = None,
    labels: LabelsInput = None,
    key_pattern: str = HDFS_BLOCK_PATTERN,
) -> GroupResult:
    """Group an events table by ``spec`` (default: HDFS block sessions).

    Parameters
    ----------
    events
        Events DataFrame, LazyFrame, or parquet path.
    spec
        :class:`Sessions`, :class:`CountWindows` or :class:`TimeWindows`.
    labels
        Optional side-file key labels (path or ``key, label`` table).
    key_pattern
        For count/time windows with ``labels``: the regex finding keys in ``content``.
        Sessions use their own ``pattern``.
    """
    spec = Sessions() if spec is None else spec
    labels = as_label_table(labels)  # read (and validate) before the events
    if isinstance(spec, Sessions):
        df = _load(events, keys=spec.pattern, need_time=spec.idle is not None, key_ids=True)
        windows, dropped = _sessions(df, spec, labels)
        what = f"sessions by {spec.pattern!r}" + (
            f" (idle {spec.idle})" if spec.idle is not None else ""
        )
    elif isinstance(spec, CountWindows):
        df = _load(events, keys=_label_keys(labels, key_pattern), need_time=False)
        df = _line_labels(df, labels, key_pattern)
        windows, dropped = _count(df, spec)
        what = f"count windows of {spec.size} lines, step {spec.step}"
    elif isinstance(spec, TimeWindows):
        df = _load(events, keys=_label_keys(labels, key_pattern), need_time=True)
        df = _line_labels(df, labels, key_pattern)
        windows, dropped = _time(df, spec)
        what = f"time windows of {spec.size}, step {spec.step}"
    else:
        raise LogsieveError(f"unknown grouping {spec!r}")
    if dropped:
        logger.info("%s: %d of %d lines fall in no window", what, dropped, df.height)
    logger.info("%s: %d windows from %d lines", what, windows.height, df.height)
    return GroupResult(windows=windows, lines=df.height, lines_dropped=dropped)


def group_sessions(
    events: EventsInput,
    pattern: str = HDFS_BLOCK_PATTERN,
    idle: timedelta | str | None = None,
    labels: LabelsInput = None,
) -> pl.DataFrame:
    """Sessions keyed by every ``pattern`` match in ``content`` (see the module docstring)."""
    return group(events, Sessions(pattern, idle), labels).windows


def group_count(
    events: EventsInput,
    size: int,
    step: int | None = None,
    labels: LabelsInput = None,
    key_pattern: str = HDFS_BLOCK_PATTERN,
) -> pl.DataFrame:
    """Fixed (``step`` None) or sliding count windows of ``size`` lines."""
    return group(events, CountWindows(size, step), labels, key_pattern).windows


def group_time(
    events: EventsInput,
    size: timedelta | str = "30m",
    step: timedelta | str | None = None,
    labels: LabelsInput = None,
    key_pattern: str = HDFS_BLOCK_PATTERN,
) -> pl.DataFrame:
    """Fixed (``step`` None) or sliding epoch-aligned time windows of duration ``size``."""
    return group(events, TimeWindows(size, step), labels, key_pattern).windows


def describe(spec: GroupSpec) -> dict[str, Any]:
    """A JSON-friendly description of a grouping spec (for run records)."""
    if isinstance(spec, Sessions):
        return {
            "kind": "session",
            "pattern": spec.pattern,
            "idle": str(spec.idle) if spec.idle else None,
        }
    if isinstance(spec, CountWindows):
        return {"kind": "count", "size": spec.size, "step": spec.step}
    return {"kind": "time", "size": str(spec.size), "step": str(spec.step)}
