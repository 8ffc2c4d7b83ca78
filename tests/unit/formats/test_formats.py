"""Formats: regex construction, fast/general agreement, timestamps, custom strings."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from logsieve.errors import LogsieveError
from logsieve.formats import get_format, list_formats

LOGHUB_SYSTEMS = [
    "Android", "Apache", "BGL", "HDFS", "HPC", "Hadoop", "HealthApp", "Linux",
    "Mac", "OpenSSH", "OpenStack", "Proxifier", "Spark", "Thunderbird", "Windows", "Zookeeper",
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
    m = pl.Series(["2024-01-02 10:00:00 INFO db.pool: opened 3 connections"]).str.extract_groups(fmt.regex())
    assert m.struct.field("Content")[0] == "opened 3 connections"


@pytest.mark.parametrize("bad", ["no fields here", "<Date> <Time>", "<Content> <Content>"])
def test_bad_custom_formats(bad: str) -> None:
    with pytest.raises(LogsieveError):
        get_format(bad) if "<" in bad else get_format(bad)


def test_optional_separator_is_not_made_greedy() -> None:
    # "?" after a separator makes it optional; the fast form must not swallow later fields.
    fmt = get_format("weblog")
    line = '10.128.2.1,[29/Nov/2017:06:58:55,GET /login.php HTTP/1.1,200'
    for fast in (False, True):
        got = pl.Series([line]).str.extract_groups(fmt.regex(fast=fast)).struct.unnest().row(0, named=True)
        assert got == {"IP": "10.128.2.1", "Time": "[29/Nov/2017:06:58:55", "Content": "GET /login.php HTTP/1.1", "Status": "200"}


@pytest.mark.parametrize("system", LOGHUB_SYSTEMS)
def test_fields_match_loghub_structured_files(shared_data: Path, system: str) -> None:
    """Splitting the raw 2k sample reproduces the header fields of Loghub's structured file."""
    folder = shared_data / "loghub_2k_corrected" / system
    fmt = get_format(system.lower())
    lines = pl.Series((folder / f"{system}_2k.log").read_text(encoding="utf-8").splitlines())
    truth = pl.read_csv(
        folder / f"{system}_2k.log_structured_corrected.csv", infer_schema=False
    )
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
                    s = s.str.strip_chars().fill_null("").str.strip_chars_start("0").str.strip_suffix(".0")
                    return s.replace("NULL", "")

                ours, theirs = norm(got[col]), norm(truth[col])
                agree = (ours == theirs).mean()
                assert agree >= 0.99, f"{system}.{col}: {agree:.3f} of lines agree"


@pytest.mark.parametrize("system", [s for s in LOGHUB_SYSTEMS])
def test_timestamps_parse_on_loghub(shared_data: Path, system: str) -> None:
    fmt = get_format(system.lower())
    lines = pl.Series((shared_data / "loghub_2k_corrected" / system / f"{system}_2k.log").read_text(encoding="utf-8").splitlines())
    fields = lines.str.extract_groups(fmt.regex()).struct.unnest()
    assert fmt.timestamp is not None
    ts = fields.select(fmt.timestamp.expr().alias("ts"))["ts"]
    assert ts.dtype == pl.Datetime("us", "UTC")
    assert ts.null_count() <= 0.01 * len(ts), f"{system}: {ts.null_count()} timestamps did not parse"


def test_header_only_line_has_empty_content() -> None:
    """BGL has lines that stop after the Level field; they are not malformed."""
    fmt = get_format("bgl")
    line = "- 1120866516 2005.07.08 R12-M0-N8-C:J12-U01 2005-07-08-16.48.36.430166 R12-M0-N8-C:J12-U01 RAS KERNEL FATAL"
    for fast in (False, True):
        got = pl.Series([line]).str.extract_groups(fmt.regex(fast=fast)).struct.unnest().row(0, named=True)
        assert got["Level"] == "FATAL" and got["Content"] == ""
