"""Read raw log files, plain or gzip, in bounded chunks of lines.

Each chunk is a Polars Series of lines built by splitting one large decoded string in Rust,
so no Python object is made per line. Bytes that are not valid UTF-8 are replaced (U+FFFD)
and the lines holding them are counted.

Any readable byte stream works, seekable or not: a regular file, a FIFO, ``/dev/stdin`` fed
by a pipe, or ``"-"`` for standard input. Gzip is recognised by its magic bytes, which are
peeked at without seeking.

A line longer than ``max_line_bytes`` (:data:`DEFAULT_MAX_LINE_BYTES`, 1 MiB, by default)
is cut to that many bytes (at a character boundary) and counted in
:attr:`ReadStats.truncated_lines`; the rest of it is skipped without being held in memory,
so even a line that never ends (``/dev/zero``) keeps memory bounded.

A truncated or corrupt gzip stream, or a read error, raises
:class:`~logsieve.errors.InputError` naming the file; for gzip, the line number given is the
last intact line (the lines before it have been yielded).
"""

from __future__ import annotations

import gzip
import logging
import queue
import sys
import threading
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa

from logsieve.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
"""Longest line kept whole (bytes, line ending excluded); longer lines are truncated."""
MAX_REPORTED = 10  # line numbers kept for each kind of problem
STDIN = "-"
"""The path that means standard input."""
STDIN_NAME = "<stdin>"


@dataclass
class ReadStats:
    """What the reader saw: counts plus the first few offending line numbers."""

    lines: int = 0
    bytes: int = 0  # decompressed bytes read
    source_bytes: int = 0  # position in the file itself (compressed bytes for gzip)
    invalid_utf8_lines: int = 0
    invalid_utf8_examples: list[int] = field(default_factory=list)
    truncated_lines: int = 0  # lines cut to max_line_bytes
    truncated_examples: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class LineChunk:
    """A block of consecutive lines; ``first_line`` is the 1-based number of the first one."""

    lines: pl.Series
    first_line: int


def is_stdin(path: str | Path) -> bool:
    """Whether ``path`` is ``"-"``, the name for standard input."""
    return str(path) == STDIN


def display_name(path: str | Path) -> str:
    """How a path is named in messages and in the ``source`` column (``<stdin>`` for ``-``)."""
    return STDIN_NAME if is_stdin(path) else Path(path).name


class _Stream(Protocol):
    def read1(self, size: int = -1, /) -> bytes: ...


class _Counting:
    """A byte stream that counts what was read from it (``tell()`` fails on pipes)."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.count = 0
        self.name = getattr(raw, "name", "")

    def read(self, size: int = -1, /) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data

    def read1(self, size: int = -1, /) -> bytes:
        read1 = getattr(self.raw, "read1", self.raw.read)
        data: bytes = read1(size)
        self.count += len(data)
        return data


def _open(path: Path) -> tuple[_Stream, _Counting, bool]:
    """(stream of decompressed bytes, counted underlying stream, whether to close it)."""
    name = STDIN_NAME if is_stdin(path) else path
    if is_stdin(path):
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise InputError(name, "no standard input to read")
        raw: BinaryIO = stdin
        close = False
    else:
        try:
            raw = path.open("rb")
        except OSError as exc:
            raise InputError(name, f"cannot open: {exc.strerror or exc}") from exc
        close = True
    try:
        # peek() looks at the magic bytes without seeking, so pipes work too.
        peek = getattr(raw, "peek", None)
        head = peek(2)[:2] if peek is not None else b""
    except OSError as exc:
        if close:
            raw.close()
        raise InputError(name, f"read error: {exc.strerror or exc}") from exc
    counted = _Counting(raw)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=counted, mode="rb"), counted, close  # type: ignore[call-overload]
    return counted, counted, close


class _Range(_Counting):
    """Bytes ``[start, end)`` of a plain file (a block of ``--engine dask`` parsing)."""

    def __init__(self, raw: BinaryIO, start: int, end: int):
        super().__init__(raw)
        raw.seek(start)
        self.left = end - start

    def read(self, size: int = -1, /) -> bytes:
        return self.read1(size)

    def read1(self, size: int = -1, /) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = super().read1(size) if size > 0 else b""
        self.left -= len(data)
        return data


def _read_block(fh: _Stream, n: int, pieces: list[bytes]) -> None:
    """Append up to ``n`` bytes from ``fh`` to ``pieces`` (fewer at end of stream).

    ``read1`` does at most one underlying read per call, so when decompression fails,
    everything decompressed before the failure is already in ``pieces``.
    """
    got = 0
    while got < n:
        piece = fh.read1(n - got)
        if not piece:
            return
        pieces.append(piece)
        got += len(piece)


def _char_start(data: bytes | memoryview, cut: int, low: int = 0) -> int:
    """``cut`` moved back (not below ``low``) to the start of a UTF-8 character."""
    low = max(cut - 3, low)
    while cut > low and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


T = TypeVar("T")


def prefetch(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """Yield ``items`` while a background thread already reads the next ``depth`` of them.

    Reading and decoding a chunk (file reads, NumPy, UTF-8 checks) mostly runs outside the
    GIL, so it overlaps with the caller's work on the chunk before. An error in the reader
    is raised here, at the item where it happened; closing this generator stops the reader.
    """
    box: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))
            return
        put(("done", None))

    thread = threading.Thread(target=run, name="logsieve-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "done":
                break
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        # the reader notices within 0.1 s, unless it is blocked reading a pipe that stays
        # open (a SIGTERM while waiting for input): it is a daemon thread, left to the exit
        thread.join(timeout=1.0)


def iter_line_chunks(
    path: str | Path,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    first_line: int = 1,
    stats: ReadStats | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    byte_range: tuple[int, int] | None = None,
) -> Generator[LineChunk, None, None]:
    """Yield the lines of ``path`` in chunks of about ``chunk_bytes`` decompressed bytes.

    ``path`` may be ``"-"`` (standard input), a FIFO or any other non-seekable stream.
    Line endings (``\\n`` or ``\\r\\n``) are removed. Gzip is detected by its magic bytes,
    whatever the file is called. Lines longer than ``max_line_bytes`` are truncated and
    counted (see the module docstring). ``byte_range`` reads only the bytes ``[start, end)``
    of a plain (not gzip) file, both at line starts: one block of ``--engine dask`` parsing.
    """
    if max_line_bytes < 1 or chunk_bytes < 1:
        raise ValueError(
            f"chunk_bytes and max_line_bytes must be positive, not {chunk_bytes}, {max_line_bytes}"
        )
    path = Path(path)
    name: str | Path = STDIN_NAME if is_stdin(path) else path
    stats = stats if stats is not None else ReadStats()
    line_no = first_line
    carry = b""  # start of an unfinished line (at most max_line_bytes + 1 bytes)
    skipping = False  # inside the remainder of a truncated line
    if byte_range is None:
        fh, counted, close = _open(path)
    else:
        try:
            raw = path.open("rb")
        except OSError as exc:
            raise InputError(name, f"cannot open: {exc.strerror or exc}") from exc
        counted = _Range(raw, *byte_range)
        fh, close = counted, True
    try:
        while True:
            pieces: list[bytes] = []
            failure: tuple[str, str] | None = None  # (what, detail)
            try:
                _read_block(fh, chunk_bytes, pieces)
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                failure = ("truncated or corrupt gzip data", str(exc))
            except OSError as exc:
                failure = ("read error", str(exc.strerror or exc))
            block = b"".join(pieces)
            del pieces
            stats.bytes += len(block)
            stats.source_bytes = counted.count
            if not block and failure is None:
                break
            if skipping:
                nl = block.find(b"\n")
                if nl < 0:
                    block = b""
                else:
                    block = block[nl + 1 :]
                    skipping = False
            data = carry + block if carry else block
            del block
            cut = data.rfind(b"\n")
            if cut >= 0:
                # A view, not a copy: the Arrow array of the lines is built over these bytes.
                chunk = _decode_lines(name, memoryview(data)[:cut], line_no, stats, max_line_bytes)
                carry = data[cut + 1 :]
                line_no += len(chunk)
                yield LineChunk(chunk, line_no - len(chunk))
            else:
                carry = data
            del data
            if len(carry) > max_line_bytes and not skipping:
                # An unfinished line already over the cap: keep its head, drop the rest.
                head = carry[: _char_start(carry, max_line_bytes)]
                carry = b""
                skipping = True
                _note_truncated(name, stats, [line_no])
                chunk = _decode_lines(name, head, line_no, stats, max_line_bytes)
                line_no += 1
                yield LineChunk(chunk, line_no - 1)
            if failure is not None:
                what, detail = failure
                last = line_no - 1
                if last < first_line:
                    raise InputError(name, f"{what} before the first line ({detail})")
                raise InputError(
                    name, f"{what} after line {last}, the last intact line ({detail})", line=last
                )
    finally:
        if close:
            counted.raw.close()
    if carry:
        chunk = _decode_lines(name, carry, line_no, stats, max_line_bytes)
        yield LineChunk(chunk, line_no)
        line_no += len(chunk)
    stats.lines = line_no - first_line


def _note_truncated(name: str | Path, stats: ReadStats, line_numbers: list[int]) -> None:
    stats.truncated_lines += len(line_numbers)
    room = MAX_REPORTED - len(stats.truncated_examples)
    if room > 0:
        stats.truncated_examples.extend(line_numbers[:room])
    log.warning(
        "%s: %d line(s) longer than the line cap truncated (first: line %d)",
        name,
        len(line_numbers),
        line_numbers[0],
    )


def _truncate_long(
    data: bytes | memoryview,
    ends: np.ndarray,
    first_line: int,
    cap: int,
    name: str | Path,
    stats: ReadStats,
) -> tuple[bytes | memoryview, np.ndarray]:
    """Cut lines longer than ``cap`` bytes; ``ends`` are the offsets after each newline."""
    starts = np.concatenate([[0], ends])
    stops = np.concatenate([ends - 1, [len(data)]])  # line end, newline excluded
    long = np.flatnonzero(stops - starts > cap)
    if not len(long):
        return data, ends
    _note_truncated(name, stats, [int(i) + first_line for i in long])
    parts: list[bytes | memoryview] = []
    pos = 0
    for i in long:
        s, e = int(starts[i]), int(stops[i])
        parts.append(data[pos : _char_start(data, s + cap, low=s)])
        pos = e
    parts.append(data[pos:])
    data = b"".join(parts)
    return data, np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1


def _decode_lines(
    name: str | Path,
    data: bytes | memoryview,
    first_line: int,
    stats: ReadStats,
    max_line_bytes: int,
) -> pl.Series:
    """Lines of ``data`` (no final newline) as a string Series, built without copying per line.

    Newline positions found with NumPy become the offsets of an Arrow string array over the
    very same bytes; each line then still ends in its newline, which is stripped in Rust.
    """
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
    if len(data) > max_line_bytes:
        data, ends = _truncate_long(data, ends, first_line, max_line_bytes, name, stats)
    bad = False
    try:
        str(data, "utf-8")  # validation only: Arrow needs valid UTF-8
    except UnicodeDecodeError:
        data = str(data, "utf-8", errors="replace").encode("utf-8")
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
        bad = True
    offsets = np.empty(len(ends) + 2, dtype=np.int64)
    offsets[0] = 0
    offsets[1:-1] = ends
    offsets[-1] = len(data)
    arr = pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data)
    )
    lines = pl.Series("line", arr).str.strip_suffix("\n").str.strip_suffix("\r")
    if bad:
        has_bad = lines.str.contains("\ufffd", literal=True)
        n_bad = int(has_bad.sum())
        stats.invalid_utf8_lines += n_bad
        if len(stats.invalid_utf8_examples) < MAX_REPORTED:
            idx = has_bad.arg_true().head(MAX_REPORTED - len(stats.invalid_utf8_examples))
            stats.invalid_utf8_examples.extend(int(i) + first_line for i in idx)
        where = f"{name}: {n_bad} line(s) with invalid UTF-8 near line {first_line}"
        log.warning("%s; bytes replaced", where)
    return lines
