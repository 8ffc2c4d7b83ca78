"""The chunked reader: line numbering, CRLF, gzip, invalid UTF-8, truncated gzip, huge lines."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from logsieve.errors import InputError
from logsieve.io.reader import ReadStats, iter_line_chunks


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
