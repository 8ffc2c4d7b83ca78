"""Grouping lines into sessions, count windows and time windows; labels; durations; CLI."""

from __future__ import annotations

import gzip
import io
import math
import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from logsieve.errors import InputError, LogsieveError
from logsieve.grouping.labels import read_labels
from logsieve.grouping.specs import build_spec, parse_time_option, parse_window_option
from logsieve.grouping.windows import (
    CountWindows,
    Sessions,
    TimeWindows,
    group,
    group_count,
    group_sessions,
    group_time,
    parse_duration,
)
from logsieve.pipeline.jobs import group_job, sequences_job
from logsieve.schema import TS_DTYPE, WINDOW_SCHEMA

T0 = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)


def events(contents, seconds=None, labels=None, event_ids=None, line_ids=None) -> pl.DataFrame:
    """A small events table built by hand (no parser needed)."""
    n = len(contents)
    ts = [None if s is None else T0 + timedelta(seconds=s) for s in (seconds or [None] * n)]
    return pl.DataFrame(
        {
            "line_id": line_ids or list(range(1, n + 1)),
            "timestamp": pl.Series(ts, dtype=TS_DTYPE),
            "level": ["INFO"] * n,
            "content": contents,
            "event_id": event_ids or [f"E{i + 1}" for i in range(n)],
            "template": ["<*>"] * n,
            "label": pl.Series(labels or [None] * n, dtype=pl.Int8),
        }
    )


def membership(windows: pl.DataFrame) -> dict[str, list[int]]:
    return dict(zip(windows["window_id"], windows["line_ids"].to_list(), strict=True))


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("10s", timedelta(seconds=10)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(minutes=90)),
        ("1h 30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("1w", timedelta(days=7)),
        ("2H", timedelta(hours=2)),
        (timedelta(seconds=5), timedelta(seconds=5)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "30", "m", "abc", "5x", "1h-5m", "-5m", "0s", "1h,2m", timedelta(0)]
)
def test_parse_duration_rejects_garbage(text):
    with pytest.raises(LogsieveError):
        parse_duration(text)


# --- input forms and schema --------------------------------------------------------------


def test_accepts_dataframe_lazyframe_and_parquet(tmp_path):
    ev = events(["a blk_1", "b blk_2", "c blk_1"], seconds=[0, 1, 2])
    path = tmp_path / "events.parquet"
    ev.write_parquet(path)
    outs = [group_sessions(x) for x in (ev, ev.lazy(), path, str(path))]
    for out in outs:
        assert out.schema == pl.Schema(WINDOW_SCHEMA)
        assert out.equals(outs[0])
    with pytest.raises(LogsieveError, match="not found"):
        group_sessions(tmp_path / "missing.parquet")
    with pytest.raises(LogsieveError, match="lacks column"):
        group_sessions(ev.drop("content"))
    with pytest.raises(LogsieveError, match="lacks column"):
        group_time(ev.drop("timestamp"), "1m")


def test_minimal_columns_and_empty_table():
    ev = pl.DataFrame({"line_id": [1, 2, 3], "event_id": ["E1", "E2", "E3"]})
    w = group_count(ev, 2)
    assert w.schema == pl.Schema(WINDOW_SCHEMA)
    assert w["line_ids"].to_list() == [[1, 2], [3]]
    assert w["label"].to_list() == [None, None] and w["start"].null_count() == 2
    empty = events([]).head(0)
    for out in (group_sessions(empty), group_count(empty, 3, 1), group_time(empty, "1m", "10s")):
        assert out.height == 0 and out.schema == pl.Schema(WINDOW_SCHEMA)


# --- sessions ----------------------------------------------------------------------------


def test_sessions_multi_key_lines_and_dropped_lines():
    ev = events(
        [
            "open blk_1",
            "copy blk_1 to blk_-2",  # two keys: in both sessions
            "no key here",  # dropped
            "blk_3 twice blk_3",  # same key twice: once
            "close blk_-2",
        ],
        seconds=[0, 1, 2, 3, 4],
    )
    res = group(ev, Sessions())
    m = membership(res.windows)
    assert m == {"blk_1": [1, 2], "blk_-2": [2, 5], "blk_3": [4]}
    assert res.lines == 5 and res.lines_dropped == 1
    assert res.windows["event_ids"].to_list() == [["E1", "E2"], ["E2", "E5"], ["E4"]]
    # ordered by start time: blk_1 (t=0), blk_-2 (t=1), blk_3 (t=3)
    assert res.windows["window_id"].to_list() == ["blk_1", "blk_-2", "blk_3"]
    assert res.windows["start"][1] == T0 + timedelta(seconds=1)
    assert res.windows["end"][1] == T0 + timedelta(seconds=4)
    # every (key, line) pair appears exactly once
    total = ev["content"].str.extract_all(r"blk_-?\d+").list.unique().list.len().sum()
    assert res.windows["line_ids"].list.len().sum() == total


def test_sessions_line_order_kept_from_unsorted_input():
    ev = events(["x blk_1", "y blk_1", "z blk_1"], seconds=[5, 1, 3], line_ids=[30, 10, 20])
    w = group_sessions(ev)
    assert w["line_ids"].to_list() == [[10, 20, 30]]
    assert w["event_ids"].to_list() == [["E2", "E3", "E1"]]
    assert w["start"][0] == T0 + timedelta(seconds=1) and w["end"][0] == T0 + timedelta(seconds=5)


def test_sessions_order_by_start_then_first_line():
    ev = events(["k2", "k1", "k3", "k4"], seconds=[10, 10, None, 5])
    w = group_sessions(ev, pattern=r"k\d")
    # k4 starts first; k2/k1 tie on time -> first line decides; k3 has no time -> last
    assert w["window_id"].to_list() == ["k4", "k2", "k1", "k3"]


def test_sessions_custom_pattern_and_bad_pattern():
    ev = events(["user=alice login", "user=bob login", "user=alice logout"])
    w = group_sessions(ev, pattern=r"user=\w+")
    assert membership(w) == {"user=alice": [1, 3], "user=bob": [2]}
    with pytest.raises(LogsieveError, match="bad session pattern"):
        group_sessions(ev, pattern="(")


def test_idle_cuts_sessions():
    ev = events(
        ["blk_1 a", "blk_1 b", "blk_2 c", "blk_1 d", "blk_1 e", "blk_1 f"],
        seconds=[0, 60, 100, 400, 460, 520],
    )
    res = group(ev, Sessions(idle="5m"))
    # blk_1 gaps: 60, 340 (> 300: cut), 60, 60
    assert membership(res.windows) == {"blk_1#1": [1, 2], "blk_2#1": [3], "blk_1#2": [4, 5, 6]}
    # a gap exactly equal to idle does not cut
    assert group_sessions(ev, idle="340s")["window_id"].to_list() == ["blk_1#1", "blk_2#1"]
    # a line without a timestamp never cuts
    ev2 = events(["blk_1 a", "blk_1 b", "blk_1 c"], seconds=[0, None, 1000])
    assert membership(group_sessions(ev2, idle="1m")) == {"blk_1#1": [1, 2], "blk_1#2": [3]}
    assert membership(group_sessions(ev2, idle=timedelta(hours=1))) == {"blk_1#1": [1, 2, 3]}


# --- count windows -----------------------------------------------------------------------


def count_reference(n: int, size: int, step: int) -> list[list[int]]:
    """Windows as lists of line ids (1..n), by the documented rule."""
    out = []
    k = 0
    while k * step < n:
        if k == 0 or (k - 1) * step + size < n:
            out.append(list(range(k * step + 1, min(k * step + size, n) + 1)))
        k += 1
    return out


def test_count_fixed_each_line_once():
    ev = events([f"m{i}" for i in range(10)], seconds=list(range(10)))
    res = group(ev, CountWindows(4))
    assert res.windows["line_ids"].to_list() == [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9, 10],
    ]  # partial kept
    assert res.windows["window_id"].to_list() == ["w000000", "w000001", "w000002"]
    assert res.windows["line_ids"].explode().sort().to_list() == list(range(1, 11))
    assert res.lines_dropped == 0


@pytest.mark.parametrize(
    ("n", "size", "step"),
    [
        (10, 4, 2),
        (10, 4, 1),
        (11, 4, 3),
        (12, 4, 4),
        (3, 5, 1),
        (10, 3, 5),
        (13, 2, 4),
        (1, 1, 1),
        (7, 7, 2),
    ],
)
def test_count_windows_match_reference(n, size, step):
    ev = events([f"m{i}" for i in range(n)])
    res = group(ev, CountWindows(size, step))
    expected = count_reference(n, size, step)
    assert res.windows["line_ids"].to_list() == expected
    covered = {i for w in expected for i in w}
    assert res.lines_dropped == n - len(covered)
    if step <= size:
        # every line is covered; interior lines are in about size/step windows
        assert covered == set(range(1, n + 1))
        counts = res.windows["line_ids"].explode().value_counts()
        assert counts["count"].max() <= math.ceil(size / step)


def test_count_sliding_event_order_and_ids_sort():
    ev = events([f"m{i}" for i in range(25)], event_ids=[f"E{i}" for i in range(25)])
    w = group_count(ev, 3, 1)
    assert w["event_ids"][4].to_list() == ["E4", "E5", "E6"]
    assert w["window_id"].to_list() == sorted(w["window_id"].to_list())
    with pytest.raises(LogsieveError):
        CountWindows(0)
    with pytest.raises(LogsieveError):
        CountWindows(5, -1)


# --- time windows ------------------------------------------------------------------------


def test_time_fixed_boundaries_are_epoch_aligned():
    # T0 is midnight; windows of 10 min: [0, 600), [600, 1200), ...
    ev = events([f"m{i}" for i in range(6)], seconds=[0, 599, 600, 601, 2000, 2399])
    res = group(ev, TimeWindows("10m"))
    assert membership(res.windows) == {
        "2024-01-01T00:00:00Z": [1, 2],
        "2024-01-01T00:10:00Z": [3, 4],  # exactly on the boundary -> the later window
        "2024-01-01T00:30:00Z": [5, 6],  # the empty 00:20 window is not emitted
    }
    assert res.windows["start"].to_list()[1] == T0 + timedelta(seconds=600)
    assert res.windows["end"].to_list()[2] == T0 + timedelta(seconds=2399)


def time_reference(seconds: list[int], size: int, step: int) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for line, t in enumerate(seconds, start=1):
        for k in range((t - size) // step - 1, t // step + 2):
            if k * step <= t < k * step + size:
                out.setdefault(k, []).append(line)
    return out


@pytest.mark.parametrize(("size", "step"), [(60, 60), (60, 20), (60, 25), (30, 90), (45, 60)])
@pytest.mark.parametrize("shuffled", [False, True])
def test_time_windows_match_reference(size, step, shuffled):
    rng = random.Random(size * 1000 + step)
    seconds = sorted(rng.randrange(0, 600) for _ in range(80))
    if shuffled:  # timestamps out of line order take the general path
        rng.shuffle(seconds)
    ev = events([f"m{i}" for i in range(80)], seconds=seconds)
    res = group(ev, TimeWindows(f"{size}s", f"{step}s"))
    ref = time_reference(seconds, size, step)
    got = {
        int((s - T0).total_seconds()) // step: ids
        for s, ids in zip(
            res.windows["window_id"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"),
            res.windows["line_ids"].to_list(),
            strict=True,
        )
    }
    assert got == ref
    assert res.lines_dropped == 80 - len({i for ids in ref.values() for i in ids})
    starts = res.windows["start"].to_list()
    assert starts == sorted(starts)


def test_time_null_timestamps_dropped_or_error():
    ev = events(["a", "b", "c"], seconds=[0, None, 10])
    res = group(ev, TimeWindows("1m"))
    assert res.lines_dropped == 1 and membership(res.windows) == {"2024-01-01T00:00:00Z": [1, 3]}
    with pytest.raises(LogsieveError, match="no line has one"):
        group_time(events(["a"], seconds=[None]), "1m")


def test_subsecond_window_ids():
    ev = events(["a", "b"], seconds=[0.2, 0.7])
    w = group_time(ev, "500ms")
    assert w["window_id"].to_list() == [
        "2024-01-01T00:00:00.000000Z",
        "2024-01-01T00:00:00.500000Z",
    ]


# --- labels ------------------------------------------------------------------------------


def test_line_labels_propagate():
    ev = events([f"m{i}" for i in range(6)], labels=[0, 0, 1, None, None, None])
    w = group_count(ev, 2)
    assert w["label"].to_list() == [0, 1, None]  # any 1 -> 1; known 0 -> 0; nothing -> null


def test_side_file_labels_for_sessions(tmp_path):
    csv = tmp_path / "anomaly_label.csv"
    csv.write_text("BlockId,Label\nblk_1,Anomaly\nblk_2,Normal\n")
    lst = tmp_path / "anomalous.txt"
    lst.write_text("blk_1\n")
    ev = events(
        ["blk_1 a", "blk_2 b", "blk_3 c", "blk_4 d"],
        seconds=[0, 1, 2, 3],
        labels=[None, None, None, 1],
    )
    by_csv = dict(zip(*group_sessions(ev, labels=csv)[["window_id", "label"]], strict=True))
    assert by_csv == {
        "blk_1": 1,
        "blk_2": 0,
        "blk_3": None,
        "blk_4": 1,
    }  # unlisted in a CSV: unknown
    by_list = dict(zip(*group_sessions(ev, labels=lst)[["window_id", "label"]], strict=True))
    assert by_list == {"blk_1": 1, "blk_2": 0, "blk_3": 0, "blk_4": 1}  # unlisted in a list: normal
    table = pl.DataFrame({"key": ["blk_3"], "label": [1]})
    assert group_sessions(ev, labels=table)["label"].to_list() == [0, 0, 1, 1]
    # idle-cut sessions inherit the key label
    cut = group_sessions(events(["blk_1 a", "blk_1 b"], seconds=[0, 900]), idle="1m", labels=lst)
    assert cut["window_id"].to_list() == ["blk_1#1", "blk_1#2"] and cut["label"].to_list() == [1, 1]


def test_side_file_labels_for_keyless_windows(tmp_path):
    lst = tmp_path / "anomalous.txt"
    lst.write_text("blk_9\n")
    ev = events(
        ["blk_1 a", "blk_2 b", "blk_1 c to blk_9", "blk_2 d", "no key", "no key"],
        seconds=[0, 1, 2, 3, 4, 5],
        labels=[None, None, None, None, None, 1],
    )
    assert group_count(ev, 2, labels=lst)["label"].to_list() == [0, 1, 1]
    assert group_count(ev, 2)["label"].to_list() == [None, None, 1]
    # a window whose lines name no key and carry no label stays unknown
    assert group_count(ev.head(5), 1, labels=lst)["label"].to_list() == [0, 0, 1, 0, None]
    assert group_time(ev, "2s", labels=lst)["label"].to_list() == [0, 1, 1]


def test_read_labels_formats(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text('BlockId,Label\n"blk_1",Anomaly\nblk_2,normal\nblk_1,Normal\n')
    assert read_labels(a).sort("key").rows() == [
        ("blk_1", 1),
        ("blk_2", 0),
    ]  # conflict -> anomalous
    b = tmp_path / "b.csv"
    b.write_text("k1,1\nk2,0\n")  # no header
    assert read_labels(b).rows() == [("k1", 1), ("k2", 0)]
    c = tmp_path / "c.txt"
    c.write_text("x\n\ny\n")
    assert read_labels(c).rows() == [("x", 1), ("y", 1)]
    d = tmp_path / "d.csv"
    d.write_text("BlockId,Label\nblk_1,Weird\n")
    with pytest.raises(InputError, match="Normal/Anomaly") as err:
        read_labels(d)
    assert err.value.line == 2
    e = tmp_path / "e.txt"
    e.write_text("\n")
    with pytest.raises(InputError, match="no labels"):
        read_labels(e)


def test_read_labels_real_files(shared_data):
    lead = read_labels(shared_data / "hdfs_loglead_2pct" / "anomaly_label.csv")
    assert lead.height == 11501 and int(lead["label"].sum()) == 350
    first = read_labels(shared_data / "hdfs_raw_first20k" / "anomaly_label.csv")
    assert first.height == 1782 and int(first["label"].sum()) == 43
    ids = read_labels(shared_data / "hdfs_labels" / "anomalous_block_ids.txt")
    assert ids.height == 16838 and ids["label"].unique().to_list() == [1]


def test_hdfs_100k_sessions_real(shared_data):
    src = shared_data / "loglizer_hdfs_100k" / "HDFS_100k.log_structured.csv.gz"
    raw = pl.read_csv(io.BytesIO(gzip.decompress(src.read_bytes())), infer_schema=False)
    ev = raw.select(
        pl.col("LineId").cast(pl.Int64).alias("line_id"),
        (pl.col("Date").str.zfill(6) + pl.col("Time").str.zfill(6))
        .str.to_datetime("%y%m%d%H%M%S", time_zone="UTC")
        .alias("timestamp"),
        pl.col("Content").alias("content"),
        pl.col("EventId").alias("event_id"),
    )
    labels = shared_data / "loglizer_hdfs_100k" / "derived" / "HDFS_100k_anomaly_label.csv.gz"
    res = group(ev, Sessions(), labels=labels)
    assert res.summary() == {
        "windows": 7940,
        "anomalous": 313,
        "normal": 7627,
        "unlabelled": 0,
        "lines": 104815,
        "lines_dropped": 0,
    }
    # the complete anomaly list gives the same labels
    same = group_sessions(ev, labels=shared_data / "hdfs_labels" / "anomalous_block_ids.txt")
    assert same["label"].equals(res.windows["label"])
    starts = res.windows["start"].to_list()
    assert starts == sorted(starts)


# --- CLI functions -----------------------------------------------------------------------


def test_cli_option_parsing():
    assert parse_window_option("20") == CountWindows(20, 20)
    assert parse_window_option("20, 5") == CountWindows(20, 5)
    assert parse_time_option("1h,10m") == TimeWindows("1h", "10m")
    assert build_spec() == Sessions()
    assert build_spec(idle="30m") == Sessions(idle="30m")
    for bad in ("x", "20,", "1,2,3", "-3"):
        with pytest.raises(LogsieveError, match="--window"):
            parse_window_option(bad)
    with pytest.raises(LogsieveError, match="--time"):
        parse_time_option("1h,")
    with pytest.raises(LogsieveError, match="choose one"):
        build_spec(window="10", time="1m")
    with pytest.raises(LogsieveError, match="--idle"):
        build_spec(window="10", idle="1m")


def test_group_command_writes_parquet(tmp_path):
    ev = events(["blk_1 a", "blk_2 b", "x", "blk_1 c"], seconds=[0, 1, 2, 3])
    src = tmp_path / "events.parquet"
    ev.write_parquet(src)
    lst = tmp_path / "anomalous.txt"
    lst.write_text("blk_2\n")
    out = tmp_path / "out" / "windows.parquet"
    summary = group_job(src, out, build_spec(), labels=lst)
    assert summary["windows"] == 2 and summary["anomalous"] == 1 and summary["lines_dropped"] == 1
    assert summary["grouping"]["kind"] == "session"
    written = pl.read_parquet(out)
    assert written.schema == pl.Schema(WINDOW_SCHEMA) and written.height == 2
    assert group_job(src, out, build_spec(window="2,1"))["windows"] == 3
    assert group_job(src, out, build_spec(time="2s"))["windows"] == 2
    assert [p.name for p in out.parent.iterdir()] == ["windows.parquet"]  # no temp files left
    with pytest.raises(LogsieveError, match="not found"):
        group_job(tmp_path / "nope.parquet", out, build_spec())


def test_sequences_command(tmp_path, shared_data):
    d = shared_data / "ait_sequences" / "hadoop_loghub"
    out = tmp_path / "seq.parquet"
    s = sequences_job(
        [d / "hadoop_train", d / "hadoop_test_normal", d / "hadoop_test_abnormal"], out
    )
    assert s["windows"] == 978 and s["anomalous"] == 811 and s["normal"] == 167
    assert pl.read_parquet(out).schema == pl.Schema(WINDOW_SCHEMA)
    with pytest.raises(LogsieveError):
        sequences_job([], out)
