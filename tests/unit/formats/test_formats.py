"""Formats: regex construction, fast/general agreement, timestamps, custom strings."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from logsieve.errors import LogsieveError
from logsieve.formats import MAX_FORMAT_FIELDS, RESERVED_NAMES, get_format, list_formats

LOGHUB_SYSTEMS = [
    "Android",
    "Apache",
    "BGL",
    "HDFS",
    "HPC",
    "Hadoop",
    "HealthApp",
    "Linux",
    "Mac",
    "OpenSSH",
    "OpenStack",
    "Proxifier",
    "Spark",
    "Thunderbird",
    "Windows",
    "Zookeeper",
]


def test_builtin_names_cover_loghub_and_http() -> None:
    names = {f.name for f in list_formats()}
    assert {s.lower() for s in LOGHUB_SYSTEMS} <= names
    assert {"spirit", "weblog", "clf", "combined"} <= names


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(LogsieveError, match="hdfs"):
        get_format("nosuchsystem")


def test_custom_format_string() -> None:
    fmt = get_format("<Date> <Time> <Level> <Component>: <Content>")
    assert fmt.name == "custom"
    assert fmt.header_fields == ("Date", "Time", "Level", "Component")
    m = pl.Series(["2024-01-02 10:00:00 INFO db.pool: opened 3 connections"]).str.extract_groups(
        fmt.regex()
    )
    assert m.struct.field("Content")[0] == "opened 3 connections"


@pytest.mark.parametrize("bad", ["no fields here", "<Date> <Time>", "<Content> <Content>"])
def test_bad_custom_formats(bad: str) -> None:
    with pytest.raises(LogsieveError):
        get_format(bad) if "<" in bad else get_format(bad)


def test_optional_separator_is_not_made_greedy() -> None:
    # "?" after a separator makes it optional; the fast form must not swallow later fields.
    fmt = get_format("weblog")
    line = "10.128.2.1,[29/Nov/2017:06:58:55,GET /login.php HTTP/1.1,200"
    for fast in (False, True):
        got = (
            pl.Series([line])
            .str.extract_groups(fmt.regex(fast=fast))
            .struct.unnest()
            .row(0, named=True)
        )
        assert got == {
            "IP": "10.128.2.1",
            "Time": "[29/Nov/2017:06:58:55",
            "Content": "GET /login.php HTTP/1.1",
            "Status": "200",
        }


@pytest.mark.parametrize("system", LOGHUB_SYSTEMS)
def test_fields_match_loghub_structured_files(shared_data: Path, system: str) -> None:
    """Splitting the raw 2k sample reproduces the header fields of Loghub's structured file."""
    folder = shared_data / "loghub_2k_corrected" / system
    fmt = get_format(system.lower())
    lines = pl.Series((folder / f"{system}_2k.log").read_text(encoding="utf-8").splitlines())
    truth = pl.read_csv(folder / f"{system}_2k.log_structured_corrected.csv", infer_schema=False)
    for fast in (False, True):
        got = lines.str.extract_groups(fmt.regex(fast=fast)).struct.unnest()
        matched = got["Content"].is_not_null()
        if fast:  # the fast form may leave lines to the general one, never disagree with it
            slow = lines.str.extract_groups(fmt.regex()).struct.unnest()
            assert got.filter(matched).equals(slow.filter(matched))
            continue
        assert matched.all()
        for col in fmt.fields:
            if col in truth.columns:
                # The structured files went through pandas: leading zeros lost (HDFS Date 081109 ->
                # 81109), ints turned float (PID 19939 -> 19939.0), the text NULL read as missing.
                def norm(s: pl.Series) -> pl.Series:
                    s = (
                        s.str.strip_chars()
                        .fill_null("")
                        .str.strip_chars_start("0")
                        .str.strip_suffix(".0")
                    )
                    return s.replace("NULL", "")

                ours, theirs = norm(got[col]), norm(truth[col])
                agree = int((ours == theirs).sum()) / len(ours)
                assert agree >= 0.99, f"{system}.{col}: {agree:.3f} of lines agree"


@pytest.mark.parametrize("system", [s for s in LOGHUB_SYSTEMS])
def test_timestamps_parse_on_loghub(shared_data: Path, system: str) -> None:
    fmt = get_format(system.lower())
    lines = pl.Series(
        (shared_data / "loghub_2k_corrected" / system / f"{system}_2k.log")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    fields = lines.str.extract_groups(fmt.regex()).struct.unnest()
    assert fmt.timestamp is not None
    ts = fields.select(fmt.timestamp.expr().alias("ts"))["ts"]
    assert ts.dtype == pl.Datetime("us", "UTC")
    assert ts.null_count() <= 0.01 * len(ts), (
        f"{system}: {ts.null_count()} timestamps did not parse"
    )


def test_header_only_line_has_empty_content() -> None:
    """BGL has lines that stop after the Level field; they are not malformed."""
    fmt = get_format("bgl")
    line = "- 1120866516 2005.07.08 R12-M0-N8-C:J12-U01 2005-07-08-16.48.36.430166 R12-M0-N8-C:J12-U01 RAS KERNEL FATAL"
    for fast in (False, True):
        got = (
            pl.Series([line])
            .str.extract_groups(fmt.regex(fast=fast))
            .struct.unnest()
            .row(0, named=True)
        )
        assert got["Level"] == "FATAL" and got["Content"] == ""


# --- validation before any input is read, reserved names, field cap, field shapes -----------


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("<A> [ <Content>", "unclosed character class"),
        (r"<A> \1 <Content>", "backreferences are not supported"),
        ("<A>(?=x) <Content>", "look-around"),
        ("<A> (x <Content>", "unclosed group"),
        ("<A> x) <Content>", "unopened group"),
        ("<A> a{2 <Content>", "unclosed counted repetition"),
        ("<A> a{3,1} <Content>", "repetition count"),
        ("(?P<x>a) <Content>", "named groups are not allowed"),
        ("<A>: <Content> (?<y>z)", "named groups are not allowed"),
    ],
)
def test_bad_format_regex_is_one_line_error(spec: str, why: str) -> None:
    with pytest.raises(LogsieveError, match="^bad format") as info:
        get_format(spec)
    assert why in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_format_fails_before_any_input_is_read(tmp_path: Path) -> None:
    from logsieve.parsing.parser import parse_file

    with pytest.raises(LogsieveError, match="bad format"):
        parse_file(tmp_path / "does-not-exist.log", format="<A> [ <Content>")


@pytest.mark.parametrize(
    "name",
    [
        "line_id",
        "event_id",
        "timestamp",
        "label",
        "template",
        "source",
        "content",
        "window_id",
        "line",
        "__p",
    ],
)
def test_field_names_of_logsieve_columns_are_refused(name: str) -> None:
    with pytest.raises(LogsieveError, match=f"field name <{name}> is one of logsieve's own"):
        get_format(f"<Date> <{name}> <Content>")


def test_schema_columns_are_all_reserved() -> None:
    from logsieve import schema

    columns = {v for k, v in vars(schema).items() if k.isupper() and isinstance(v, str)}
    columns -= {schema.UNSEEN_EVENT_ID, schema.UNSEEN_TEMPLATE}
    assert columns <= RESERVED_NAMES
    assert "Label" not in RESERVED_NAMES  # BGL's own <Label> field stays allowed


def test_field_count_is_capped_quickly() -> None:
    many = " ".join(f"<F{i}>" for i in range(9000)) + " <Content>"
    start = time.perf_counter()
    with pytest.raises(LogsieveError, match=f"more than {MAX_FORMAT_FIELDS}") as info:
        get_format(many)
    assert time.perf_counter() - start < 1.0
    assert len(str(info.value)) < 300
    ok = " ".join(f"<F{i}>" for i in range(MAX_FORMAT_FIELDS - 1)) + " <Content>"
    assert len(get_format(ok).fields) == MAX_FORMAT_FIELDS


WEBLOG_SAMPLE = """IP,Time,URL,Staus
10.128.2.1,[29/Nov/2017:06:58:55,GET /login.php HTTP/1.1,200
chmod:,cannot,'a.out':,No
10.131.2.1,[29/Nov/2017:06:59:04,GET /js/vendor/moment.min.js HTTP/1.1,200
rm:,cannot,'*.o':,No
timeout:,the,command,dumped
sh:,line,451,Segmentation
a.out:,main.cpp:51:,main():,Assertion
[Tue,Dec,51:47.0,2017]
"10.130.2.1","[29/Nov/2017:07:00:01","POST /process.php HTTP/1.1","302"
"""


def test_weblog_counts_shell_output_rows_as_malformed(tmp_path: Path) -> None:
    from logsieve.parsing.parser import LogParser

    path = tmp_path / "weblog.csv"
    path.write_text(WEBLOG_SAMPLE)
    table, stats = LogParser("weblog").parse_files(path)
    assert table is not None
    assert stats.skipped_lines == 1
    assert stats.malformed_lines == 6
    assert stats.malformed_examples == [3, 5, 6, 7, 8, 9]
    good = table.filter(pl.col("IP").is_not_null())
    assert good["IP"].to_list() == ["10.128.2.1", "10.131.2.1", "10.130.2.1"]
    assert good["Status"].to_list() == ["200", "200", "302"]
    assert good["timestamp"].null_count() == 0


def test_weblog_kaggle_file_has_218_shell_rows(shared_data: Path) -> None:
    from logsieve.parsing.parser import LogParser

    path = shared_data / "weblog_http" / "webLog_kaggle_shawon10.csv"
    _, stats = LogParser("weblog").parse_files(path)
    assert stats.malformed_lines == 218 and stats.skipped_lines == 1
    _, clean = LogParser("weblog").parse_files(
        shared_data / "weblog_http" / "webLog_zpettry_cleaned.csv"
    )
    assert clean.malformed_lines == 0


@pytest.mark.parametrize("name", ["clf", "combined"])
def test_access_log_fields_must_fit(name: str) -> None:
    tail = ' "-" "curl/8.0"' if name == "combined" else ""
    lines = [
        f'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326{tail}',
        f'::1 - - [10/Oct/2000:13:55:36 -0700] "-" 400 -{tail}',
        f'host.example - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" OK 12{tail}',
        f'127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 big{tail}',
        'chmod: cannot [x] "y" No such',
    ]
    fmt = get_format(name)
    for fast in (False, True):
        got = pl.Series(lines).str.extract_groups(fmt.regex(fast=fast)).struct.unnest()
        assert got["Status"].to_list() == ["200", "400", None, None, None]
