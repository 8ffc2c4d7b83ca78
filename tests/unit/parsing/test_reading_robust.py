"""parse_files on awkward inputs and outputs: pipes, standard input, endless lines, read
errors, outputs that must not be replaced, and no temporary files left behind."""

from __future__ import annotations

import gzip
import io
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from logsieve.errors import InputError
from logsieve.parsing.parser import LogParser

LINES = [
    f"081109 2036{i % 60:02d} 148 INFO dfs.DataNode$PacketResponder: PacketResponder {i % 3} "
    f"for block blk_{1000 + i % 7} terminating"
    for i in range(300)
]
TEXT = ("\n".join(LINES) + "\n").encode()


def _parse(path: str | Path, **kw: object) -> tuple[pl.DataFrame, object]:
    table, stats = LogParser("hdfs").parse_files(path, **kw)  # type: ignore[arg-type]
    assert table is not None
    return table, stats


def _same_events(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.drop("source").equals(b.drop("source"))


def test_fifo_input_parses_like_a_file(tmp_path: Path) -> None:
    plain = tmp_path / "a.log"
    plain.write_bytes(TEXT)
    expected, _ = _parse(plain)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as fh:
            fh.write(gzip.compress(TEXT))

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    got, stats = _parse(fifo, chunk_bytes=4096)
    thread.join(5)
    _same_events(got, expected)
    assert stats.lines == 300  # type: ignore[attr-defined]


def test_dash_reads_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "a.log"
    plain.write_bytes(TEXT)
    expected, _ = _parse(plain)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(TEXT))))
    out = tmp_path / "out" / "events.parquet"  # parent made on the way
    table, stats = LogParser("hdfs").parse_files("-", output=out)
    assert table is None and stats.lines == 300
    got = pl.read_parquet(out)
    _same_events(got.drop("template"), expected.drop("template"))
    assert got["source"].unique().to_list() == ["<stdin>"]


def test_long_lines_are_truncated_and_counted_in_parse_stats(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(TEXT + LINES[0].encode() + b" x" * 5000 + b"\n" + TEXT)
    table, stats = _parse(path, chunk_bytes=2048, max_line_bytes=1000)
    assert stats.truncated_lines == 1 and stats.truncated_examples == [301]  # type: ignore[attr-defined]
    assert stats.to_dict()["truncated_lines"] == 1  # type: ignore[attr-defined]
    assert table.height == 601
    assert len(table.filter(pl.col("line_id") == 301)["content"][0]) < 1000


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs /proc/self/mem")
def test_read_error_is_an_input_error() -> None:
    with pytest.raises(InputError, match="^/proc/self/mem: read error"):
        _parse("/proc/self/mem")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_refuses_fifo_and_directory_outputs_before_reading(tmp_path: Path) -> None:
    src = tmp_path / "a.log"
    src.write_bytes(TEXT)
    fifo = tmp_path / "out.parquet"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        LogParser("hdfs").parse_files(src, output=fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    with pytest.raises(InputError, match="directory"):
        LogParser("hdfs").parse_files(src, output=tmp_path)
    assert _leftovers(tmp_path) == []


def test_refuses_output_equal_to_an_input(tmp_path: Path) -> None:
    src = tmp_path / "a.log"
    src.write_bytes(TEXT)
    with pytest.raises(InputError, match="same file as input"):
        LogParser("hdfs").parse_files([src], output=tmp_path / "." / "a.log")
    assert src.read_bytes() == TEXT


def test_failed_parse_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "cut.log.gz"
    whole = gzip.compress(TEXT * 50)
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="last intact line"):
        LogParser("hdfs").parse_files(path, output=tmp_path / "events.parquet", chunk_bytes=4096)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.log.gz"]


_PARSE_SCRIPT = """
import sys
from logsieve.parsing.parser import LogParser
LogParser("hdfs").parse_files(sys.argv[1], output=sys.argv[2], chunk_bytes=4096)
"""


def test_sigterm_during_parse_leaves_no_temporary_files(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    out_dir = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", _PARSE_SCRIPT, str(fifo), str(out_dir / "events.parquet")],
        stderr=subprocess.PIPE,
    )
    with open(fifo, "wb") as writer:  # keep the pipe open: the parse waits for more
        writer.write(TEXT * 20)
        writer.flush()
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".logsieve-parse-") for p in _listing(out_dir)):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143, proc.stderr.read() if proc.stderr else ""
    assert _listing(out_dir) == []


def _listing(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []
