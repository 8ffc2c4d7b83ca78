"""Atomic output: write to a temporary file beside the target, then rename.

A crash, Ctrl-C or SIGTERM in the middle of a write never leaves a half-written result
under the final name, and the temporary file is removed.

Only regular files are ever replaced: an output path that names a directory, a FIFO, a
device (``/dev/null``, ``/dev/full``) or a socket is refused with
:class:`~logsieve.errors.InputError` before anything is written (renaming over
``/dev/null`` would replace the device node itself). Missing parent directories are created.

Temporary names are recognisably logsieve's own and carry the writing process id:

* files: ``.<target name>.logsieve-<pid>-<random><suffix>.tmp``
* directories: ``.logsieve-<kind>-<pid>-<random>``

so that :func:`sweep_stale_temp` can remove the leftovers of a process that was killed
outright (SIGKILL, power loss) without touching anything a live process is using.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import IO, Any

from logsieve.errors import InputError

log = logging.getLogger(__name__)

_MARK = "logsieve"
_NAME_KEEP = 80  # characters of the target's name kept in a temporary file's name
_TEMP_FILE = re.compile(rf"^\..*\.{_MARK}-(\d+)-[^.]+(?:\..*)?\.tmp$")
_TEMP_DIR = re.compile(rf"^\.{_MARK}-[a-z]+-(\d+)-.+$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_output_path(path: str | Path) -> Path:
    """Refuse an output path that exists and is not a regular file (one-line InputError).

    A symbolic link is judged by what it points to. Returns the path.
    """
    target = Path(path)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise InputError(target, f"cannot use as output: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        raise InputError(
            target, f"output path is {_kind(mode)}; only a regular file can be written or replaced"
        )
    return target


def prepare_output(path: str | Path) -> Path:
    """:func:`check_output_path`, then create the missing parent directories."""
    target = check_output_path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            target.parent, f"cannot create the output directory: {exc.strerror or exc}"
        ) from exc
    return target


def check_output_not_input(output: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an output that is one of the inputs: the same file (inode) or the same path.

    Writing the result would replace the input (or, without atomic writes, truncate it
    before it is read). ``"-"`` (standard input) never collides.
    """
    out = Path(output)
    try:
        out_stat: os.stat_result | None = out.stat()
    except OSError:
        out_stat = None
    out_resolved = out.resolve()
    for item in inputs:
        if str(item) == "-":
            continue
        src = Path(item)
        same = src.resolve() == out_resolved
        if not same and out_stat is not None:
            try:
                src_stat = src.stat()
            except OSError:
                continue
            same = (src_stat.st_dev, src_stat.st_ino) == (out_stat.st_dev, out_stat.st_ino)
        if same:
            raise InputError(
                out, f"output is the same file as input {str(src)!r}; write the output elsewhere"
            )


# ---------------------------------------------------------------------------------------
# SIGTERM: turned into an exception while temporary files exist, so cleanup code runs.


class Terminated(SystemExit):
    """Raised in the main thread on SIGTERM while logsieve holds temporary files."""


_sigterm_lock = threading.Lock()
_sigterm_depth = 0
_sigterm_previous: Any = None


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(128 + signum)


@contextlib.contextmanager
def cleanup_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (exit status 143) instead of
    killing the process, so ``finally``/``except`` blocks remove temporary files.

    Installed only in the main thread and only over the default handler; an application's
    own SIGTERM handler is left alone. Nested blocks share one installation.
    """
    global _sigterm_depth, _sigterm_previous
    installed = False
    if threading.current_thread() is threading.main_thread():
        with _sigterm_lock:
            if _sigterm_depth == 0:
                current = signal.getsignal(signal.SIGTERM)
                if current == signal.SIG_DFL:
                    _sigterm_previous = current
                    signal.signal(signal.SIGTERM, _raise_terminated)
                    installed = True
                    _sigterm_depth = 1
            elif signal.getsignal(signal.SIGTERM) is _raise_terminated:
                _sigterm_depth += 1
                installed = True
    try:
        yield
    finally:
        if installed:
            with _sigterm_lock:
                _sigterm_depth -= 1
                if _sigterm_depth == 0:
                    signal.signal(signal.SIGTERM, _sigterm_previous or signal.SIG_DFL)


# ---------------------------------------------------------------------------------------
# temporary files and directories


def _temp_tag() -> str:
    return f"{_MARK}-{os.getpid()}-"


@contextlib.contextmanager
def temp_dir(directory: str | Path | None, kind: str = "work") -> Iterator[Path]:
    """A private temporary directory ``.logsieve-<kind>-<pid>-*`` in ``directory`` (the
    system's temporary directory when None), removed on exit, on errors and on SIGTERM."""
    if not re.fullmatch(r"[a-z]+", kind):
        raise ValueError(f"temporary directory kind must be lowercase letters, not {kind!r}")
    with cleanup_on_sigterm():
        try:
            path = Path(tempfile.mkdtemp(prefix=f".{_MARK}-{kind}-{os.getpid()}-", dir=directory))
        except OSError as exc:
            where = directory if directory is not None else tempfile.gettempdir()
            reason = exc.strerror or exc
            raise InputError(where, f"cannot create a temporary directory: {reason}") from exc
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto ``path`` on success.

    Refuses (:class:`~logsieve.errors.InputError`) a target that is not a regular file,
    checked before the temporary file is made and again just before the rename.
    """
    target = prepare_output(path)
    with cleanup_on_sigterm():
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{target.name[:_NAME_KEEP]}.{_temp_tag()}",
                suffix=suffix + ".tmp",
                dir=target.parent,
            )
        except OSError as exc:
            raise InputError(target, f"cannot write: {exc.strerror or exc}") from exc
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            # mkstemp makes the file private (0600); give the result ordinary permissions.
            os.chmod(tmp_path, 0o666 & ~_umask())
            check_output_path(target)  # it may have changed while we were writing
            try:
                os.replace(tmp_path, target)
            except OSError as exc:
                raise InputError(target, f"cannot write: {exc.strerror or exc}") from exc
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False)
        fh.write("\n")


def write_parquet(df: Any, path: str | Path) -> None:
    """Write a Polars DataFrame to Parquet, atomically."""
    with atomic_path(path, suffix=".parquet") as tmp:
        df.write_parquet(tmp)


# ---------------------------------------------------------------------------------------
# leftovers of killed runs


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    except OSError:
        return True
    return True


def temp_owner(name: str) -> int | None:
    """The process id in a logsieve temporary file or directory name, else None."""
    m = _TEMP_FILE.match(name) or _TEMP_DIR.match(name)
    return int(m.group(1)) if m else None


def sweep_stale_temp(directory: str | Path, older_than_s: float = 3600.0) -> list[Path]:
    """Remove logsieve's temporary files and directories in ``directory`` left by dead runs.

    An entry is removed only if its name is one of logsieve's temporary names (see the
    module docstring), the process id in it no longer runs, and it was last modified more
    than ``older_than_s`` seconds ago. Symbolic links are never followed. Returns what was
    removed; entries that cannot be removed are skipped (logged).
    """
    folder = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        log.debug("cannot list %s: %s", folder, exc)
        return removed
    now = time.time()
    for entry in entries:
        pid = temp_owner(entry.name)
        if pid is None or pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if now - st.st_mtime < older_than_s:
                continue
            if stat.S_ISDIR(st.st_mode) and _TEMP_DIR.match(entry.name):
                shutil.rmtree(entry.path)
            elif stat.S_ISREG(st.st_mode) and _TEMP_FILE.match(entry.name):
                os.unlink(entry.path)
            else:
                continue
        except OSError as exc:
            log.warning("cannot remove stale temporary %s: %s", entry.path, exc)
            continue
        log.info("removed stale temporary %s (process %d is gone)", entry.path, pid)
        removed.append(Path(entry.path))
    return removed
