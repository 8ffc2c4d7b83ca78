"""`logsieve parse --values`: each line's values are the tokens its template masks, in
order; `group` carries them into windows with the seconds since the previous line."""

from __future__ import annotations

import polars as pl
from typer.testing import CliRunner

from logsieve.cli.app import app

LINES = [
    "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
    "blk_38865049064139660 terminating",
    "081109 203617 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap "
    "updated: 10.250.10.6:50010 is added to blk_38865049064139660 size 67108864",
    "081109 203618 148 INFO dfs.DataNode$PacketResponder: PacketResponder 2 for block "
    "blk_-6952295868487656571 terminating",
    "081109 203620 143 INFO dfs.DataNode$PacketResponder: Received block "
    "blk_-6952295868487656571 of size 67108864 from /10.251.91.84",
    "081109 203625 148 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block "
    "blk_38865049064139660 terminating",
]


def test_parse_values_are_masked_tokens_and_group_adds_timing(tmp_path):
    log = tmp_path / "hdfs.log"
    log.write_text("\n".join(LINES) + "\n")
    events, windows = tmp_path / "events.parquet", tmp_path / "windows.parquet"
    runner = CliRunner()
    args = ["parse", str(log), "--format", "hdfs", "--values", "-o", str(events), "--quiet"]
    assert runner.invoke(app, args).exit_code == 0
    table = pl.read_parquet(events)
    for row in table.iter_rows(named=True):
        tokens, template = row["content"].split(), row["template"].split()
        expected = [t for t, w in zip(tokens, template, strict=True) if "<*>" in w]
        assert row["values"] == expected and expected
    first = table.row(0, named=True)
    assert first["values"] == ["1", "blk_38865049064139660"]
    assert table["values"][4].to_list() == ["0", "blk_38865049064139660"]
    # without --values there is no values column
    plain = tmp_path / "plain.parquet"
    assert runner.invoke(app, ["parse", str(log), "--format", "hdfs", "-o", str(plain),
                               "--quiet"]).exit_code == 0  # fmt: skip
    assert "values" not in pl.read_parquet(plain).columns

    assert runner.invoke(app, ["group", str(events), "-o", str(windows), "--quiet"]).exit_code == 0
    by_id = {r["window_id"]: r for r in pl.read_parquet(windows).iter_rows(named=True)}
    block = by_id["blk_38865049064139660"]
    assert block["elapsed"] == [0.0, 2.0, 8.0]  # 20:36:15, :17, :25
    assert block["values"][0] == ["1", "blk_38865049064139660"]
    assert block["values"][2] == ["0", "blk_38865049064139660"]
    assert by_id["blk_-6952295868487656571"]["elapsed"] == [0.0, 2.0]
