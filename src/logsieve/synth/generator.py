"""Fast, deterministic HDFS-like log generator with labelled, injected anomalies.

Every block (session) follows the HDFS write/read/delete workflow:

1. ``allocateBlock`` on the namenode;
2. a 3-replica write pipeline: ``Receiving block`` x3, then, downstream first, ``PacketResponder
   k ... terminating`` and ``Received block ... of size`` per replica, and ``addStoredBlock:
   blockMap updated`` per replica;
3. sometimes a re-replication (``ask ... to replicate``, ``Starting thread to transfer``,
   ``Receiving``/``Received block ... src``, ``Transmitted``, ``addStoredBlock``);
4. optional reads (``Served block``, ``Got exception while serving``) and scanner checks;
5. usually a deletion hours later (``NameSystem.delete ... invalidSet`` per replica, then
   ``Deleting block ... file`` per replica).

Blocks arrive in bursts (jobs), so lines of many blocks interleave. A fraction of blocks
(``anomaly_ratio``, spread evenly over the file) is perturbed with one of
:data:`ANOMALY_KINDS`. Generation is columnar: per-block NumPy arrays, one global sort by
time, then chunked formatting with Arrow string kernels; no per-line Python code.

The plan (kinds, per-block structure) is in :mod:`.plan`, formatting and writing in
:mod:`.writer`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logsieve.errors import LogsieveError
from logsieve.synth.plan import _REPLICAS, ANOMALY_KINDS, VARIANTS, _Plan, _plan_blocks
from logsieve.synth.templates import TEMPLATE_INDEX
from logsieve.synth.writer import _COLS, _write_labels, _write_log

log = logging.getLogger(__name__)


FULL_BLOCK_SIZE = 67_108_864
"""HDFS block size (64 MiB) of the real logs; a normal block is never larger."""
MIN_LINES = 100
DEFAULT_START = datetime(2008, 11, 9, 20, 35, 18)
NORMAL_WRITE_MAX_S = 300.0
"""Upper bound on allocate -> last write step of a normal block (stalls add >= 1800 s)."""

_T = TEMPLATE_INDEX
_DIRS = (
    "rand", "rand2", "rand3", "rand4", "rand5", "rand6", "rand7", "rand8", "randtxt",
    "randtxt2", "randtxt3", "randtxt4", "randtxt5", "randtxt9", "sortrand", "sortrand2", "wcnt",
)
_ERROR_KEYS = (
    "writeblock_exception", "receiveblock_exception", "responder_exception",
    "responder_interrupted", "empty_packet", "redundant_add", "orphan_add", "delete_error",
)
_ERROR_WEIGHTS = np.array([0.30, 0.10, 0.08, 0.05, 0.12, 0.10, 0.10, 0.15])
_PIPELINE_ERRORS = {"writeblock_exception", "receiveblock_exception", "responder_exception",
                    "responder_interrupted", "empty_packet"}
_NAMENODE_ERRORS = {"redundant_add", "orphan_add"}


@dataclass(frozen=True)
class SynthStats:
    """What :func:`generate` wrote."""

    path: Path
    labels_path: Path
    kinds_path: Path
    lines: int
    blocks: int
    anomalous_blocks: int
    kind_counts: dict[str, int]
    seed: int
    anomaly_ratio: float
    first_timestamp: datetime
    last_timestamp: datetime
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def anomaly_fraction(self) -> float:
        """Share of blocks labelled ``Anomaly``."""
        return self.anomalous_blocks / self.blocks if self.blocks else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "path": str(self.path),
            "labels_path": str(self.labels_path),
            "kinds_path": str(self.kinds_path),
            "lines": self.lines,
            "blocks": self.blocks,
            "anomalous_blocks": self.anomalous_blocks,
            "anomaly_fraction": round(self.anomaly_fraction, 6),
            "kind_counts": dict(self.kind_counts),
            "seed": self.seed,
            "anomaly_ratio": self.anomaly_ratio,
            "first_timestamp": self.first_timestamp.isoformat(),
            "last_timestamp": self.last_timestamp.isoformat(),
            "seconds": round(self.seconds, 3),
            **self.extra,
        }


def sidecar_paths(path: str | Path) -> tuple[Path, Path]:
    """Default label and kind files beside a log.

    ``x.log`` or ``x.log.gz`` -> ``x.labels.csv`` and ``x.kinds.csv``.
    """
    p = Path(path)
    name = p.name
    for suffix in (".gz", ".log"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return p.with_name(name + ".labels.csv"), p.with_name(name + ".kinds.csv")


# --------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------


def generate(
    path: str | Path,
    lines: int,
    seed: int = 0,
    anomaly_ratio: float = 0.03,
    labels_path: str | Path | None = None,
    kinds_path: str | Path | None = None,
    *,
    kinds: Sequence[str] = ANOMALY_KINDS,
    n_datanodes: int = 203,
    start: datetime = DEFAULT_START,
    compresslevel: int = 6,
    chunk_lines: int = 250_000,
) -> SynthStats:
    """Write a synthetic HDFS log of exactly ``lines`` lines plus its block labels.

    Parameters
    ----------
    path
        Output log; gzip-compressed when the name ends with ``.gz``.
    lines
        Exact number of log lines (at least ``MIN_LINES``).
    seed
        Seed of the random generator; same arguments give the same bytes.
    anomaly_ratio
        Fraction of blocks made anomalous, in ``[0, 1]`` (real HDFS: 2.9 %).
    labels_path
        Loghub-style ``BlockId,Label`` file (``Normal``/``Anomaly``), one row per block in
        order of first appearance. Default: ``<name>.labels.csv`` beside ``path``.
    kinds_path
        ``BlockId,Kind,Detail`` for each anomalous block. Default: ``<name>.kinds.csv``.
    kinds
        Anomaly kinds to inject (subset of :data:`ANOMALY_KINDS`), cycled evenly.
    n_datanodes
        Size of the simulated cluster (real HDFS_v1: 203 nodes).
    start
        Timestamp of the first block.
    compresslevel
        gzip level for ``.gz`` output.
    chunk_lines
        Lines formatted per batch; bounds memory.

    Returns
    -------
    SynthStats
        Counts, paths and timing of what was written.
    """
    t_begin = time.perf_counter()
    path = Path(path)
    default_labels, default_kinds = sidecar_paths(path)
    labels_path = Path(labels_path) if labels_path is not None else default_labels
    kinds_path = Path(kinds_path) if kinds_path is not None else default_kinds
    _validate(path, lines, anomaly_ratio, kinds, n_datanodes, labels_path, kinds_path, chunk_lines)
    kind_ids = [ANOMALY_KINDS.index(k) for k in dict.fromkeys(kinds)]

    rng = np.random.default_rng(seed)
    plan = _plan_blocks(rng, lines, anomaly_ratio, kind_ids)
    nodes = _node_table(rng, n_datanodes)
    blocks = _block_attributes(rng, plan.n, n_datanodes)
    events, first_t, err_blk, err_tmpl = _build_events(rng, plan, blocks, n_datanodes)
    if len(events["t"]) != lines:  # pragma: no cover - internal consistency guard
        raise RuntimeError(f"synth produced {len(events['t'])} lines, expected {lines}")
    t_plan = time.perf_counter()

    order = _time_order(events["t"])
    base = start.replace(microsecond=0)
    start_s = int((base.replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds())
    tables = {
        "blk": blocks["blk_str"],
        "path": blocks["path_str"],
        "ip1": nodes,
        "ip2": nodes,
    }
    _write_log(path, events, order, tables, start_s, compresslevel, min(chunk_lines, 4_000_000))
    t_write = time.perf_counter()
    first_sec = math.floor(float(events["t"][order[0]]))
    last_sec = math.floor(float(events["t"][order[-1]]))
    del order, events

    _write_labels(labels_path, kinds_path, plan, blocks, first_t, err_blk, err_tmpl)
    kind_counts = {ANOMALY_KINDS[i]: int(np.count_nonzero(plan.kind == i)) for i in kind_ids}
    n_anom = int(np.count_nonzero(plan.kind >= 0))
    seconds = time.perf_counter() - t_begin
    log.info(
        "synth: %d lines, %d blocks (%d anomalous) -> %s in %.2fs",
        lines, plan.n, n_anom, path, seconds,
    )
    return SynthStats(
        path=path,
        labels_path=labels_path,
        kinds_path=kinds_path,
        lines=lines,
        blocks=plan.n,
        anomalous_blocks=n_anom,
        kind_counts=kind_counts,
        seed=seed,
        anomaly_ratio=anomaly_ratio,
        first_timestamp=base + timedelta(seconds=first_sec),
        last_timestamp=base + timedelta(seconds=last_sec),
        seconds=seconds,
        extra={
            "plan_seconds": round(t_plan - t_begin, 3),
            "write_seconds": round(t_write - t_plan, 3),
        },
    )


def _validate(
    path: Path,
    lines: int,
    ratio: float,
    kinds: Sequence[str],
    n_datanodes: int,
    labels_path: Path,
    kinds_path: Path,
    chunk_lines: int,
) -> None:
    if isinstance(lines, bool) or not isinstance(lines, (int, np.integer)):
        raise LogsieveError(f"synth: lines must be an integer, got {lines!r}")
    if lines < MIN_LINES:
        raise LogsieveError(f"synth: lines must be at least {MIN_LINES}, got {lines}")
    if not (0.0 <= float(ratio) <= 1.0) or math.isnan(float(ratio)):
        raise LogsieveError(f"synth: anomaly ratio must be in [0, 1], got {ratio}")
    unknown = [k for k in kinds if k not in ANOMALY_KINDS]
    if unknown:
        raise LogsieveError(
            f"synth: unknown anomaly kind(s) {', '.join(unknown)}; "
            f"choose from {', '.join(ANOMALY_KINDS)}"
        )
    if ratio > 0 and not kinds:
        raise LogsieveError("synth: anomaly ratio > 0 needs at least one anomaly kind")
    if not 4 <= n_datanodes <= 20_000:
        raise LogsieveError(f"synth: n_datanodes must be between 4 and 20000, got {n_datanodes}")
    if chunk_lines < 1:
        raise LogsieveError(f"synth: chunk_lines must be positive, got {chunk_lines}")
    outs = [path.resolve(), labels_path.resolve(), kinds_path.resolve()]
    if len(set(outs)) != 3:
        raise LogsieveError(
            f"synth: log, label and kind files must differ ({path}, {labels_path}, {kinds_path})"
        )




# --------------------------------------------------------------------------------------
# identities: datanodes, block ids, file paths, arrival times
# --------------------------------------------------------------------------------------


def _node_table(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` distinct datanode addresses in 10.250.0-23.x and 10.251.26-255.x."""
    got: np.ndarray = np.empty(0, dtype=np.int64)
    while len(got) < n:
        m = 2 * n + 16
        second = np.where(rng.random(m) < 0.4, 250, 251)
        third = np.where(second == 250, rng.integers(0, 24, m), rng.integers(26, 256, m))
        fourth = rng.integers(1, 255, m)
        cand = (second * 256 + third) * 256 + fourth
        allc = np.concatenate([got, cand])
        _, first = np.unique(allc, return_index=True)
        got = allc[np.sort(first)]
    got = got[:n]
    octets = [pa.array(x).cast(pa.string()) for x in (got >> 16, (got >> 8) & 255, got & 255)]
    return pc.binary_join_element_wise("10", *octets, ".")


def _distinct_others(rng: np.random.Generator, taken: np.ndarray, d: int) -> np.ndarray:
    """One node per row of ``taken`` (n x m) that differs from every entry of that row."""
    out = rng.integers(0, d, len(taken))
    while True:
        clash = (out[:, None] == taken).any(axis=1)
        if not clash.any():
            return out
        out[clash] = rng.integers(0, d, int(clash.sum()))


def _block_attributes(rng: np.random.Generator, n: int, d: int) -> dict[str, Any]:
    """Block ids, arrival times (bursty jobs), replica nodes, sizes and file paths."""
    lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    ids = rng.integers(lo, hi, n, dtype=np.int64)
    while len(np.unique(ids)) != n:  # pragma: no cover - ~never with 64-bit ids
        _, first = np.unique(ids, return_index=True)
        dup = np.setdiff1d(np.arange(n), first)
        ids[dup] = rng.integers(lo, hi, len(dup), dtype=np.int64)
    blk_str = pc.binary_join_element_wise("blk_", pa.array(ids).cast(pa.string()), "")

    # Jobs launch many tasks at once; each task writes one file, block after block (most
    # files are 16 full 64 MiB blocks, as from Hadoop's random writer). Files of a job
    # write in parallel, jobs overlap: lines of many blocks interleave, in bursts.
    files_per_block: list[np.ndarray] = []
    total = 0
    while total < n:
        m = n // 8 + 16
        nb = np.where(rng.random(m) < 0.6, 16, rng.integers(1, 16, m))
        files_per_block.append(nb)
        total += int(nb.sum())
    nb = np.concatenate(files_per_block)
    n_files = int(np.searchsorted(np.cumsum(nb), n)) + 1
    nb = nb[:n_files]
    tasks_per_job = rng.integers(8, 81, n_files)  # upper bound on jobs: one per file
    job_of_file = np.searchsorted(np.cumsum(tasks_per_job), np.arange(n_files), side="right")
    n_jobs = int(job_of_file[-1]) + 1
    job_start = np.cumsum(np.r_[0.0, rng.exponential(140.0, n_jobs - 1)])
    first_file = np.r_[0, np.flatnonzero(np.diff(job_of_file)) + 1]
    task = np.arange(n_files) - first_file[job_of_file]
    file_start = job_start[job_of_file] + np.where(task == 0, 0.0, rng.uniform(0.0, 20.0, n_files))

    file_of = np.repeat(np.arange(n_files), nb)[:n]
    block_start = np.r_[0, np.cumsum(nb)[:-1]]
    j_in_file = np.arange(n) - block_start[file_of]
    last_in_file = (j_in_file == nb[file_of] - 1) | (np.arange(n) == n - 1)
    partial = np.exp(rng.uniform(np.log(1e5), np.log(FULL_BLOCK_SIZE), n)).astype(np.int64)
    size = np.where(last_in_file & (rng.random(n) < 0.7), partial, FULL_BLOCK_SIZE)
    rate = np.exp(rng.normal(np.log(2.5e6), 0.45, n))  # bytes/s through the pipeline
    dur = np.clip(0.2 + size / rate, 0.2, 150.0)
    # next block of a file is allocated once the previous one is written
    cycle = dur + 0.5 + np.minimum(rng.exponential(0.6, n), 8.0)
    csum = np.cumsum(cycle) - cycle
    t0 = file_start[file_of] + (csum - csum[block_start[file_of]])

    nodes = np.empty((n, _REPLICAS), dtype=np.int64)
    nodes[:, 0] = rng.integers(0, d, n)
    for r in range(1, _REPLICAS):
        nodes[:, r] = _distinct_others(rng, nodes[:, :r], d)

    # File paths: /user/root/<dir>/_temporary/_task_<jobts>_<job>_<m|r>_<task>_0/part-<task>
    job = job_of_file[file_of]
    job_dir = rng.integers(0, len(_DIRS), n_jobs)
    job_reduce = rng.random(n_jobs) < 0.15
    dirs = pa.array(_DIRS).take(pa.array(job_dir[job]))
    mr = pc.if_else(pa.array(job_reduce[job]), "r", "m")
    task_s = pa.array(task[file_of]).cast(pa.string())
    path_str = pc.binary_join_element_wise(
        "/user/root/", dirs, "/_temporary/_task_200811092030_",
        pc.utf8_lpad(pa.array(job + 1).cast(pa.string()), 4, "0"), "_", mr, "_",
        pc.utf8_lpad(task_s, 6, "0"), "_0/part-", pc.utf8_lpad(task_s, 5, "0"), "",
    )
    return {
        "ids": ids, "blk_str": blk_str, "t0": t0, "dur": dur, "nodes": nodes, "size": size,
        "path_str": path_str,
    }


# --------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------



class _Events:
    """Accumulates event groups (columns of equal length); scalars broadcast."""

    def __init__(self) -> None:
        self.parts: list[list[Any]] = []

    def add(self, tmpl: Any, blk: np.ndarray, t: np.ndarray, pid: Any,
            ip1: Any = 0, ip2: Any = 0, aux: Any = 0, size: Any = 0) -> None:
        n = len(blk)
        if n:
            # cast now, so the pending groups already take their final (narrow) size
            cols = [np.asarray(v).astype(dt, copy=False) for v, (_, dt) in
                    zip((tmpl, blk, t, pid, ip1, ip2, aux, size), _COLS, strict=True)]
            self.parts.append([*cols, n])

    def finish(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for j, (name, dtype) in enumerate(_COLS):
            pieces = [np.broadcast_to(p[j], (p[-1],)) for p in self.parts]
            out[name] = np.concatenate(pieces) if pieces else np.empty(0, dtype=dtype)
            del pieces
            for p in self.parts:  # free each column's pieces as soon as it is joined
                p[j] = None
        self.parts = []
        return out


def _build_events(
    rng: np.random.Generator, plan: _Plan, blocks: dict[str, Any], d: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """All events of all blocks (unsorted), per-block first time, and the error events."""
    n = plan.n
    b = np.arange(n)
    t0 = blocks["t0"]
    nodes = blocks["nodes"]
    size = blocks["size"].copy()
    kind, var = plan.kind, plan.variant

    def is_(k: str, v: str | None = None) -> np.ndarray:
        m = kind == ANOMALY_KINDS.index(k)
        return m if v is None else m & (var == VARIANTS[k].index(v))

    def xpid(t: np.ndarray) -> np.ndarray:
        # DataXceiver thread ids grow with uptime, as in the real logs (143 -> ~27000)
        return 140 + (t * 0.2).astype(np.int64) + rng.integers(0, 16, t.shape)

    def fs_pid(m: int | tuple[int, ...]) -> np.ndarray:
        return rng.integers(26, 36, m)

    # ---- write pipeline ----------------------------------------------------------------
    rx = t0[:, None] + np.cumsum(0.01 + np.minimum(rng.exponential(0.35, (n, 3)), 5.0), axis=1)
    dur = blocks["dur"]
    term = np.empty((n, 3))
    term[:, 2] = rx.max(axis=1) + dur  # the last pipeline node finishes first
    term[:, 1] = term[:, 2] + 0.002 + np.minimum(rng.exponential(0.05, n), 2.0)
    term[:, 0] = term[:, 1] + 0.002 + np.minimum(rng.exponential(0.05, n), 2.0)
    recv = term + rng.uniform(-0.005, 0.03, (n, 3))
    add = np.maximum(term, recv) + 0.01 + np.minimum(rng.exponential(0.4, (n, 3)), 5.0)
    pid_rx = xpid(rx)
    ports = rng.integers(32768, 61000, (n, 3))
    src = np.stack([nodes[:, 0], nodes[:, 0], nodes[:, 1]], axis=1)  # upstream of each replica
    sizes = np.repeat(size[:, None], 3, axis=1)
    t_alloc = t0.copy()

    # ---- anomalies that move or change write events -----------------------------------
    m = is_("stalled", "replica_stalled")
    gap = rng.uniform(1800.0, 5400.0, n)
    for arr in (term, recv, add):
        arr[m, 0] += gap[m]
    m = is_("stalled", "namenode_stalled")
    add[m] += gap[m, None]
    m = is_("wrong_order", "respond_before_receive")
    done = np.maximum(term, recv).max(axis=1)
    rx[m] = done[m, None] + np.cumsum(0.02 + rng.exponential(0.2, (n, 3)), axis=1)[m]
    m = is_("wrong_order", "allocate_late")
    t_alloc[m] = add.max(axis=1)[m] + rng.uniform(0.5, 5.0, int(m.sum()))
    m = is_("unusual_param", "huge_size")
    sizes[m] = rng.integers(4 * FULL_BLOCK_SIZE, 2**36, int(m.sum()))[:, None]
    m = is_("unusual_param", "size_mismatch")
    odd = rng.integers(0, 3, n)
    shrunk = np.maximum((size * rng.uniform(0.05, 0.9, n)).astype(np.int64), 1)
    rows = np.flatnonzero(m)
    sizes[rows, odd[rows]] = np.where(shrunk[rows] == size[rows], size[rows] - 1, shrunk[rows])
    lost = rng.integers(0, 3, n)

    has_alloc = ~is_("missing_step", "no_allocate")
    has_add = ~is_("missing_step", "no_add_stored")
    replica_lost = is_("missing_step", "replica_lost")
    no_resp = is_("missing_step", "no_responder")

    ev = _Events()
    ev.add(_T["allocate"], b[has_alloc], t_alloc[has_alloc], fs_pid(int(has_alloc.sum())))
    for r in range(3):
        keep = ~(replica_lost & (lost == r))
        ev.add(_T["receiving"], b, rx[:, r], pid_rx[:, r], ip1=src[:, r], aux=ports[:, r])
        mt = keep & ~no_resp
        ev.add(_T["responder_terminating"], b[mt], term[mt, r], pid_rx[mt, r] + 1, aux=2 - r)
        ev.add(_T["received"], b[keep], recv[keep, r], pid_rx[keep, r] + 1, ip1=src[keep, r],
               size=sizes[keep, r])
        ev.add(_T["add_stored"], b[has_add], add[has_add, r], fs_pid(int(has_add.sum())),
               ip1=nodes[has_add, r], size=sizes[has_add, r])
    first_t = np.minimum(np.where(has_alloc, t_alloc, np.inf), np.minimum(rx.min(1), term.min(1)))
    first_t = np.minimum(first_t, recv.min(1))
    write_end = np.maximum.reduce([term.max(1), recv.max(1), add.max(1), t_alloc, rx.max(1)])

    # ---- re-replication (normal blocks only) -------------------------------------------
    rb = np.flatnonzero(plan.replicated)
    k = len(rb)
    tgt = np.full(n, -1, dtype=np.int64)
    if k:
        source = nodes[rb, rng.integers(0, 3, k)]
        tgt[rb] = _distinct_others(rng, nodes[rb], d)
        t_ask = write_end[rb] + rng.uniform(2.0, 60.0, k)
        t_start = t_ask + rng.uniform(0.2, 2.0, k)
        t_rx = t_start + rng.uniform(0.05, 1.0, k)
        t_rcv = t_rx + rng.uniform(0.3, 3.0, k)
        t_add = t_rcv + 0.01 + np.minimum(rng.exponential(0.4, k), 5.0)
        pid = xpid(t_rx)
        port = rng.integers(32768, 61000, k)
        ev.add(_T["ask_replicate"], rb, t_ask, fs_pid(k), ip1=source, ip2=tgt[rb])
        ev.add(_T["start_transfer"], rb, t_start, 19, ip1=source, ip2=tgt[rb])
        ev.add(_T["receiving"], rb, t_rx, pid, ip1=source, aux=port)
        ev.add(_T["received_src"], rb, t_rcv, pid, ip1=source, aux=port, size=size[rb])
        ev.add(_T["transmitted"], rb, t_rcv + rng.uniform(0.001, 0.05, k), xpid(t_rcv), ip1=source,
               ip2=tgt[rb])
        ev.add(_T["add_stored"], rb, t_add, fs_pid(k), ip1=tgt[rb], size=size[rb])
        write_end[rb] = t_add

    # ---- injected error events ----------------------------------------------------------
    eb = np.repeat(b, plan.n_err.astype(np.int64))
    ne = len(eb)
    err_tmpl = np.empty(0, dtype=np.int64)
    if ne:
        which = rng.choice(len(_ERROR_KEYS), ne, p=_ERROR_WEIGHTS / _ERROR_WEIGHTS.sum())
        err_tmpl = np.array([_T[key] for key in _ERROR_KEYS])[which]
        pipe = np.isin(err_tmpl, [_T[x] for x in _PIPELINE_ERRORS])
        namenode = np.isin(err_tmpl, [_T[x] for x in _NAMENODE_ERRORS])
        lo, hi = rx.min(1)[eb], np.maximum(term, recv).max(1)[eb]
        t_err = np.where(
            pipe, lo + rng.random(ne) * (hi - lo),
            np.where(namenode, add.max(1)[eb] + rng.uniform(0.1, 30.0, ne),
                     write_end[eb] + rng.uniform(30.0, 3600.0, ne)),
        )
        rr = rng.integers(0, 3, ne)
        responder = np.isin(err_tmpl, [_T["responder_exception"], _T["responder_interrupted"]])
        pid = np.where(namenode, fs_pid(ne), np.where(pipe, pid_rx[eb, rr] + responder, 19))
        ev.add(err_tmpl, eb, t_err, pid, ip1=nodes[eb, rr], aux=2 - rr, size=sizes[eb, rr])
        np.maximum.at(write_end, eb[pipe | namenode], t_err[pipe | namenode])

    # ---- deletion ---------------------------------------------------------------------------
    early = is_("wrong_order", "delete_before_store")
    t_del = write_end + np.clip(rng.lognormal(np.log(3 * 3600.0), 1.0, n), 120.0, 30 * 3600.0)
    t_del[early] = recv.min(1)[early] + 0.001
    db = np.flatnonzero(plan.deleted)
    holders = np.concatenate([nodes, tgt[:, None]], axis=1)  # tgt = -1 unless re-replicated
    del_pid = fs_pid(n)
    for r in range(4):
        h = db[holders[db, r] >= 0]
        ev.add(_T["invalidate"], h, t_del[h] + 0.0001 * (r + 1), del_pid[h], ip1=holders[h, r])
        td = t_del[h] + rng.uniform(1.0, 400.0, len(h))
        top = rng.random(len(h)) < 0.06
        ev.add(np.where(top, _T["deleting_top"], _T["deleting"]), h, td,
               18 + (rng.random(len(h)) < 0.7), aux=rng.integers(0, 64, len(h)))

    # ---- reads and scanner checks between write end and deletion -------------------------
    w_lo = write_end + 1.0
    undeleted_end = write_end + rng.uniform(600.0, 12 * 3600.0, n)
    w_hi = np.where(plan.deleted & ~early, t_del - 1.0, undeleted_end)
    for key, counts in (("served", plan.n_served), ("serve_exception", plan.n_exc),
                        ("verified", plan.n_verif)):
        rb2 = np.repeat(b, counts.astype(np.int64))
        k = len(rb2)
        if not k:
            continue
        t = w_lo[rb2] + rng.random(k) * (w_hi[rb2] - w_lo[rb2])
        pid = np.full(k, 13) if key == "verified" else xpid(t)
        holder = nodes[rb2, rng.integers(0, 3, k)]
        ev.add(_T[key], rb2, t, pid, ip1=holder, ip2=rng.integers(0, d, k))

    return ev.finish(), first_t, eb, err_tmpl


def _time_order(t: np.ndarray) -> np.ndarray:
    """Stable order of events by (float) time: ties keep generation order."""
    return np.argsort(t, kind="stable")
