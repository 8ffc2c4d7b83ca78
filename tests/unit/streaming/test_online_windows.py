"""Online windows equal batch `group` (ids, contents, labels) and stay bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from logsieve.grouping.fields import FieldSessions
from logsieve.grouping.specs import group_any
from logsieve.grouping.windows import CountWindows, Sessions, TimeWindows
from logsieve.streaming.windows import OnlineGrouper, windows_frame


def _events(n: int = 400) -> pl.DataFrame:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        blk = f"blk_{(i * 7) % 13}"
        other = f" blk_{(i * 3) % 5}" if i % 11 == 0 else ""
        rows.append({
            "line_id": i + 1,
            "timestamp": t0 + timedelta(seconds=i * 17 + (400 if i > 200 else 0)),
            "content": f"msg {i % 4} {blk}{other}",
            "event_id": f"E{i % 4 + 1}",
            "label": 1 if i % 97 == 5 else 0,
            "IP": None if i % 50 == 0 else f"10.0.0.{i % 6}",
        })  # fmt: skip
    return pl.DataFrame(rows).with_columns(pl.col("label").cast(pl.Int8))


def _online(events: pl.DataFrame, spec, **kw) -> pl.DataFrame:
    g = OnlineGrouper(spec, **kw)
    closed = []
    for chunk in events.iter_slices(37):  # any batch size gives the same windows
        g.add(chunk["line_id"].to_list(), chunk["timestamp"].dt.epoch("us").to_list(),
              chunk["event_id"].to_list(), chunk["label"].to_list(), g.keys(chunk),
              [("x", i, "") for i in chunk["line_id"].to_list()])  # fmt: skip
        g.advance()
        closed += g.take_closed()
    g.close_all()
    closed += g.take_closed()
    return windows_frame(closed).sort("window_id")


def _online_batch(events: pl.DataFrame, spec, size: int = 37, small: int = 0,
                  **kw) -> pl.DataFrame:  # fmt: skip
    g = OnlineGrouper(spec, **kw)
    g.small_batch = small  # batches up to this size go line by line
    closed = []
    for chunk in events.iter_slices(size):  # the per-key batch path: the same windows
        g.add_batch(chunk, chunk["event_id"].to_list(),
                    [("x", i, "") for i in chunk["line_id"].to_list()])  # fmt: skip
        g.advance()
        closed += g.take_closed()
    g.close_all()
    closed += g.take_closed()
    return windows_frame(closed).sort("window_id")


SPECS = [
    Sessions(r"blk_-?\d+"),
    Sessions(r"blk_-?\d+", "5m"),
    FieldSessions("IP", "5m"),
    FieldSessions("IP", None),
    CountWindows(20),
    CountWindows(20, 7),
    CountWindows(5, 9),
    TimeWindows("10m"),
    TimeWindows("10m", "3m"),
]


@pytest.mark.parametrize("small", [0, 10_000], ids=["per-key", "line-by-line"])
@pytest.mark.parametrize("size", [1, 37, 400])
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_batch_path_equals_batch_group(spec, size: int, small: int) -> None:
    events = _events()
    batch = group_any(events, spec).windows.sort("window_id")
    assert _online_batch(events, spec, size, small).to_dicts() == batch.to_dicts()


def test_batch_path_keeps_the_lru_order_and_segments() -> None:
    events = _events()
    a, b = OnlineGrouper(Sessions()), OnlineGrouper(Sessions())
    b.small_batch = 0  # the per-key path
    for chunk in events.iter_slices(50):
        a.add(chunk["line_id"].to_list(), chunk["timestamp"].dt.epoch("us").to_list(),
              chunk["event_id"].to_list(), chunk["label"].to_list(), a.keys(chunk),
              [("x", i, "") for i in chunk["line_id"].to_list()])  # fmt: skip
        segs = b.add_batch(chunk, chunk["event_id"].to_list(),
                           [("x", i, "") for i in chunk["line_id"].to_list()])  # fmt: skip
        for w, pos, rows in segs:
            assert w.line_ids[pos : pos + len(rows)] == chunk["line_id"][rows].to_list()
        assert list(a.open) == list(b.open)


def test_duration_cap_closes_and_continues_the_key() -> None:
    events = _events(60).with_columns(pl.lit("m blk_1").alias("content"))  # 17 s apart
    for add in (_online, _online_batch):
        out = add(events, Sessions(), max_seconds=170)
        assert out["window_id"].to_list()[:3] == ["blk_1", "blk_1~2", "blk_1~3"]
        spans = (out["end"] - out["start"]).dt.total_seconds().to_list()
        assert max(spans) <= 170 and sum(out["event_ids"].list.len()) == 60


@pytest.mark.parametrize(
    "spec",
    [
        Sessions(r"blk_-?\d+"),
        Sessions(r"blk_-?\d+", "5m"),
        FieldSessions("IP", "5m"),
        FieldSessions("IP", None),
        CountWindows(20),
        CountWindows(20, 7),
        CountWindows(5, 9),
        TimeWindows("10m"),
        TimeWindows("10m", "3m"),
    ],
    ids=str,
)
def test_online_windows_equal_batch_group(spec) -> None:
    events = _events()
    batch = group_any(events, spec).windows.sort("window_id")
    online = _online(events, spec)
    assert online.to_dicts() == batch.to_dicts()


def test_open_windows_are_bounded_and_evictions_counted() -> None:
    events = _events(2000).with_columns(
        pl.format("req blk_{}", pl.col("line_id")).alias("content")  # every line a new session
    )
    g = OnlineGrouper(Sessions(), max_open=50)
    peak = 0
    for chunk in events.iter_slices(100):
        g.add(chunk["line_id"].to_list(), [None] * chunk.height, chunk["event_id"].to_list(),
              chunk["label"].to_list(), g.keys(chunk), [("x", 0, "")] * chunk.height)  # fmt: skip
        peak = max(peak, len(g.open))
        g.take_closed()
    assert peak == 50
    assert g.counts["evicted"] == 2000 - 50


def test_length_cap_closes_and_continues_the_key() -> None:
    events = _events(60).with_columns(pl.lit("m blk_1").alias("content"))
    out = _online(events, Sessions(), max_lines=25)
    assert out["window_id"].to_list() == ["blk_1", "blk_1~2", "blk_1~3"]
    assert out["event_ids"].list.len().to_list() == [25, 25, 10]
