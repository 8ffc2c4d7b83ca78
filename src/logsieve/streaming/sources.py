"""Inputs followed like ``tail -F``: files (by fingerprint), gzip files (read once), stdin.

A followed file is known by a fingerprint of its first bytes (SHA-256 of up to
:data:`FINGERPRINT_BYTES`), not by its name, and read by byte offset, whole lines only (a
line without its newline waits for the rest, except at the end of input). At the end of
what is there it checks, in order:

- **shrunk** (the size is below the offset: copy-truncate, or a rewrite): read again from
  the start (``truncations`` is counted);
- **rotated** (the path now names another file, by inode or by fingerprint): the old file is
  finished to its end (an unterminated last line counts as a line), then the file now at
  the path is opened from offset 0 (``rotations`` is counted).

On a restart, a source whose fingerprint no longer matches the file at its path is looked
for among its rotated siblings (``NAME.1``, ``NAME-2024...``, any file in the directory
starting with the name): found, its rest is read first. ``.gz`` files are read once, to the
end (the offset is in decompressed bytes). ``-`` is standard input: it cannot be replayed, so
a restart starts it afresh.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import select
import sys
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from logsieve.errors import InputError
from logsieve.io.reader import STDIN, STDIN_NAME

logger = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024
"""Bytes hashed to identify a file (fewer while the file is shorter)."""

__all__ = ["FINGERPRINT_BYTES", "Source", "SourceState", "fingerprint", "open_source"]


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _prefix(fd: int, n: int) -> bytes:
    return os.pread(fd, n, 0) if n else b""


@dataclass
class SourceState:
    """What a checkpoint keeps per input."""

    path: str
    fingerprint: str = ""
    fp_len: int = 0
    offset: int = 0  # bytes consumed (decompressed for gzip)
    lines: int = 0  # lines consumed
    rotations: int = 0
    truncations: int = 0
    done: bool = False  # a gzip file or stdin read to its end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SourceState:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class Source:
    """One input; :meth:`read` returns whole lines' bytes (newlines included) and advances."""

    kind = "file"

    def __init__(self, state: SourceState) -> None:
        self.state = state
        self.name = state.path

    def read(self, max_bytes: int, final: bool) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass

    @property
    def exhausted(self) -> bool:
        return self.state.done


class FileSource(Source):
    """A regular file, followed across rotation and truncation."""

    def __init__(self, state: SourceState) -> None:
        super().__init__(state)
        self.path = Path(state.path)
        self.fd: int | None = None
        self.ident: tuple[int, int] | None = None
        self._old: list[Path] = []  # rotated files to finish first (found on restart)
        self._open_resume()

    # ------------------------------------------------------------------ opening
    def _open(self, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
        if self.fd is not None:
            os.close(self.fd)
        st = os.fstat(fd)
        self.fd, self.ident = fd, (st.st_dev, st.st_ino)
        return True

    def _matches(self, fd: int) -> bool:
        s = self.state
        return fingerprint(_prefix(fd, s.fp_len)) == s.fingerprint

    def _open_resume(self) -> None:
        s = self.state
        if not self._open(self.path):
            if s.offset == 0:
                return  # not there yet: waited for
            raise InputError(self.path, "no such file")
        assert self.fd is not None
        if s.offset == 0 and not s.fp_len:
            self._note_fingerprint()  # known from the start (a checkpoint at offset 0)
            return
        if self._matches(self.fd):
            return
        for cand in sorted(self.path.parent.glob(self.path.name + "?*")):
            if not cand.is_file():
                continue
            with open(cand, "rb") as fh:
                if fingerprint(fh.read(s.fp_len)) == s.fingerprint:
                    logger.info("%s: resuming in the rotated file %s", self.path, cand)
                    self._old.append(cand)
                    break
        if self._old:
            new_fd = self.fd
            self.fd = None
            self._open(self._old[0])
            self._pending_new_fd = new_fd
            return
        logger.warning("%s: not the file of the checkpoint (rotated away?); reading it anew",
                       self.path)
        self._restart(rotated=True)

    def _restart(self, rotated: bool) -> None:
        s = self.state
        s.offset, s.fingerprint, s.fp_len = 0, "", 0
        if rotated:
            s.rotations += 1
        else:
            s.truncations += 1

    def _note_fingerprint(self) -> None:
        s = self.state
        if s.fp_len < FINGERPRINT_BYTES and self.fd is not None:
            head = _prefix(self.fd, FINGERPRINT_BYTES)
            if len(head) > s.fp_len:
                s.fingerprint, s.fp_len = fingerprint(head), len(head)

    # ------------------------------------------------------------------ reading
    def read(self, max_bytes: int, final: bool) -> bytes:
        if self.fd is None and not self._open(self.path):
            return b""
        assert self.fd is not None
        s = self.state
        finishing = bool(self._old)
        data = os.pread(self.fd, max_bytes, s.offset)
        if data:
            cut = data.rfind(b"\n")
            if cut < 0:
                if len(data) < max_bytes and not (final or finishing or self._moved()):
                    return b""  # an unfinished line: wait for its end
                cut = len(data) - 1  # last line without newline, or a huge line: take it
            data = data[: cut + 1]
            s.offset += len(data)
            if s.fp_len < FINGERPRINT_BYTES:
                self._note_fingerprint()
            return data
        # at the end of what is there
        size = os.fstat(self.fd).st_size
        if size < s.offset:
            logger.warning("%s: shrank below the offset (truncated); reading from the start",
                           self.path)
            self._restart(rotated=False)
            return b""
        if finishing:
            self._old.pop(0)
            fd = getattr(self, "_pending_new_fd", None)
            os.close(self.fd)
            self.fd = None
            if fd is not None and not self._old:
                self.fd = fd
                st = os.fstat(fd)
                self.ident = (st.st_dev, st.st_ino)
            self._restart(rotated=True)
            return b""
        if self._moved():
            logger.info("%s: rotated; following the new file", self.path)
            os.close(self.fd)
            self.fd = None
            self._restart(rotated=True)
            self._open(self.path)
        elif s.fp_len and not self._matches(self.fd):
            logger.warning("%s: rewritten in place; reading from the start", self.path)
            self._restart(rotated=False)
        return b""

    def _moved(self) -> bool:
        """The path names another file than the one open (rotation by rename)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) != self.ident

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    @property
    def exhausted(self) -> bool:
        return False


class GzipSource(Source):
    """A ``.gz`` file: read once, to its end."""

    kind = "gzip"

    def __init__(self, state: SourceState) -> None:
        super().__init__(state)
        try:
            self.fh = gzip.open(state.path, "rb")  # noqa: SIM115 (kept open across reads)
            if state.offset:
                self.fh.seek(state.offset)
        except OSError as exc:
            raise InputError(state.path, f"cannot read: {exc.strerror or exc}") from exc
        self.carry = b""

    def read(self, max_bytes: int, final: bool) -> bytes:
        if self.state.done:
            return b""
        try:
            block = self.fh.read(max_bytes)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(self.state.path, f"truncated or corrupt gzip data ({exc})") from exc
        data = self.carry + block
        if not block:
            self.state.done = True
            self.carry = b""
        else:
            cut = data.rfind(b"\n")
            data, self.carry = data[: cut + 1], data[cut + 1 :]
        self.state.offset += len(data)
        return data

    def close(self) -> None:
        self.fh.close()


class StdinSource(Source):
    """Standard input (not replayable: a restart reads what comes next)."""

    kind = "stdin"

    def __init__(self, state: SourceState) -> None:
        super().__init__(state)
        self.name = STDIN_NAME
        self.fd = sys.stdin.fileno()
        self.carry = b""

    def read(self, max_bytes: int, final: bool) -> bytes:
        if self.state.done:
            return b""
        ready, _, _ = select.select([self.fd], [], [], 0)
        if not ready:
            return b""
        block = os.read(self.fd, max_bytes)
        data = self.carry + block
        if not block:
            self.state.done = True
            self.carry = b""
        else:
            cut = data.rfind(b"\n")
            data, self.carry = data[: cut + 1], data[cut + 1 :]
        self.state.offset += len(data)
        return data


def open_source(state: SourceState) -> Source:
    if state.path == STDIN:
        return StdinSource(state)
    path = Path(state.path)
    if path.is_dir():
        raise InputError(path, "is a directory, not a log file")
    if path.suffix == ".gz":
        if not path.exists():
            raise InputError(path, "no such file")
        return GzipSource(state)
    return FileSource(state)
