"""Bad grouping input gives one-line errors: label files that are not label tables, labels
that match nothing, oversized windows and durations, regexes the Rust engine refuses."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from logsieve.errors import InputError, LogsieveError
from logsieve.grouping.labels import iter_label_rows, label_coverage, read_labels
from logsieve.grouping.windows import (
    MAX_DURATION,
    MAX_WINDOW_LINES,
    MAX_WINDOWS_PER_LINE,
    CountWindows,
    Sessions,
    TimeWindows,
    group,
    group_count,
    group_sessions,
    group_time,
    parse_duration,
)
from logsieve.schema import TS_DTYPE

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _events(contents: list[str]) -> pl.DataFrame:
    n = len(contents)
    return pl.DataFrame(
        {
            "line_id": list(range(1, n + 1)),
            "timestamp": pl.Series([T0 + timedelta(seconds=i) for i in range(n)], dtype=TS_DTYPE),
            "content": contents,
            "event_id": [f"E{i % 3}" for i in range(n)],
        }
    )


EVENTS = _events(["blk_1 open", "blk_2 open", "blk_1 close", "blk_3 x", "no key here"])


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# --- labels files ----------------------------------------------------------------------------


def _chunked(path: Path) -> list[pl.DataFrame]:
    return list(iter_label_rows(path, chunk_bytes=8))  # 8 bytes: chunks cut inside lines


READERS = pytest.mark.parametrize("read_labels", [read_labels, _chunked], ids=["whole", "chunked"])


@READERS
def test_header_only_labels_file_is_refused(tmp_path: Path, read_labels) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("BlockId,Label\n")
    with pytest.raises(InputError, match="only a header") as info:
        read_labels(path)
    assert _one_line(info).startswith(str(path))


@READERS
def test_log_file_given_as_labels_is_refused(tmp_path: Path, read_labels) -> None:
    path = tmp_path / "HDFS.log"
    path.write_text(
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
        "blk_38865049064139660 terminating\n" * 3
    )
    with pytest.raises(InputError, match="not a labels file") as info:
        read_labels(path)
    assert info.value.line == 1
    _one_line(info)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"blk_1": "Anomaly"}\n', "not a labels file"),  # JSON
        ("[1,2,3]\n", "only a header"),
        ("BlockId,Label\nblk_1,Anomaly\nblk_2\n", "not a key,label row"),
        ("BlockId,Label\n,Anomaly\n", "empty key"),
        ("a,b,c\nd,e,f\n", "label must be"),
    ],
)
@READERS
def test_non_label_tables_are_refused(tmp_path: Path, text: str, match: str, read_labels) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as info:
        read_labels(path)
    _one_line(info)


@READERS
def test_binary_labels_file_is_refused(tmp_path: Path, read_labels) -> None:
    path = tmp_path / "labels.parquet"
    EVENTS.write_parquet(path)
    with pytest.raises(InputError, match="UTF-8"):
        read_labels(path)


@pytest.mark.parametrize("chunk", [8, 64, 1 << 20])
def test_chunked_label_rows_equal_the_whole_table(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "labels.csv"
    rows = [f"blk_{i},{'Anomaly' if i % 7 == 0 else 'Normal'}" for i in range(300)]
    path.write_text("\ufeffBlockId,Label\n" + "\n\n".join(rows) + "\nblk_3,Anomaly\n")
    chunks = list(iter_label_rows(path, chunk_bytes=chunk))
    table = pl.concat(chunks).group_by("key", maintain_order=True).agg(pl.col("label").max())
    assert table.equals(read_labels(path))
    bad = tmp_path / "bad.csv"
    bad.write_text("BlockId,Label\n" + "\n".join(rows) + "\nblk_x,maybe\n")
    with pytest.raises(InputError, match="label must be") as info:
        list(iter_label_rows(bad, chunk_bytes=chunk))
    assert info.value.line == 302


def test_label_coverage_counts_matched_keys() -> None:
    table = pl.DataFrame({"key": ["blk_1", "blk_9", "blk_3"], "label": [1, 0, 1]})
    assert label_coverage(table, pl.Series(["blk_1", "blk_2", "blk_1"])) == (1, 3)
    lists = pl.Series([["blk_1", "blk_3"], [], None, ["blk_7"]])
    cov = label_coverage(table, lists)
    assert cov.matched == 2 and cov.total == 3
    assert label_coverage(table, pl.Series([], dtype=pl.String)) == (0, 3)


def test_labels_matching_no_window_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("BlockId,Label\nblk_77,Anomaly\nblk_78,Normal\n")
    for run in (
        lambda: group_sessions(EVENTS, labels=path),
        lambda: group_count(EVENTS, 2, labels=path),
        lambda: group_time(EVENTS, "2s", labels=path),
        lambda: group_sessions(EVENTS, pattern=r"key \w+", labels=path),
    ):
        with pytest.raises(LogsieveError, match="none of the 2 labelled keys occurs") as info:
            run()
        _one_line(info)
    # one matching key is enough
    path.write_text("BlockId,Label\nblk_77,Anomaly\nblk_3,Anomaly\n")
    assert group_sessions(EVENTS, labels=path)["label"].to_list() == [0, 0, 1]
    # an empty events table has nothing to match
    assert group_sessions(EVENTS.head(0), labels=path).height == 0


# --- window sizes, durations, overlap ---------------------------------------------------------


def test_count_window_bounds() -> None:
    with pytest.raises(LogsieveError, match="too large") as info:
        CountWindows(99999999999999999999)
    _one_line(info)
    with pytest.raises(LogsieveError, match="step .* too large"):
        CountWindows(10, 10**12)
    assert CountWindows(MAX_WINDOW_LINES).step == MAX_WINDOW_LINES
    with pytest.raises(LogsieveError, match="would fall into"):
        CountWindows(MAX_WINDOWS_PER_LINE + 1, 1)
    assert CountWindows(MAX_WINDOWS_PER_LINE, 1).step == 1


@pytest.mark.parametrize("text", ["99999999999d", "36526d", "5300w", "1" + "0" * 30 + "h"])
def test_durations_over_100_years_are_refused(text: str) -> None:
    with pytest.raises(LogsieveError, match="longer than 100 years") as info:
        parse_duration(text)
    _one_line(info)


def test_duration_limits() -> None:
    assert parse_duration("36525d") == MAX_DURATION
    with pytest.raises(LogsieveError, match="100 years"):
        parse_duration(timedelta(days=10**6))
    with pytest.raises(LogsieveError, match="bad duration") as info:
        parse_duration("9" * 500 + "d")
    assert len(_one_line(info)) < 200
    with pytest.raises(LogsieveError, match="bad duration|100 years"):
        TimeWindows("99999999999d")


def test_sliding_time_windows_are_bounded() -> None:
    start = time.perf_counter()
    with pytest.raises(LogsieveError, match="86,400,000 windows") as info:
        TimeWindows("1d", "1ms")
    assert time.perf_counter() - start < 1.0
    assert "1d" in _one_line(info) and "1ms" in str(info.value)
    assert TimeWindows("1d", "10s").step == timedelta(seconds=10)  # 8,640 per line: fine


# --- regexes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(blk)\1", "backreferences"),
        (r"(?<=x)blk", "look-around"),
        ("[", "unclosed character class"),
        ("blk_(", "unclosed group"),
        (r"\d*", "empty string"),
        ("", "non-empty"),
    ],
)
def test_bad_session_patterns(pattern: str, why: str) -> None:
    with pytest.raises(LogsieveError, match="bad session pattern") as info:
        Sessions(pattern)
    assert why in _one_line(info)


def test_bad_key_pattern_with_labels(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("blk_1\n")
    with pytest.raises(LogsieveError, match="bad key pattern") as info:
        group(EVENTS, CountWindows(2), labels=path, key_pattern=r"(b)\1")
    _one_line(info)
