"""Windows assembled line by line, with the ids, contents and labels of batch ``group``.

The rules are those of :mod:`logsieve.grouping.windows` and :mod:`logsieve.grouping.fields`
(same keys, same ``key`` / ``key#n`` / ``w000042`` / epoch-aligned ISO ids, label = max of the
lines' labels), applied as lines arrive. A window *closes*:

- sessions (regex key or header field): with ``idle``, when a line of the key comes more than
  ``idle`` after the key's previous timestamped line (the batch cut), or when the newest log
  time seen (the watermark) is more than ``idle`` past the session's last timestamp; for
  lines without timestamps, after ``idle`` of wall time (following only). Without ``idle``
  a session stays open until the end of input, as in batch;
- count windows: at their last position; time windows: when the watermark reaches their end;
- at a cap: ``max_lines`` lines in one window (the rest of the key continues in a window
  ``key~2``, ``key~3``...), or ``max_open`` open windows: the least recently updated window
  is closed early (**eviction**). Both are counted (``capped``, ``evicted``); batch has no
  such caps, so only they (and out-of-order timestamps) make online windows differ;
- at the end of input (``--no-follow``): every window, with batch's rule for the final
  partial count window (dropped when the window before it contains it).

Online time windows assume timestamps that do not go back by more than a window: a line
for a window that has already closed is dropped and counted (``late``).
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from logsieve.errors import LogsieveError
from logsieve.grouping.fields import FieldSessions
from logsieve.grouping.specs import AnySpec
from logsieve.grouping.windows import CountWindows, Sessions, TimeWindows
from logsieve.schema import (
    CONTENT,
    END,
    EVENT_IDS,
    LABEL,
    LINE_ID,
    LINE_IDS,
    START,
    TIMESTAMP,
    WINDOW_ID,
    WINDOW_SCHEMA,
)

__all__ = ["BatchTexts", "LineMap", "OnlineGrouper", "OpenWindow", "Segment", "windows_frame"]

Ref = str
"""What a window keeps of each of its last lines: the text. Where the line came from
(source, line number in it) follows from its line id (:class:`LineMap`): no tuple per line."""
Segment = tuple["OpenWindow", int, np.ndarray]
"""Lines appended to one window in one batch: (window, position of the first, batch rows)."""


SMALL_BATCH = 512
"""Batches of at most this many lines are appended line by line (the same windows)."""


def _opt(v: Any) -> Any:
    return None if v is None else int(v)


def _segments(out: Sequence[tuple[OpenWindow, int, int]]) -> list[Segment]:
    """(window, position, batch row) per line appended -> one segment per window."""
    first: dict[int, tuple[OpenWindow, int, list[int]]] = {}
    for w, pos, row in out:
        got = first.get(id(w))
        if got is None:
            got = first[id(w)] = (w, pos, [])
        got[2].append(row)
    return [(w, p, np.asarray(r, dtype=np.int64)) for w, p, r in first.values()]


class LineMap:
    """Where each line id came from: its source and its line number there. Line ids are
    given in runs of consecutive ids read from one source, so the map is a list of spans
    (first line id, source, line number - line id), one more only when the source or the
    shift changes (another input, a rotation, a restart)."""

    __slots__ = ("starts", "sources", "shifts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.sources: list[str] = []
        self.shifts: list[int] = []

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, first: int, source: str, shift: int) -> None:
        """Line ids from ``first`` on are line ``id + shift`` of ``source``."""
        if self.sources and self.sources[-1] == source and self.shifts[-1] == shift:
            return
        if self.starts and first <= self.starts[-1]:
            del self.starts[-1], self.sources[-1], self.shifts[-1]
        self.starts.append(first)
        self.sources.append(source)
        self.shifts.append(shift)

    @classmethod
    def of(cls, lines: Iterable[tuple[int, str, int]]) -> LineMap:
        """The map of ``(line id, source, line number)`` triples (a restored state's)."""
        m = cls()
        for lid, src, n in sorted(lines, key=lambda t: t[0]):
            m.add(lid, src, n - lid)
        return m

    def copy(self) -> LineMap:
        m = LineMap()
        m.starts, m.sources, m.shifts = self.starts[:], self.sources[:], self.shifts[:]
        return m

    def locate(self, line_id: int) -> tuple[str, int]:
        i = bisect_right(self.starts, line_id) - 1
        if i < 0:
            return "", 0
        return self.sources[i], line_id + self.shifts[i]

    def locate_many(self, line_ids: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(sources, line numbers) of an int64 array of line ids."""
        if not self.starts:
            return [""] * len(line_ids), np.zeros(len(line_ids), np.int64)
        i = np.searchsorted(np.asarray(self.starts, np.int64), line_ids, side="right") - 1
        np.maximum(i, 0, out=i)
        srcs = np.asarray(self.sources, dtype=object)[i].tolist()
        return srcs, line_ids + np.asarray(self.shifts, np.int64)[i]

    def prune(self, oldest: int) -> None:
        """Forget the spans wholly before line id ``oldest``."""
        i = bisect_right(self.starts, oldest) - 1
        if i > 0:
            del self.starts[:i], self.sources[:i], self.shifts[:i]


class BatchTexts(Sequence[Ref]):
    """The text of each row of a parsed batch, taken only for the rows a window keeps
    (``first``: the line id of ``lines[0]``; rows of blank or malformed lines are not in
    the events, so a row's text is found by its line id)."""

    def __init__(self, first: int, line_ids: np.ndarray, lines: pl.Series) -> None:
        self.first, self.line_ids, self.lines = first, line_ids, lines
        self._texts: list[str] | None = None

    def __len__(self) -> int:
        return len(self.line_ids)

    def __getitem__(self, i: Any) -> Any:
        if self._texts is None:
            self._texts = self.lines.to_list()
        return self._texts[int(self.line_ids[i]) - self.first]

    def take(self, rows: np.ndarray) -> list[Ref]:
        at = self.line_ids[rows] - self.first
        return self.lines.gather(at).to_list()

    def text_of(self, line_id: int) -> str | None:
        """The text of a line of this batch by its line id (None: not in the batch)."""
        i = line_id - self.first
        return self.lines[i] if 0 <= i < len(self.lines) else None


def kept_refs(w: OpenWindow, lines: LineMap, lo: int = 0,
              hi: int | None = None) -> list[tuple[str, int, str]]:  # fmt: skip
    """``(source, line number, text)`` of ``w``'s kept lines ``[lo:hi]``."""
    start, stop, _ = slice(lo, hi).indices(len(w.refs))
    shift = len(w.line_ids) - len(w.refs)  # the kept lines are the window's last ones
    out = []
    for j in range(start, stop):
        src, n = lines.locate(w.line_ids[shift + j])
        out.append((src, n, w.refs[j]))
    return out


def _us(td: Any) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds


class OpenWindow:
    """One window being assembled (plus what scoring and alerting keep about it)."""

    __slots__ = (
        "wid", "key", "eids", "line_ids", "codes", "start", "end", "last_ts", "label",
        "refs", "score", "alert_id", "wall", "k", "trigger", "touch", "saved",
    )  # fmt: skip

    def __init__(self, wid: str, key: Any, k: int = 0) -> None:
        self.wid = wid
        self.key = key
        self.k = k
        self.eids: list[str] = []
        self.line_ids: list[int] = []
        self.codes = array("q")  # model input codes (next-event scoring)
        self.start: int | None = None
        self.end: int | None = None
        self.last_ts: int | None = None
        self.label: int | None = None
        self.refs: list[Ref] = []
        self.score = 0.0
        self.alert_id: str | None = None
        self.trigger: dict[str, Any] | None = None
        self.wall = 0.0
        self.touch = 0  # order of the last update (the LRU order, kept across restarts)
        self.saved = 0  # events already in the checkpoint files (deltas append the rest)

    def append(self, line_id: int, ts: int | None, eid: str, label: int | None, ref: Ref,
               keep: int) -> int:  # fmt: skip
        pos = len(self.eids)
        self.eids.append(eid)
        self.line_ids.append(line_id)
        if ts is not None:
            if self.start is None or ts < self.start:
                self.start = ts
            if self.end is None or ts > self.end:
                self.end = ts
            self.last_ts = ts
        if label is not None and (self.label is None or label > self.label):
            self.label = label
        refs = self.refs
        refs.append(ref)
        if len(refs) > keep:
            del refs[0]
        return pos

    def to_row(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in self.__slots__
                if s not in ("codes", "wall", "saved")}  # fmt: skip

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> OpenWindow:
        w = cls(row["wid"], row["key"], int(row["k"] or 0))
        for s in cls.__slots__:
            if s in row and s not in ("wid", "key", "k", "codes", "wall", "saved"):
                v = row[s]
                if s in ("eids", "line_ids"):
                    v = list(v)
                elif s == "refs":  # (source, line number, text) triples: the texts
                    v = [c for _, _, c in v]
                setattr(w, s, v)
        w.wall = time.monotonic()
        w.saved = len(w.eids)
        return w


def _list_series(name: str, values: list[list[Any]], inner: pa.DataType) -> pl.Series:
    """A list column from one flat list and offsets (Polars builds per-row lists slowly)."""
    flat: list[Any] = []
    offsets = [0]
    for v in values:
        flat.extend(v)
        offsets.append(len(flat))
    arr = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pa.array(flat, inner))
    return pl.Series(name, arr)


def windows_frame(windows: Sequence[OpenWindow]) -> pl.DataFrame:
    """A windows table (:data:`~logsieve.schema.WINDOW_SCHEMA`) of closed windows."""
    frame = pl.DataFrame(
        [
            pl.Series(WINDOW_ID, [w.wid for w in windows], pl.String),
            _list_series(EVENT_IDS, [w.eids for w in windows], pa.string()),
            _list_series(LINE_IDS, [w.line_ids for w in windows], pa.int64()),
            pl.Series(START, [w.start for w in windows], pl.Int64),
            pl.Series(END, [w.end for w in windows], pl.Int64),
            pl.Series(LABEL, [w.label for w in windows], pl.Int8),
        ]
    )
    return frame.with_columns(
        pl.from_epoch(pl.col(START), time_unit="us").dt.replace_time_zone("UTC"),
        pl.from_epoch(pl.col(END), time_unit="us").dt.replace_time_zone("UTC"),
    ).cast(WINDOW_SCHEMA)


class OnlineGrouper:
    """Assemble windows of ``spec`` from lines given in order (see the module docstring)."""

    def __init__(
        self,
        spec: AnySpec,
        *,
        max_open: int = 1_000_000,
        max_lines: int = 100_000,
        max_seconds: float | None = None,
        keep_lines: int = 20,
        wall_idle: bool = False,
    ) -> None:
        self.spec = spec
        self.max_us = None if max_seconds is None else int(max_seconds * 1_000_000)
        self.ticks = 0
        self.dirty: dict[int, OpenWindow] = {}  # updated since the last checkpoint
        self.gone: list[str] = []  # window ids closed since the last checkpoint
        self.max_open = max_open
        self.max_lines = max_lines
        self.keep = keep_lines
        self.wall_idle = wall_idle
        self.small_batch = SMALL_BATCH
        self.open: OrderedDict[Any, OpenWindow] = OrderedDict()
        self.closed: list[OpenWindow] = []
        self.parts: dict[str, int] = {}  # key -> sessions started (idle ids key#n)
        self.position = 0  # lines seen by count windows
        self.watermark: int | None = None
        self.counts = {"evicted": 0, "capped": 0, "late": 0, "no_window": 0, "closed": 0,
                       "capped_duration": 0}  # fmt: skip
        idle = getattr(spec, "idle", None)
        self.idle_us = None if idle is None else _us(idle)
        self.suffix = isinstance(spec, FieldSessions) or (
            isinstance(spec, Sessions) and spec.idle is not None
        )
        if isinstance(spec, TimeWindows):
            self.size_us, self.step_us = _us(spec.size), _us(spec.step)
            self.fmt = "%Y-%m-%dT%H:%M:%SZ" if self.step_us % 1_000_000 == 0 else None

    # ------------------------------------------------------------------ keys
    def keys(self, events: pl.DataFrame) -> list[Any] | None:
        """Per line, the session keys (a list) or field value; None for count/time windows."""
        spec = self.spec
        if isinstance(spec, Sessions):
            return (
                events["content"].str.extract_all(spec.pattern).list.unique(maintain_order=True)
            ).to_list()
        if isinstance(spec, FieldSessions):
            if spec.field not in events.columns:
                from logsieve.errors import LogsieveError

                raise LogsieveError(f"events have no {spec.field!r} field for sessions")
            return events[spec.field].cast(pl.String).to_list()
        return None

    # ------------------------------------------------------------------ lines
    def add(
        self,
        line_ids: Sequence[int],
        stamps: Sequence[int | None],
        eids: Sequence[str],
        labels: Sequence[int | None],
        keys: Sequence[Any] | None,
        refs: Sequence[Ref],
    ) -> list[tuple[OpenWindow, int]]:
        """Append lines; returns each (window, position) appended, in line order."""
        return [(w, p) for w, p, _ in self._add(line_ids, stamps, eids, labels, keys, refs)]

    def _add(
        self,
        line_ids: Sequence[int],
        stamps: Sequence[int | None],
        eids: Sequence[str] | np.ndarray,
        labels: Sequence[int | None],
        keys: Sequence[Any] | None,
        refs: Sequence[Ref],
    ) -> list[tuple[OpenWindow, int, int]]:
        spec = self.spec
        out: list[tuple[OpenWindow, int, int]] = []
        if isinstance(spec, (Sessions, FieldSessions)):
            assert keys is not None
            multi = isinstance(spec, Sessions)
            for i, lid in enumerate(line_ids):
                ks = keys[i]
                if not ks:
                    self.counts["no_window"] += 1
                    continue
                ts = stamps[i]
                if ts is not None and (self.watermark is None or ts > self.watermark):
                    self.watermark = ts
                for key in ks if multi else (ks,):
                    out.append((*self._add_line(key, lid, ts, eids[i], labels[i], refs[i]), i))
        elif isinstance(spec, CountWindows):
            size, step = spec.size, spec.step
            assert step is not None
            for i, lid in enumerate(line_ids):
                p = self.position
                self.position += 1
                first = max(0, -((size - 1 - p) // step))  # ceil((p - size + 1) / step)
                last = p // step
                if first > last:
                    self.counts["no_window"] += 1
                for k in range(first, last + 1):
                    w = self.open.get(k)
                    if w is None:
                        w = self.open[k] = OpenWindow(f"w{k:06d}", k, k)
                        w.touch = self._tick()
                    out.append((w, w.append(lid, stamps[i], eids[i], labels[i], refs[i],
                                            self.keep), i))  # fmt: skip
                    if p == k * step + size - 1:
                        self._close(k)
        elif isinstance(spec, TimeWindows):
            size, step = self.size_us, self.step_us
            for i, lid in enumerate(line_ids):
                ts = stamps[i]
                if ts is None:
                    self.counts["no_window"] += 1
                    continue
                if self.watermark is None or ts > self.watermark:
                    self.watermark = ts
                    self._close_time(ts)
                first, last = (ts - size) // step + 1, ts // step
                if first > last:
                    self.counts["no_window"] += 1
                for k in range(first, last + 1):
                    w = self.open.get(k)
                    if w is None:
                        if self.watermark >= k * step + size:
                            self.counts["late"] += 1
                            continue
                        w = self.open[k] = OpenWindow(self._time_id(k), k, k)
                        w.touch = self._tick()
                    out.append((w, w.append(lid, ts, eids[i], labels[i], refs[i], self.keep), i))
        for w, _, _ in out:
            self.dirty[id(w)] = w
        self._evict()
        return out

    def _add_line(self, key: Any, lid: int, ts: int | None, eid: str, label: int | None,
                  ref: Ref) -> tuple[OpenWindow, int]:  # fmt: skip
        w = self._session(key, ts)
        pos = w.append(lid, ts, eid, label, ref, self.keep)
        if len(w.eids) >= self.max_lines:
            self.counts["capped"] += 1
            self.parts.setdefault(key, 1)  # the key goes on in key~2
            self._close(key)
        return w, pos

    def add_batch(self, events: pl.DataFrame, eids: Sequence[str] | np.ndarray,
                  refs: Sequence[Ref]) -> list[Segment]:  # fmt: skip
        """Append a parsed batch (an events table, rows in line order; ``eids``: each row's
        event id, ``refs``: each row's reference). Sessions are assembled per key, not per
        line: the batch is grouped by key once (Polars), and each key's lines are appended
        in one step; a key whose lines would cross an idle gap or a cap inside the batch goes
        line by line. Returns one :data:`Segment` per window appended to, in the order of
        the windows' last line in the batch."""
        spec = self.spec
        lids = events[LINE_ID].to_numpy()
        stamps = events[TIMESTAMP].dt.epoch("us")
        small = events.height <= self.small_batch
        if small or not isinstance(spec, (Sessions, FieldSessions)):
            # line by line (count and time windows; and a small batch, for which the
            # fixed cost of the per-key Polars steps outweighs the lines: following)
            take = getattr(refs, "take", None)
            refs = take(np.arange(len(refs))) if take is not None else refs
            labels = events[LABEL].to_list()
            return _segments(self._add(lids.tolist(), stamps.to_list(), eids, labels,
                                       self.keys(events), refs))  # fmt: skip
        row = pl.int_range(pl.len(), dtype=pl.Int64).alias("row")
        cols: list[Any] = [row, stamps.alias("ts"), events[LABEL].alias("lab")]
        if isinstance(spec, Sessions):
            keyed = events.select(
                *cols,
                pl.col(CONTENT).str.extract_all(spec.pattern)
                .list.unique(maintain_order=True).alias("key"),
            ).explode("key").filter(pl.col("key").is_not_null())  # fmt: skip
        else:
            if spec.field not in events.columns:
                raise LogsieveError(f"events have no {spec.field!r} field for sessions")
            keyed = events.select(*cols, pl.col(spec.field).cast(pl.String).alias("key"))
            keyed = keyed.filter(pl.col("key").is_not_null() & (pl.col("key") != ""))
        self.counts["no_window"] += events.height - keyed["row"].n_unique()
        if keyed.height == 0:
            return []
        ts = pl.col("ts").drop_nulls()
        # the LRU order: each key's last (line, key within the line) in the batch
        per_key = keyed.with_row_index("x").group_by("key", maintain_order=True).agg(
            pl.col("x").max().alias("last"), pl.col("row"), pl.len().alias("n"),
            pl.col("ts").min().alias("tmin"), pl.col("ts").max().alias("tmax"),
            ts.first().alias("tfirst"), ts.last().alias("tlast"), ts.diff().max().alias("gap"),
            pl.col("lab").max().alias("lab"),
        ).sort("last")  # fmt: skip
        rows_all = per_key["row"].explode().to_numpy()
        wm = per_key["tmax"].max()
        if wm is not None and (self.watermark is None or wm > self.watermark):  # type: ignore[operator]
            self.watermark = int(wm)  # type: ignore[arg-type]
        eid_obj = np.array(eids, dtype=object)
        take = getattr(refs, "take", None)
        # every gather done once for the batch, in key order; each key takes its slices
        ns = per_key["n"].to_numpy().astype(np.int64)
        ends = np.cumsum(ns)
        eids_k = eid_obj[rows_all].tolist()
        lids_k = lids[rows_all].tolist()
        kept_rows = rows_all[np.repeat(ends, ns) - np.arange(len(rows_all)) <= self.keep]
        refs_k = take(kept_rows) if take is not None else [refs[r] for r in kept_rows.tolist()]
        kends = np.cumsum(np.minimum(ns, self.keep)).tolist()
        segs: list[Segment] = []
        idle, dur, keep, opened = self.idle_us, self.max_us, self.keep, self.open
        max_lines = self.max_lines
        move_to_end, now = opened.move_to_end, time.monotonic()
        b = kb = 0
        cols = [per_key[c].to_list() for c in ("key", "n", "tmin", "tmax", "tfirst", "tlast",
                                                "gap", "lab")]  # fmt: skip
        for key, n, tmin, tmax, tfirst, tlast, gap, lab, e, ke in zip(*cols, ends.tolist(), kends,
                                                                      strict=True):  # fmt: skip
            w = opened.get(key)
            slow = (0 if w is None else len(w.eids)) + n >= max_lines
            if idle is not None and not slow:
                slow = (gap is not None and gap > idle) or (
                    w is not None and w.last_ts is not None and tfirst is not None
                    and tfirst - w.last_ts > idle)  # fmt: skip
            if dur is not None and not slow and tmin is not None:
                lo = tmin if w is None or w.start is None else min(tmin, w.start)
                hi = tmax if w is None or w.end is None else max(tmax, w.end)
                slow = hi - lo > dur
            if slow:
                segs.extend(_segments([
                    (*self._add_line(key, int(lids[r]), _opt(stamps[r]), eids[r],
                                     _opt(events[LABEL][r]), refs[r]), r)
                    for r in rows_all[b:e].tolist()
                ]))  # fmt: skip
                b, kb = e, ke
                continue
            if w is None:
                w = self._session(key, tfirst)
            else:  # no gap and no cap within reach (not slow): _session's keep-going branch
                move_to_end(key)
                w.wall = now
                self.ticks += 1
                w.touch = self.ticks
            pos = len(w.eids)
            w.eids += eids_k[b:e]
            w.line_ids += lids_k[b:e]
            if tmin is not None:
                w.start = tmin if w.start is None else min(w.start, tmin)
                w.end = tmax if w.end is None else max(w.end, tmax)
                w.last_ts = tlast
            if lab is not None and (w.label is None or lab > w.label):
                w.label = lab
            kept = w.refs
            kept += refs_k[kb:ke]
            if len(kept) > keep:
                del kept[:-keep]
            segs.append((w, pos, rows_all[b:e]))
            b, kb = e, ke
        for w, _, _ in segs:
            self.dirty[id(w)] = w
        self._evict()
        return segs


    def _session(self, key: str, ts: int | None) -> OpenWindow:
        w = self.open.get(key)
        if w is not None:
            idle, dur = self.idle_us, self.max_us
            if idle is not None and ts is not None and w.last_ts is not None \
                    and ts - w.last_ts > idle:  # fmt: skip
                self._close(key)
                w = None
            elif dur is not None and ts is not None and w.start is not None \
                    and max(w.end or ts, ts) - min(w.start, ts) > dur:  # fmt: skip
                self.counts["capped_duration"] += 1
                self.parts.setdefault(key, 1)  # the key goes on in key~2
                self._close(key)
                w = None
            else:
                self.open.move_to_end(key)
                w.wall = time.monotonic()
                w.touch = self._tick()
                return w
        n = self.parts.get(key, 0) + 1
        if self.suffix or n > 1:
            self.parts[key] = n
        wid = f"{key}#{n}" if self.suffix else key if n == 1 else f"{key}~{n}"
        w = self.open[key] = OpenWindow(wid, key)
        w.wall = time.monotonic()
        w.touch = self._tick()
        return w

    def _tick(self) -> int:
        self.ticks += 1
        return self.ticks

    def _time_id(self, k: int) -> str:
        moment = datetime.fromtimestamp(k * self.step_us / 1e6, tz=UTC)
        if self.fmt is not None:
            return moment.strftime(self.fmt)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _close(self, key: Any) -> None:
        w = self.open.pop(key, None)
        if w is not None:
            self.gone.append(w.wid)
            self.closed.append(w)
            self.counts["closed"] += 1

    def _close_time(self, watermark: int) -> None:
        size, step = self.size_us, self.step_us
        done = [k for k in self.open if k * step + size <= watermark]
        for k in sorted(done):
            self._close(k)

    def _evict(self) -> None:
        while len(self.open) > self.max_open:
            key = next(iter(self.open))
            self.counts["evicted"] += 1
            if not isinstance(self.spec, (CountWindows, TimeWindows)):
                self.parts.setdefault(key, 1)  # a later line of the key opens key~2
            self._close(key)

    # ------------------------------------------------------------------ time passing
    def advance(self, now: float | None = None) -> None:
        """Close sessions idle past the watermark (log time) or, following, wall time."""
        idle = self.idle_us
        if idle is None or not isinstance(self.spec, (Sessions, FieldSessions)):
            return
        wm = self.watermark
        now = time.monotonic() if now is None else now
        stale: list[Any] = []
        for key, w in self.open.items():  # least recently updated first
            if w.last_ts is not None:
                if wm is not None and wm - w.last_ts > idle:
                    stale.append(key)
                    continue
            elif self.wall_idle and (now - w.wall) * 1e6 > idle:
                stale.append(key)
                continue
            break
        for key in stale:
            self._close(key)

    def close_all(self) -> None:
        """End of input: close everything, with batch's final-partial-window rule."""
        spec = self.spec
        keys: Iterable[Any] = list(self.open)
        if isinstance(spec, CountWindows):
            size, step = spec.size, spec.step
            assert step is not None
            n = self.position
            for k in sorted(self.open):
                if step < size and k > 0 and not (k - 1) * step + size < n:
                    self.gone.append(self.open.pop(k).wid)  # contained in the window before
            keys = sorted(self.open)
        elif isinstance(spec, TimeWindows):
            keys = sorted(self.open)
        for key in keys:
            self._close(key)

    def take_changes(self) -> tuple[list[OpenWindow], list[str]]:
        """(open windows updated, window ids closed) since the last call: what an
        incremental checkpoint writes."""
        opened = self.open
        upd = [w for w in self.dirty.values() if opened.get(w.key) is w]
        gone, self.gone = self.gone, []
        self.dirty.clear()
        return upd, gone

    def take_closed(self) -> list[OpenWindow]:
        out, self.closed = self.closed, []
        return out

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {
            "parts": dict(self.parts),
            "position": self.position,
            "watermark": self.watermark,
            "counts": dict(self.counts),
            "ticks": self.ticks,
        }

    def restore(self, state: dict[str, Any], windows: Iterable[OpenWindow]) -> None:
        self.parts = {str(k): int(v) for k, v in state.get("parts", {}).items()}
        self.position = int(state.get("position", 0))
        self.watermark = state.get("watermark")
        self.counts.update(state.get("counts", {}))
        self.ticks = int(state.get("ticks", 0))
        self.open.clear()
        self.dirty.clear()
        self.gone.clear()
        numbered = isinstance(self.spec, (CountWindows, TimeWindows))
        for w in sorted(windows, key=lambda x: x.touch):
            if len(w.refs) > self.keep:
                del w.refs[: -self.keep]
            if numbered:
                w.key = w.k
            self.open[w.key] = w
