"""The watcher's state directory: checkpoints, the alert file's committed length, status.

Layout of ``--state-dir``::

    state.json          names the current checkpoint (replaced atomically, last)
    ckpt-00000042/      one checkpoint, written whole in a temporary directory, then renamed
        meta.json       sources (fingerprint, offset, lines), counters, alert counter, the
                        alert file's committed length, model version, grouping counters,
                        the records of alerts updated after they were emitted, and the
                        chain of window files that holds the open windows
        parser.json     the parser state (templates mined online included)
    win-00000040-base.parquet   every open window at checkpoint 40 (ids, events, lines,
                                timestamps, label, score, LRU order...)
    win-00000041-delta.parquet  windows updated since checkpoint 40, and ids closed
    win-00000042-delta.parquet  ... (see :class:`CheckpointWriter`)
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
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from logsieve.errors import InputError
from logsieve.io.atomic import sweep_stale_temp
from logsieve.streaming.windows import OpenWindow

__all__ = [
    "AlertSink",
    "CheckpointWriter",
    "load_checkpoint",
    "write_checkpoint",
    "write_json_synced",
]

STATE_FILE = "state.json"
STATUS_FILE = "status.json"
STATE_VERSION = 2

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


def _windows_table(windows: list[OpenWindow], gone: list[str] | None = None,
                   delta: bool = False) -> pa.Table:  # fmt: skip
    """Rows of open windows, then (deltas) one row per closed window id, ``gone`` true.

    In a delta a window's row holds only the events appended since it was last written
    (from position ``from_pos``) and the kept lines among them; a base holds them all."""
    start = [w.saved if delta else 0 for w in windows]
    new = [len(w.eids) - a for w, a in zip(windows, start, strict=True)]
    refs = [w.refs if a == 0 or n >= len(w.refs) else w.refs[len(w.refs) - n :]
            for w, a, n in zip(windows, start, new, strict=True)]  # fmt: skip
    cols = {
        "wid": pa.array([w.wid for w in windows], pa.string()),
        "from_pos": pa.array(start, pa.int64()),
        "touch": pa.array([w.touch for w in windows], pa.int64()),
        "key": pa.array([str(w.key) for w in windows], pa.string()),
        "k": pa.array([w.k for w in windows], pa.int64()),
        "eids": _list_column([w.eids[a:] if a else w.eids
                              for w, a in zip(windows, start, strict=True)], pa.string()),
        "line_ids": _list_column([w.line_ids[a:] if a else w.line_ids
                                  for w, a in zip(windows, start, strict=True)], pa.int64()),
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
    cols["gone"] = pa.array([False] * len(windows), pa.bool_())
    table = pa.Table.from_arrays(list(cols.values()), names=list(cols))  # (pa.table imports pandas)
    if gone:
        extra = {n: pa.nulls(len(gone), table.schema.field(n).type) for n in table.column_names}
        extra["wid"] = pa.array(gone, pa.string())
        extra["gone"] = pa.array([True] * len(gone), pa.bool_())
        extra_t = pa.Table.from_arrays(list(extra.values()), schema=table.schema)
        table = pa.concat_tables([table, extra_t])
    return table


class CheckpointWriter:
    """Writes checkpoints incrementally: a checkpoint names a chain of window files, a
    *base* (every open window) and *deltas* (the windows updated since the checkpoint
    before, and the ids of those closed). A delta holds only what changed, so a
    checkpoint costs what the interval touched, not every open window; a new base is
    written when the deltas since the last one hold more rows than there are open windows
    (or after ``max_chain`` deltas), which bounds both the files and a restart's work."""

    def __init__(self, state_dir: Path, chain: list[str] | None = None, *,
                 max_chain: int = 32) -> None:  # fmt: skip
        self.state_dir = state_dir
        self.chain = list(chain or [])
        self.delta_rows = 0
        self.max_chain = max_chain

    def write(self, seq: int, meta: dict[str, Any], updated: list[OpenWindow],
              gone: list[str], all_open: Callable[[], list[OpenWindow]],
              parser_state: dict[str, Any] | None) -> str:  # fmt: skip
        """Write checkpoint ``seq`` and point ``state.json`` at it; returns 'base'/'delta'."""
        opened = all_open()
        rows = len(gone) + sum(len(w.eids) - w.saved + 1 for w in updated)
        total = sum(len(w.eids) for w in opened) + len(opened)
        if not self.chain or len(self.chain) >= self.max_chain or \
                self.delta_rows + rows > max(total, 10_000):  # fmt: skip
            kind, written, chain = "base", opened, []
            table = _windows_table(opened)
            self.delta_rows = 0
        else:
            kind, written, chain = "delta", updated, list(self.chain)
            table = _windows_table(updated, gone, delta=True)
            self.delta_rows += rows
        name = f"win-{seq:08d}-{kind}.parquet"
        _write_parquet_synced(self.state_dir / name, table)
        chain.append(name)
        meta = {**meta, "windows": chain}
        write_checkpoint(self.state_dir, seq, meta, parser_state)
        self.chain = chain
        for w in written:
            w.saved = len(w.eids)
        keep = set(chain)
        for old in self.state_dir.glob("win-*.parquet"):
            if old.name not in keep:
                old.unlink(missing_ok=True)
        return kind


def _write_parquet_synced(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.logsieve-{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="lz4")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_checkpoint(
    state_dir: Path,
    seq: int,
    meta: dict[str, Any],
    parser_state: dict[str, Any] | None,
) -> None:
    """Write checkpoint ``seq`` (meta and parser state; the window files it names are
    written before), point ``state.json`` at it, drop the older ones."""
    tmp = Path(tempfile.mkdtemp(prefix=f".logsieve-ckpt-{os.getpid()}-", dir=state_dir))
    name = f"ckpt-{seq:08d}"
    try:
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
    """(meta, open window rows, parser state) of the last checkpoint, or None for a new dir:
    the base's rows with each delta applied in order (closed ids dropped, updates replace)."""
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
        if meta.get("state_version") != STATE_VERSION:
            raise InputError(file, "watcher state of another version")
        rows: dict[str, dict[str, Any]] = {}
        for name in meta["windows"]:
            part = pq.read_table(state_dir / name).to_pylist()
            for r in part:
                if r["gone"]:
                    rows.pop(r["wid"], None)
            for r in part:
                if r["gone"]:
                    continue
                old = rows.get(r["wid"]) if r["from_pos"] else None
                if r["from_pos"]:  # events appended since the row before
                    if old is None or len(old["eids"]) != r["from_pos"]:
                        raise ValueError(f"window {r['wid']}: delta does not continue it")
                    r["eids"] = old["eids"] + r["eids"]
                    r["line_ids"] = old["line_ids"] + r["line_ids"]
                    for c in ("ref_source", "ref_line", "ref_text"):
                        r[c] = old[c] + r[c]  # the watcher keeps the last ones
                rows[r["wid"]] = r
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(file, f"damaged watcher state ({exc}); move the directory away") from exc
    out = list(rows.values())
    for r in out:
        r["trigger"] = None if r["trigger"] is None else json.loads(r["trigger"])
        r["refs"] = list(zip(r.pop("ref_source"), r.pop("ref_line"), r.pop("ref_text"),
                             strict=True))  # fmt: skip
    return meta, out, parser


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
