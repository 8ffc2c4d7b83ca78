"""The file -> events pipeline: schema, stable ids, state, match-only, bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from logsieve.errors import InputError, LogsieveError
from logsieve.parsing.masks import Mask
from logsieve.parsing.parser import LogParser, parse_file, template_counts

DATA = Path(__file__).resolve().parents[2] / "data"
TINY = DATA / "tiny_hdfs.log"
LATER = DATA / "tiny_hdfs_later.log"


def test_events_schema_and_line_numbers() -> None:
    events, stats = LogParser("hdfs").parse_files(TINY)
    assert events is not None
    assert events.columns == [
        "line_id", "timestamp", "Date", "Time", "Pid", "Level", "Component",
        "content", "event_id", "template", "label", "source",
    ]
    assert events.schema["line_id"] == pl.Int64
    assert events.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert events.schema["label"] == pl.Int8
    # line 4 is blank: skipped, but numbering follows the file
    assert events["line_id"].to_list() == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert stats.lines == 10 and stats.blank_lines == 1
    assert str(events["timestamp"][0]) == "2008-11-09 20:35:18+00:00"


def test_same_message_shape_same_event() -> None:
    events, _ = LogParser("hdfs").parse_files(TINY)
    by_line = dict(zip(events["line_id"].to_list(), events["event_id"].to_list(), strict=True))
    assert by_line[1] == by_line[3]  # two "Receiving block" lines
    assert by_line[5] == by_line[8]  # two "PacketResponder ... terminating" lines
    assert by_line[1] != by_line[5]
    tpl = dict(zip(events["event_id"].to_list(), events["template"].to_list(), strict=True))
    assert tpl[by_line[5]] == "PacketResponder <*> for block <*> terminating"


def test_malformed_line_is_kept_and_reported() -> None:
    events, stats = LogParser("hdfs").parse_files(TINY)
    row = events.filter(pl.col("line_id") == 6).row(0, named=True)
    assert row["content"] == "this line does not follow the HDFS layout at all"
    assert row["Date"] is None and row["timestamp"] is None
    assert stats.malformed_lines == 1 and stats.malformed_examples == [6]


def test_gzip_input_gives_identical_events(tmp_path: Path) -> None:
    gz = tmp_path / "tiny.log.gz"
    gz.write_bytes(gzip.compress(TINY.read_bytes()))
    a, _ = LogParser("hdfs").parse_files(TINY)
    b, _ = LogParser("hdfs").parse_files(gz)
    assert a.drop("source").equals(b.drop("source"))


def test_output_parquet_equals_in_memory_result(tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    mem, _ = LogParser("hdfs").parse_files(TINY)
    res, _ = LogParser("hdfs").parse_files(TINY, output=out, chunk_bytes=200)  # many chunks
    assert res is None
    assert pl.read_parquet(out).equals(mem)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_state_round_trip_keeps_ids(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first, _, _ = parse_file(TINY, format="hdfs", state=state)
    saved = json.loads(state.read_text())
    assert saved["state_version"] == 1 and saved["masks"]
    later, stats, _ = parse_file(LATER, format="hdfs", state=state)
    ids_first = dict(zip(first["template"].to_list(), first["event_id"].to_list(), strict=True))
    row = later.row(0, named=True)
    assert row["event_id"] == ids_first["PacketResponder <*> for block <*> terminating"]
    assert stats.new_templates == 1  # the "Unexpected error" message is new
    assert later["event_id"][1] not in ids_first.values()


def test_match_only_never_creates_templates(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    parse_file(TINY, format="hdfs", state=state)
    before = state.read_text()
    events, stats, _ = parse_file(LATER, format="hdfs", state=state, match_only=True)
    assert events["event_id"].to_list()[1] == "E0"
    assert events["template"].to_list()[1] == "<unseen>"
    assert events["event_id"].to_list()[0] != "E0"
    assert stats.new_templates == 0 and stats.unseen_lines == 1
    assert state.read_text() == before


def test_match_only_without_state_is_an_error() -> None:
    with pytest.raises(LogsieveError, match="state"):
        parse_file(TINY, format="hdfs", match_only=True)


def test_damaged_state_names_the_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text('{"state_version": 1, "masks": [], "drain": ')
    with pytest.raises(InputError, match="state.json"):
        LogParser.load_state(state)


def test_extra_mask_applies_first() -> None:
    p = LogParser("hdfs", extra_masks=[Mask("node", r"datanode\(s\)")])
    events, _ = p.parse_files(TINY)
    assert any("<*>" in t and "datanode(s)" not in t for t in events["template"] if "replicate" in t)


def test_template_counts() -> None:
    events, _ = LogParser("hdfs").parse_files(TINY)
    counts = template_counts(events)
    assert counts["count"].sum() == events.height
    assert counts.columns == ["event_id", "template", "count"]


def test_raw_mode_without_format() -> None:
    events, _ = LogParser(None).parse_files(TINY)
    assert events["content"][0].startswith("081109 203518 143 INFO")
    assert events["timestamp"].null_count() == events.height


def test_missing_and_directory_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        LogParser("hdfs").parse_files(tmp_path / "nope.log")
    with pytest.raises(InputError, match="directory"):
        LogParser("hdfs").parse_files(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("")
    events, stats = LogParser("hdfs").parse_files(empty)
    assert events.height == 0 and stats.lines == 0
    assert "event_id" in events.columns


def test_bgl_labels_from_the_line(shared_data: Path) -> None:
    events, _ = LogParser("bgl").parse_files(shared_data / "loghub_2k" / "BGL" / "BGL_2k.log")
    assert int(events["label"].sum()) == 143  # alert lines in BGL_2k (SOURCES.md)
    assert events["label"].null_count() == 0


def test_hdfs_2k_grouping_accuracy(shared_data: Path) -> None:
    from logsieve.parsing.accuracy import evaluate, load_truth

    folder = shared_data / "loghub_2k" / "HDFS"
    events, _ = LogParser("hdfs").parse_files(folder / "HDFS_2k.log")
    scores = evaluate(load_truth(folder / "HDFS_2k.log_structured.csv"), events)
    assert scores["GA"] >= 0.99


EDGE_LINES = [
    "081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_1 src: /10.250.19.102:54106",
    "081109  203518 143 INFO dfs.X: two spaces after the date",
    "081109 203518\t143 INFO dfs.X: a tab between fields",
    " 081109 203518 143 INFO dfs.X: leading space",
    "081109 203518 143 INFO dfs.X:  content starting with a space",
    "081109 203518 143 INFO  dfs.X: component after two spaces",
    "081109 203518 143 INFO dfs.X:no space after the colon",
    "081109 203518 143 INFO dfs.X: colon: inside: content",
    "081109 203518 143 INFO a b: component with a space",
    "081109 203518 143 INFO : empty component",
    "081109 203518 143 INFO dfs.X: ",
    "081109 203518 143 INFO dfs.X:",
    "just garbage",
    "",
]


def _structure_both_ways(fmt: str, lines: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[pl.DataFrame, pl.DataFrame]:
    import logsieve.parsing.parser as parser_mod

    frame = pl.DataFrame({"line": lines}).with_row_index("line_id", offset=1).with_columns(pl.col("line_id").cast(pl.Int64))
    fast = LogParser(fmt)._structure(frame)
    with monkeypatch.context() as m:
        m.setattr(parser_mod, "split_plan", lambda _fmt: None)
        slow = LogParser(fmt)._structure(frame)
    return fast, slow


def test_split_plan_matches_regex_on_edge_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _structure_both_ways("hdfs", EDGE_LINES, monkeypatch)
    assert fast.equals(slow)


@pytest.mark.parametrize("system", ["HDFS", "Hadoop", "Spark", "Zookeeper", "BGL", "HPC", "Windows", "Android", "HealthApp", "OpenSSH", "OpenStack"])
def test_split_plan_matches_regex_on_loghub(shared_data: Path, system: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = (shared_data / "loghub_2k" / system / f"{system}_2k.log").read_text(encoding="utf-8").splitlines()
    fast, slow = _structure_both_ways(system.lower(), lines, monkeypatch)
    assert fast.equals(slow)


def test_weblog_csv_header_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "web.csv"
    log.write_text(
        "IP,Time,URL,Staus\n"
        "10.128.2.1,[29/Nov/2017:06:58:55,GET /login.php HTTP/1.1,200\n"
        '"10.128.2.1","[29/Nov/2017:06:59:02","POST /process.php HTTP/1.1","302"\n'
        "10.131.2.1,[29/Nov/2017:06:59:03,GET /login.php HTTP/1.1,200\n"
    )
    events, stats = LogParser("weblog").parse_files(log)
    assert stats.skipped_lines == 1 and events.height == 3
    assert events["IP"].to_list() == ["10.128.2.1", "10.128.2.1", "10.131.2.1"]
    assert events["Status"].to_list() == ["200", "302", "200"]
    assert events["event_id"][0] == events["event_id"][2]
    assert str(events["timestamp"][1]) == "2017-11-29 06:59:02+00:00"
