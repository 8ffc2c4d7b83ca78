"""The watcher's state directory: checkpoints, the alert file's committed length, status.

Layout of ``--state-dir``::

    state.json          names the current checkpoint (replaced atomically, last)
    ckpt-00000042/      one checkpoint, written whole in a temporary directory, then renamed
        meta.json       sources (fingerprint, offset, lines), counters, alert counter, the
                        alert file's committed length, model version, grouping counters,
                        the records of alerts updated after they were emitted
        windows.parquet the open windows (ids, events, lines, timestamps, label, score...)
        parser.json     the parser state (templates mined online included)
    status.json         the same facts for an operator (rewritten about once a second)

Every file is written to a temporary name, fsynced and renamed; the directory is fsynced
after each rename. A crash at any moment leaves the previous checkpoint whole, and a restart
reads the one ``state.json`` names (leftovers of a killed run are swept).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from logsieve.errors import InputError
from logsieve.io.atomic import sweep_stale_temp
from logsieve.streaming.windows import OpenWindow

__all__ = ["AlertSink", "load_checkpoint", "write_checkpoint", "write_json_synced"]

STATE_FILE = "state.json"
STATUS_FILE = "status.json"
STATE_VERSION = 1

def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_synced(path: Path, obj: Any, *, sync: bool = True) -> None:
    """Write JSON to a temporary name, fsync, rename over ``path``, fsync the directory."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.logsieve-{os.getpid()}-", suffix=".tmp",
                               dir=path.parent)  # fmt: skip
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1)
            fh.write("\n")
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if sync:
            _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _list_column(values: list[list[Any]], inner: pa.DataType) -> pa.Array:
    """A large-list Arrow column built from one flat list and offsets (fast for 1M rows)."""
    flat: list[Any] = []
    offsets = [0]
    for v in values:
        flat.extend(v)
        offsets.append(len(flat))
    return pa.LargeListArray.from_arrays(
        pa.array(offsets, type=pa.int64()), pa.array(flat, type=inner)
    )


def _windows_table(windows: list[OpenWindow]) -> pa.Table:
    refs = [w.refs for w in windows]
    cols = {
        "wid": pa.array([w.wid for w in windows], pa.string()),
        "key": pa.array([str(w.key) for w in windows], pa.string()),
        "k": pa.array([w.k for w in windows], pa.int64()),
        "eids": _list_column([w.eids for w in windows], pa.string()),
        "line_ids": _list_column([w.line_ids for w in windows], pa.int64()),
        "start": pa.array([w.start for w in windows], pa.int64()),
        "end": pa.array([w.end for w in windows], pa.int64()),
        "last_ts": pa.array([w.last_ts for w in windows], pa.int64()),
        "label": pa.array([w.label for w in windows], pa.int8()),
        "ref_source": _list_column([[r[0] for r in x] for x in refs], pa.string()),
        "ref_line": _list_column([[r[1] for r in x] for x in refs], pa.int64()),
        "ref_text": _list_column([[r[2] for r in x] for x in refs], pa.string()),
        "score": pa.array([w.score for w in windows], pa.float64()),
        "alert_id": pa.array([w.alert_id for w in windows], pa.string()),
        "trigger": pa.array(
            [None if w.trigger is None else json.dumps(w.trigger) for w in windows], pa.string()
        ),
    }
    return pa.table(cols)


def write_checkpoint(
    state_dir: Path,
    seq: int,
    meta: dict[str, Any],
    windows: list[OpenWindow],
    parser_state: dict[str, Any] | None,
) -> None:
    """Write checkpoint ``seq`` whole, point ``state.json`` at it, drop the older ones."""
    tmp = Path(tempfile.mkdtemp(prefix=f".logsieve-ckpt-{os.getpid()}-", dir=state_dir))
    name = f"ckpt-{seq:08d}"
    try:
        table = _windows_table(windows)
        with open(tmp / "windows.parquet", "wb") as fh:
            pq.write_table(table, fh, compression="lz4")
            fh.flush()
            os.fsync(fh.fileno())
        write_json_synced(tmp / "meta.json", meta, sync=True)
        write_json_synced(tmp / "parser.json", parser_state, sync=True)
        target = state_dir / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        _fsync_dir(state_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_json_synced(state_dir / STATE_FILE, {"state_version": STATE_VERSION, "checkpoint": name})
    for old in state_dir.glob("ckpt-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(
    state_dir: Path,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None] | None:
    """(meta, open window rows, parser state) of the last checkpoint, or None for a new dir."""
    state_dir.mkdir(parents=True, exist_ok=True)
    sweep_stale_temp(state_dir, older_than_s=0.0)
    file = state_dir / STATE_FILE
    if not file.exists():
        return None
    try:
        pointer = json.loads(file.read_text(encoding="utf-8"))
        ckpt = state_dir / pointer["checkpoint"]
        meta = json.loads((ckpt / "meta.json").read_text(encoding="utf-8"))
        parser = json.loads((ckpt / "parser.json").read_text(encoding="utf-8"))
        rows = pq.read_table(ckpt / "windows.parquet").to_pylist()
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(file, f"damaged watcher state ({exc}); move the directory away") from exc
    if meta.get("state_version") != STATE_VERSION:
        raise InputError(file, "watcher state of another version")
    for r in rows:
        r["trigger"] = None if r["trigger"] is None else json.loads(r["trigger"])
        r["refs"] = list(zip(r.pop("ref_source"), r.pop("ref_line"), r.pop("ref_text"),
                             strict=True))  # fmt: skip
    return meta, rows, parser


class AlertSink:
    """The ``--alerts`` JSONL file: appended, flushed per batch, cut back to the committed
    length on a restart (so alerts written after the last checkpoint are written once)."""

    def __init__(self, path: Path | None, committed: int | None) -> None:
        self.path = path
        self.fh: IO[bytes] | None = None
        if path is None:
            self.committed = 0
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "ab")  # noqa: SIM115 (kept open across batches)
        size = self.fh.seek(0, os.SEEK_END)
        if committed is not None and size > committed:
            self.fh.truncate(committed)
            self.fh.seek(committed)
        if committed is not None and size < committed:
            raise InputError(path, f"shorter ({size} bytes) than the watcher committed "
                                   f"({committed}); was it edited?")  # fmt: skip
        self.committed = self.fh.tell()

    def write(self, record: dict[str, Any]) -> None:
        if self.fh is not None:
            self.fh.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")

    def flush(self) -> None:
        if self.fh is not None:
            self.fh.flush()

    def commit(self) -> int:
        """fsync and return the length a checkpoint may record."""
        if self.fh is not None:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.committed = self.fh.tell()
        return self.committed

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
