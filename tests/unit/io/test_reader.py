"""The chunked reader: line numbering, CRLF, gzip, invalid UTF-8, truncated gzip, huge lines."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import threading
import tracemalloc
import zlib
from pathlib import Path

import pytest

from logsieve.errors import InputError
from logsieve.io.reader import DEFAULT_MAX_LINE_BYTES, ReadStats, iter_line_chunks


def _read(path: Path, chunk_bytes: int = 1 << 20) -> tuple[list[str], list[int], ReadStats]:
    stats = ReadStats()
    lines, firsts = [], []
    for chunk in iter_line_chunks(path, chunk_bytes=chunk_bytes, stats=stats):
        firsts.append(chunk.first_line)
        lines.extend(chunk.lines.to_list())
    return lines, firsts, stats


def test_plain_and_gzip_give_the_same_lines(tmp_path: Path) -> None:
    text = "".join(f"line {i}\r\n" for i in range(1000))
    plain = tmp_path / "a.log"
    plain.write_text(text, newline="")
    gz = tmp_path / "a.log.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    for path in (plain, gz):
        lines, _, stats = _read(path, chunk_bytes=777)
        assert lines == [f"line {i}" for i in range(1000)]
        assert stats.lines == 1000


def test_chunks_are_numbered_consecutively(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text("".join(f"{i}\n" for i in range(1, 501)))
    stats = ReadStats()
    for chunk in iter_line_chunks(path, chunk_bytes=100, stats=stats):
        assert chunk.lines.cast(int).to_list()[0] == chunk.first_line
    assert stats.lines == 500


def test_last_line_without_newline_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text("a\nb")
    assert _read(path)[0] == ["a", "b"]
    empty = tmp_path / "empty.log"
    empty.write_text("")
    lines, _, stats = _read(empty)
    assert lines == [] and stats.lines == 0


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(b"ok\nbad \xff\xfe here\nok again\n\xc3\n")
    lines, _, stats = _read(path)
    assert lines[0] == "ok" and lines[2] == "ok again"
    assert "\ufffd" in lines[1]
    assert stats.invalid_utf8_lines == 2
    assert stats.invalid_utf8_examples == [2, 4]


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.log.gz"
    payload = "".join(f"line {i} {i * 7919 % 104729}\n" for i in range(20_000)).encode()
    whole = gzip.compress(payload)
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="cut.log.gz.*truncated or corrupt gzip"):
        _read(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        _read(tmp_path / "nope.log")


def test_one_megabyte_line_longer_than_a_chunk(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    big = "y" * 1_048_576
    path.write_text(f"short\n{big}\nend\n")
    lines, _, _ = _read(path, chunk_bytes=4096)
    assert lines == ["short", big, "end"]


# --- non-seekable inputs, read errors, the line cap, truncated gzip ------------------------


def _feed_fifo(path: Path, payload: bytes) -> threading.Thread:
    def write() -> None:
        with open(path, "wb") as fh:
            fh.write(payload)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("compress", [False, True])
def test_reads_a_fifo_as_a_stream(tmp_path: Path, compress: bool) -> None:
    text = "".join(f"line {i}\n" for i in range(5000)).encode()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    thread = _feed_fifo(fifo, gzip.compress(text) if compress else text)
    lines, _, stats = _read(fifo, chunk_bytes=1000)
    thread.join(5)
    assert lines == [f"line {i}" for i in range(5000)]
    assert stats.lines == 5000 and stats.bytes == len(text)


def test_dash_means_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    text = b"a\nb\r\nc\n"
    stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(gzip.compress(text))))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert _read(Path("-"))[0] == ["a", "b", "c"]
    assert not stdin.closed  # standard input is not ours to close


def test_dev_stdin_fed_by_a_pipe(tmp_path: Path) -> None:
    """`zcat x.gz | logsieve parse /dev/stdin`: the reader must not seek."""
    payload = gzip.compress(b"".join(b"%d\n" % i for i in range(1000)))
    code = (
        "import sys; from logsieve.io.reader import iter_line_chunks; "
        "print(sum(len(c.lines) for c in iter_line_chunks(sys.argv[1], chunk_bytes=999)))"
    )
    for name in ("/dev/stdin", "-"):
        out = subprocess.run(
            [sys.executable, "-c", code, name], input=payload, capture_output=True, check=True
        )
        assert out.stdout.strip() == b"1000"


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs /proc/self/mem")
def test_read_error_is_one_line_input_error() -> None:
    with pytest.raises(InputError, match=r"^/proc/self/mem: read error") as info:
        _read(Path("/proc/self/mem"))
    assert "\n" not in str(info.value)


def test_long_lines_are_truncated_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    # 'é' is two bytes: the cut must not split it; line 4 crosses chunk boundaries.
    path.write_bytes(b"ok\n" + ("é" * 40).encode() + b"\nshort\n" + b"z" * 5000 + b"\nend\n")
    stats = ReadStats()
    got: list[str] = []
    for chunk in iter_line_chunks(path, chunk_bytes=64, stats=stats, max_line_bytes=11):
        assert chunk.lines.len() >= 1
        got.extend(chunk.lines.to_list())
    assert got == ["ok", "é" * 5, "short", "z" * 11, "end"]
    assert stats.truncated_lines == 2 and stats.truncated_examples == [2, 4]
    assert stats.invalid_utf8_lines == 0 and stats.lines == 5


def test_line_cap_default_is_one_mebibyte() -> None:
    assert DEFAULT_MAX_LINE_BYTES == 1024 * 1024


def test_huge_line_in_small_gzip_keeps_memory_bounded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.log.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(b"first\n")
        for _ in range(40):
            fh.write(b"x" * 1_000_000)  # one 40 MB line
        fh.write(b"\nlast\n")
    stats = ReadStats()
    tracemalloc.start()
    try:
        lengths = [
            len(x)
            for c in iter_line_chunks(path, chunk_bytes=1 << 20, stats=stats, max_line_bytes=1 << 20)
            for x in c.lines
        ]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lengths == [5, 1 << 20, 4]
    assert stats.truncated_lines == 1 and stats.truncated_examples == [2]
    assert peak < 12 * (1 << 20), f"peak {peak / 2**20:.1f} MiB"


def test_endless_line_from_dev_zero_is_cut() -> None:
    chunks = iter_line_chunks("/dev/zero", chunk_bytes=1 << 16, max_line_bytes=1000)
    first = next(chunks)
    chunks.close()
    assert first.first_line == 1 and first.lines.to_list() == ["\0" * 1000]


def test_truncated_gzip_names_the_last_intact_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.log.gz"
    payload = "".join(f"line {i} {i * 7919 % 104729}\n" for i in range(100_000)).encode()
    whole = gzip.compress(payload)
    cut = whole[: len(whole) // 2]
    path.write_bytes(cut)
    intact = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n")
    assert 1 < intact < 100_000
    got: list[str] = []
    with pytest.raises(InputError) as info:
        for chunk in iter_line_chunks(path, chunk_bytes=1 << 20, first_line=11):
            got.extend(chunk.lines.to_list())
    last = intact + 10
    assert info.value.line == last
    assert f"after line {last}, the last intact line" in str(info.value)
    assert "\n" not in str(info.value)
    assert len(got) == intact and got[-1] == payload.split(b"\n")[intact - 1].decode()


def test_dash_without_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(InputError, match="no standard input"):
        _read(Path("-"))
