"""Read raw log files, plain or gzip, in bounded chunks of lines.

Each chunk is a Polars Series of lines built by splitting one large decoded string in Rust,
so no Python object is made per line. Bytes that are not valid UTF-8 are replaced (U+FFFD)
and the lines holding them are counted. A truncated gzip stream or an unreadable file raises
:class:`~logsieve.errors.InputError` naming the file.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

from logsieve.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024
MAX_REPORTED = 10  # line numbers kept for each kind of problem


@dataclass
class ReadStats:
    """What the reader saw: counts plus the first few offending line numbers."""

    lines: int = 0
    bytes: int = 0  # decompressed bytes read
    source_bytes: int = 0  # position in the file itself (compressed bytes for gzip)
    invalid_utf8_lines: int = 0
    invalid_utf8_examples: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class LineChunk:
    """A block of consecutive lines; ``first_line`` is the 1-based number of the first one."""

    lines: pl.Series
    first_line: int


def _open(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """(stream of decompressed bytes, the underlying file) for ``path``."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise InputError(path, f"cannot open: {exc.strerror or exc}") from exc
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[return-value]
    return raw, raw


def iter_line_chunks(
    path: str | Path,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    first_line: int = 1,
    stats: ReadStats | None = None,
) -> Iterator[LineChunk]:
    """Yield the lines of ``path`` in chunks of about ``chunk_bytes`` decompressed bytes.

    Line endings (``\\n`` or ``\\r\\n``) are removed. Gzip is detected by its magic bytes,
    whatever the file is called.
    """
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    line_no = first_line
    carry = b""
    fh, raw = _open(path)
    with fh, raw:
        while True:
            try:
                block = fh.read(chunk_bytes)
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                raise InputError(path, f"truncated or corrupt gzip data ({exc})", line=line_no) from exc
            except OSError as exc:
                raise InputError(path, f"read error: {exc}", line=line_no) from exc
            if not block:
                break
            stats.bytes += len(block)
            stats.source_bytes = raw.tell()
            data = carry + block
            cut = data.rfind(b"\n")
            if cut < 0:  # one line longer than a chunk: keep reading
                carry = data
                continue
            carry = data[cut + 1 :]
            chunk = _decode_lines(path, data[:cut], line_no, stats)
            line_no += len(chunk)
            yield LineChunk(chunk, line_no - len(chunk))
    if carry:
        chunk = _decode_lines(path, carry, line_no, stats)
        yield LineChunk(chunk, line_no)
        line_no += len(chunk)
    stats.lines = line_no - first_line


def _decode_lines(path: Path, data: bytes, first_line: int, stats: ReadStats) -> pl.Series:
    """Lines of ``data`` (no final newline) as a string Series, built without copying per line.

    Newline positions found with NumPy become the offsets of an Arrow string array over the
    very same bytes; each line then still ends in its newline, which is stripped in Rust.
    """
    bad = False
    try:
        data.decode("utf-8")  # validation only: Arrow needs valid UTF-8
    except UnicodeDecodeError:
        data = data.decode("utf-8", errors="replace").encode("utf-8")
        bad = True
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
    offsets = np.empty(len(ends) + 2, dtype=np.int64)
    offsets[0] = 0
    offsets[1:-1] = ends
    offsets[-1] = len(data)
    arr = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
    lines = pl.Series("line", arr).str.strip_suffix("\n").str.strip_suffix("\r")
    if bad:
        has_bad = lines.str.contains("\ufffd", literal=True)
        n_bad = int(has_bad.sum())
        stats.invalid_utf8_lines += n_bad
        if len(stats.invalid_utf8_examples) < MAX_REPORTED:
            idx = has_bad.arg_true().head(MAX_REPORTED - len(stats.invalid_utf8_examples))
            stats.invalid_utf8_examples.extend(int(i) + first_line for i in idx)
        log.warning("%s: %d line(s) with invalid UTF-8 near line %d; bytes replaced", path, n_bad, first_line)
    return lines
