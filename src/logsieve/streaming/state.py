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
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from logsieve.errors import InputError
from logsieve.io.atomic import sweep_stale_temp
from logsieve.streaming.windows import LineMap, OpenWindow

__all__ = [
    "AlertSink",
    "Background",
    "CheckpointWriter",
    "Snapshot",
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


def _list_column(values: Sequence[Sequence[Any]], inner: pa.DataType,
                 flat: Sequence[Any] | np.ndarray | None = None) -> pa.Array:  # fmt: skip
    """A large-list Arrow column built from one flat list and offsets (fast for 1M rows;
    ``flat``: the values already flattened). Integers go through NumPy (no per-item
    conversion); strings are large strings (Arrow's 32-bit string conversion is several
    times slower)."""
    offsets = np.fromiter(accumulate(map(len, values), initial=0), np.int64, len(values) + 1)
    if flat is None:
        flat = list(chain.from_iterable(values))
    arr = pa.array(np.asarray(flat, dtype=np.int64)) if inner == pa.int64() else \
        pa.array(flat, type=inner)  # fmt: skip
    return pa.LargeListArray.from_arrays(pa.array(offsets), arr)


WindowRow = tuple[Any, ...]
"""What a checkpoint keeps of one open window, taken between batches
(:meth:`CheckpointWriter.snapshot`): (window, from_pos, to_pos, touch, start, end, last_ts,
label, a copy of its kept lines, score, alert_id, trigger). The window's event and line-id
lists are only ever appended to, and a trigger is replaced, never changed, so they can be
read later, from another thread."""


CHUNK_WINDOWS = 1024
"""Windows converted to Arrow and written per step: a checkpoint written in the background
goes in steps this small, paced, so the loop never waits long for the interpreter lock or
a core (converting every open window's kept lines in one call holds the lock for a second)."""


DICTIONARY_COLUMNS = ["eids", "ref_source"]
"""Columns of few distinct values, dictionary-encoded in window files; the others (lines'
text, ids) are mostly distinct: trying a dictionary for them only costs time."""


def _write_windows(path: Path, rows: list[WindowRow], gone: list[str] | None, lines: LineMap,
                   pace: Callable[[float], None] | None = None) -> None:  # fmt: skip
    """Write a window file: rows of open windows, then (deltas) one row per closed window
    id, ``gone`` true; to a temporary name, fsynced, renamed.

    In a delta a window's row holds only the events appended since it was last written
    (from position ``from_pos``) and the kept lines among them; a base holds them all.
    Rows are converted and written :data:`CHUNK_WINDOWS` windows at a time (one row group
    each), and ``pace(seconds the chunk took)`` is called between chunks."""
    tmp = path.with_name(f".{path.name}.logsieve-{os.getpid()}.tmp")
    step = CHUNK_WINDOWS
    try:
        with open(tmp, "wb") as fh:
            first = _windows_chunk(rows[:step], lines)
            schema = first.schema
            with pq.ParquetWriter(fh, schema, compression="lz4",
                                  use_dictionary=DICTIONARY_COLUMNS) as writer:  # fmt: skip
                writer.write_table(first)
                for i in range(step, len(rows), step):
                    t0 = time.perf_counter()
                    writer.write_table(_windows_chunk(rows[i : i + step], lines))
                    if pace is not None:
                        pace(time.perf_counter() - t0)
                if gone:
                    extra = {n: pa.nulls(len(gone), schema.field(n).type) for n in schema.names}
                    extra["wid"] = pa.array(gone, pa.large_string())
                    extra["gone"] = pa.array([True] * len(gone), pa.bool_())
                    writer.write_table(pa.Table.from_arrays(list(extra.values()), schema=schema))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _windows_chunk(rows: list[WindowRow], lines: LineMap) -> pa.Table:
    wins = [r[0] for r in rows]
    col = list(zip(*rows, strict=True)) if rows else [()] * 12
    refs = [x if a == 0 or b - a >= len(x) else x[len(x) - (b - a) :]
            for x, a, b in zip(col[8], col[1], col[2], strict=True)]  # a delta: the new ones
    # the kept lines are the last ones up to the snapshot's position: their line ids say
    # where they came from
    kept_ids = np.fromiter(chain.from_iterable(w.line_ids[b - len(x) : b] for w, x, b in
                                               zip(wins, refs, col[2], strict=True)),
                           np.int64)  # fmt: skip
    ref_src, ref_line = lines.locate_many(kept_ids)
    cols = {
        "wid": pa.array([w.wid for w in wins], pa.large_string()),
        "from_pos": pa.array(col[1], pa.int64()),
        "touch": pa.array(col[3], pa.int64()),
        "key": pa.array([str(w.key) for w in wins], pa.large_string()),
        "k": pa.array([w.k for w in wins], pa.int64()),
        "eids": _list_column([w.eids[a:b] for w, a, b in zip(wins, col[1], col[2], strict=True)],
                             pa.large_string()),  # fmt: skip
        "line_ids": _list_column([w.line_ids[a:b]
                                  for w, a, b in zip(wins, col[1], col[2], strict=True)],
                                 pa.int64()),  # fmt: skip
        "start": pa.array(col[4], pa.int64()),
        "end": pa.array(col[5], pa.int64()),
        "last_ts": pa.array(col[6], pa.int64()),
        "label": pa.array(col[7], pa.int8()),
        "ref_source": _list_column(refs, pa.large_string(), ref_src),
        "ref_line": _list_column(refs, pa.int64(), ref_line),
        "ref_text": _list_column(refs, pa.large_string()),
        "score": pa.array(col[9], pa.float64()),
        "alert_id": pa.array(col[10], pa.large_string()),
        "trigger": pa.array([None if t is None else json.dumps(t) for t in col[11]],
                            pa.large_string()),  # fmt: skip
    }
    cols["gone"] = pa.array([False] * len(rows), pa.bool_())
    return pa.Table.from_arrays(list(cols.values()), names=list(cols))  # (pa.table: pandas)


@dataclass
class Snapshot:
    """One checkpoint as taken between batches (cheap: no serialisation), written later by
    :meth:`CheckpointWriter.write_snapshot`, possibly in another thread."""

    seq: int
    kind: str
    name: str
    chain: list[str]
    rows: list[WindowRow]
    gone: list[str]
    meta: dict[str, Any]
    parser_state: dict[str, Any] | None
    lines: LineMap  # where the kept lines came from (a copy)
    sync: Callable[[], None] | None = None  # fsync the alert file first


class CheckpointWriter:
    """Writes checkpoints incrementally: a checkpoint names a chain of window files, a
    *base* (every open window) and *deltas* (the windows updated since the checkpoint
    before, and the ids of those closed). A delta holds only what changed, so a
    checkpoint costs what the interval touched, not every open window; a new base is
    written when the deltas since the last one hold more rows than there are open windows
    (or after ``max_chain`` deltas), which bounds both the files and a restart's work.

    A checkpoint is taken in two steps: :meth:`snapshot` (between batches, in the loop:
    copies what later batches would change, serialises nothing) and :meth:`write_snapshot`
    (Arrow, Parquet, JSON, fsync, the ``state.json`` switch), which :class:`Background`
    runs off the loop. One snapshot is written at a time; if a write fails, the next
    snapshot is a base."""

    def __init__(self, state_dir: Path, chain: list[str] | None = None, *,
                 max_chain: int = 32) -> None:  # fmt: skip
        self.state_dir = state_dir
        self.chain = list(chain or [])
        self.delta_rows = 0
        self.max_chain = max_chain

    def snapshot(self, seq: int, meta: dict[str, Any], updated: list[OpenWindow],
                 gone: list[str], all_open: Callable[[], list[OpenWindow]],
                 parser_state: dict[str, Any] | None, lines: LineMap) -> Snapshot:  # fmt: skip
        """Take checkpoint ``seq``: decide base or delta and copy its rows (``lines``: where
        the windows' kept lines came from, not changed after)."""
        rows = len(gone) + sum(len(w.eids) - w.saved + 1 for w in updated)
        if not self.chain or len(self.chain) >= self.max_chain or \
                self.delta_rows + rows > max(sum(len(w.eids) + 1 for w in all_open()),
                                             10_000):  # fmt: skip
            kind, written, chain, gone = "base", all_open(), [], []
            self.delta_rows = 0
            snap_rows = [(w, 0, len(w.eids), w.touch, w.start, w.end, w.last_ts, w.label,
                          w.refs[:], w.score, w.alert_id, w.trigger) for w in written]  # fmt: skip
        else:
            kind, written, chain = "delta", updated, list(self.chain)
            self.delta_rows += rows
            snap_rows = [(w, w.saved, len(w.eids), w.touch, w.start, w.end, w.last_ts, w.label,
                          w.refs[:], w.score, w.alert_id, w.trigger) for w in written]  # fmt: skip
        for r in snap_rows:
            r[0].saved = r[2]
        name = f"win-{seq:08d}-{kind}.parquet"
        chain.append(name)
        self.chain = chain
        return Snapshot(seq, kind, name, chain, snap_rows, gone, {**meta, "windows": chain},
                        parser_state, lines)  # fmt: skip

    def write_snapshot(self, snap: Snapshot,
                       pace: Callable[[float], None] | None = None) -> None:  # fmt: skip
        """Write a snapshot's files and point ``state.json`` at it (any thread; ``pace``:
        see :func:`_write_windows`)."""
        try:
            if snap.sync is not None:
                snap.sync()
            _write_windows(self.state_dir / snap.name, snap.rows,
                           snap.gone if snap.kind == "delta" else None, snap.lines,
                           pace)  # fmt: skip
            write_checkpoint(self.state_dir, snap.seq, snap.meta, snap.parser_state)
        except BaseException:
            self.chain = []  # the chain has a hole: the next checkpoint is a base
            raise
        keep = set(snap.chain)
        for old in self.state_dir.glob("win-*.parquet"):
            if old.name not in keep:
                old.unlink(missing_ok=True)

    def write(self, seq: int, meta: dict[str, Any], updated: list[OpenWindow],
              gone: list[str], all_open: Callable[[], list[OpenWindow]],
              parser_state: dict[str, Any] | None, lines: LineMap) -> str:  # fmt: skip
        """Write checkpoint ``seq`` now and point ``state.json`` at it; 'base'/'delta'."""
        snap = self.snapshot(seq, meta, updated, gone, all_open, parser_state, lines)
        self.write_snapshot(snap)
        return snap.kind


PACE = 2.0
"""A background checkpoint sleeps this many times as long as each chunk took: it takes a
third of a core at most, and the loop (latency) gets the rest."""


def _pace(took: float) -> None:
    time.sleep(min(took * PACE, 0.1))


class Background:
    """Runs one checkpoint write at a time off the loop (a thread per write). ``busy``
    says one is running; :meth:`wait` waits for it and raises what it raised."""

    def __init__(self, writer: CheckpointWriter, *, paced: bool = True) -> None:
        self.writer = writer
        self.pace = _pace if paced else None  # paced: following (latency); else full speed
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.last_seconds = 0.0

    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, snap: Snapshot) -> None:
        self.wait()

        def run() -> None:
            t0 = time.perf_counter()
            try:
                self.writer.write_snapshot(snap, self.pace)
            except BaseException as exc:  # handed to the loop by wait()
                self.error = exc
            self.last_seconds = time.perf_counter() - t0

        self.thread = threading.Thread(target=run, name=f"watch-ckpt-{snap.seq}", daemon=True)
        self.thread.start()

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            exc, self.error = self.error, None
            raise exc


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
        length = self.mark()
        self.sync()
        return length

    def mark(self) -> int:
        """Flush and return the length written so far: what a checkpoint records, once
        :meth:`sync` (which may run in another thread, before the checkpoint is switched
        in) has made it durable. The file is only appended to while open, so a later sync
        covers every byte up to a length marked before."""
        if self.fh is not None:
            self.fh.flush()
            self.committed = self.fh.tell()
        return self.committed

    def sync(self) -> None:
        if self.fh is not None:
            os.fsync(self.fh.fileno())

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
