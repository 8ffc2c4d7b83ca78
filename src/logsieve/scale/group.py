"""``group --engine dask``: an events table -> a partitioned windows dataset, equal to local.

Every partition is grouped by the library's own :func:`logsieve.grouping.windows.group`;
what this module adds is which lines each partition sees, and the global order.

* **Sessions:** a shuffle on the session key. Each line goes to the hash partition of every
  key it names (a line naming two keys goes to both); each partition is grouped locally and
  keeps the sessions of its own keys, which saw every line of their key.
* **Count windows:** by ordered partition. The windows starting in a partition are built
  from its rows plus, for sliding windows, the rows they reach into in the next
  partitions; window numbers are made global from the partition's row offset.
* **Time windows:** a range shuffle on the window number: each line goes to the partition
  of every window it falls in (two or more partitions only near a boundary, for sliding
  windows); each partition keeps its own windows.
* **Labels** from a side file are folded in by the partitions with the library's
  :func:`~logsieve.grouping.labels.key_label_expr`; the check that some labelled key occurs
  is done once over the whole input.
* **Order:** the client sorts the windows' order keys (start, first line, window id) as
  the local path does and each output part gathers its run of that order, so the dataset
  read back part after part is the local windows table, row for row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.grouping.fields import FieldSessions
from logsieve.grouping.labels import as_label_table, iter_label_rows, key_label_expr
from logsieve.grouping.specs import AnySpec, spec_to_dict
from logsieve.grouping.windows import (
    CountWindows,
    Sessions,
    TimeWindows,
    group,
    session_windows,
)
from logsieve.io.tables import encode_meta, read_meta, table_parts
from logsieve.pipeline.jobs import windows_meta
from logsieve.scale.dataset import atomic_dataset, check_dataset_output, part_name
from logsieve.schema import (
    CONTENT,
    EVENT_ID,
    EVENT_IDS,
    LABEL,
    LINE_ID,
    LINE_IDS,
    START,
    TIMESTAMP,
    TS_DTYPE,
    WINDOW_ID,
    WINDOW_SCHEMA,
)

log = logging.getLogger(__name__)

PIECE_ROWS = 1_000_000
"""Rows of an events file one task reads (a part of a dataset is one piece or more)."""
_FIRST = "_first"
_BATCH = 512  # windows per record batch of a partition's sorted file (a part reads whole batches)
_SAMPLE = 64  # one order key in 64 of each sorted file sets where the output parts are cut
_ORDER = [START, _FIRST, WINDOW_ID]  # the local windows table's order

__all__ = ["PIECE_ROWS", "dask_group"]


@dataclass(frozen=True)
class _Piece:
    path: str
    start: int  # first row within the file
    rows: int
    offset: int  # global row number of the first row


def _pieces(events: Path, piece_rows: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    offset = 0
    for part in table_parts(events):
        n = int(pl.scan_parquet(part).select(pl.len()).collect().item())
        for s in range(0, max(n, 1), piece_rows):
            rows = min(piece_rows, n - s)
            pieces.append(_Piece(str(part), s, rows, offset))
            offset += rows
    return pieces


def _columns(path: str, spec: Any, labels: bool) -> list[str]:
    names = pl.scan_parquet(path).collect_schema().names()
    want = [LINE_ID, EVENT_ID, TIMESTAMP, LABEL]
    if labels or isinstance(spec, Sessions):
        want.append(CONTENT)
    return [c for c in want if c in names]


def _read(
    piece: _Piece, columns: list[str], start: int = 0, rows: int | None = None
) -> pl.DataFrame:
    n = piece.rows - start if rows is None else rows
    return pl.scan_parquet(piece.path).slice(piece.start + start, n).select(columns).collect()


def _typed(df: pl.DataFrame) -> pl.DataFrame:
    """The columns grouping needs, typed as the library types them (missing ones null)."""
    exprs = [pl.col(LINE_ID).cast(pl.Int64), pl.col(EVENT_ID).cast(pl.String)]
    for name, dtype in ((TIMESTAMP, TS_DTYPE), (LABEL, pl.Int8)):
        exprs.append(
            pl.col(name).cast(dtype) if name in df.columns else pl.lit(None, dtype).alias(name)
        )
    if CONTENT in df.columns:
        exprs.append(pl.col(CONTENT).cast(pl.String))
    return df.select(exprs)


def _fold_line_labels(
    df: pl.DataFrame, table: pl.DataFrame | None, key_pattern: str
) -> tuple[pl.DataFrame, list[str]]:
    """Line labels from side-file keys, as the local path folds them; also the labelled
    keys that occur here (for the global coverage check)."""
    if table is None:
        return df, []
    keys = pl.col(CONTENT).str.extract_all(key_pattern)
    df = df.with_columns(keys.alias("_keys"))
    found = df["_keys"].explode().drop_nulls().unique()
    matched = table.filter(pl.col("key").is_in(found.implode()))["key"].to_list()
    label = pl.max_horizontal(pl.col(LABEL), key_label_expr(pl.col("_keys"), table))
    return df.with_columns(label.alias(LABEL)).drop("_keys", CONTENT), matched


# ----------------------------------------------------------------------------- map side
def _scatter_time(
    piece: _Piece,
    spec: TimeWindows,
    n_out: int,
    k_range: tuple[int, int],
    table: pl.DataFrame | None,
    columns: list[str],
    key_pattern: str,
    workdir: str,
) -> dict[str, Any]:
    """Split one piece's lines among the output partitions by window-number range (a line
    near a boundary of sliding windows goes to both sides). One file per partition fed."""
    df = _typed(_read(piece, columns))
    info: dict[str, Any] = {"rows": df.height, "dropped": 0, "matched": [], "lo": [], "hi": []}
    if not df.height:
        return info
    first, last = df[LINE_ID][0], df[LINE_ID][-1]
    info.update(lo=[first], hi=[last], sorted=bool(df[LINE_ID].is_sorted()))
    size_us, step_us = _us(spec.size), _us(spec.step)
    df = df.filter(pl.col(TIMESTAMP).is_not_null())
    df, info["matched"] = _fold_line_labels(df, table, key_pattern)
    t = pl.col(TIMESTAMP).dt.epoch("us")
    ks = df.select(pl.int_ranges((t - size_us) // step_us + 1, t // step_us + 1))[TIMESTAMP]
    info["dropped"] = int((ks.list.len() == 0).sum())
    lo, width = k_range
    buckets = ks.list.eval(((pl.element() - lo) * n_out // width).clip(0, n_out - 1)).list.unique()
    _write_buckets(df.with_columns(buckets.alias("_b")).explode("_b"), piece, workdir)
    return info


def _scatter_sessions(
    piece: _Piece, spec: Sessions, columns: list[str], n_out: int, workdir: str
) -> dict[str, Any]:
    """Split one piece into (line, session key) rows, each sent to its key's hash partition.

    The message text stays here: the reduce side gets the key, not the line it came from.
    """
    df = _typed(_read(piece, columns))
    info: dict[str, Any] = {"rows": df.height, "dropped": 0, "matched": [], "lo": [], "hi": []}
    if not df.height:
        return info
    info.update(lo=[df[LINE_ID][0]], hi=[df[LINE_ID][-1]], sorted=bool(df[LINE_ID].is_sorted()))
    keys = df[CONTENT].str.extract_all(spec.pattern)
    counts = keys.list.len()
    info["dropped"] = int((counts == 0).sum())
    if (counts > 1).any():  # a key named twice in a line counts once
        keys = keys.list.unique(maintain_order=True)
    pairs = df.drop(CONTENT).with_columns(keys.alias("_key")).explode("_key").drop_nulls("_key")
    bucket = (pl.col("_key").hash(seed=0) % n_out).cast(pl.Int64)
    _write_buckets(pairs.with_columns(bucket.alias("_b")), piece, workdir)
    return info


def _write_buckets(frame: pl.DataFrame, piece: _Piece, workdir: str) -> None:
    """One Arrow IPC file per partition ``_b`` this piece feeds, rows in line order.

    Uncompressed: written and read once, it costs a third of the CPU of Parquet, at about
    80 bytes a (line, key) row on disk (lz4 would make it 22 bytes, for twice the CPU)."""
    for (b,), sub in frame.drop_nulls("_b").partition_by("_b", as_dict=True).items():
        target = Path(workdir) / f"s-{int(b):05d}-{piece.offset:012d}.arrow"
        sub.drop("_b").write_ipc(target, compression="uncompressed")


def _group_bucket(
    bucket: int,
    files: list[str],
    spec: Sessions | TimeWindows,
    n_out: int,
    k_range: tuple[int, int],
    table: pl.DataFrame | list[str] | None,
    target: str,
    unlisted: int | None = None,
) -> dict[str, Any]:
    """Group one partition's lines locally; keep the windows the partition owns.

    With side-file labels, sessions get the files of label rows of their own keys
    (``unlisted``: the whole table's label for keys it does not name) and count the
    labelled keys they hold (``matched_n``: a key is in one partition only, so the counts
    add up, and the client holds no key lists) and the keys labelled (``label_keys``).
    """
    info: dict[str, Any] = {"windows": 0, "matched_n": 0, "label_keys": 0}
    if isinstance(table, list):  # this partition's labels, one row per key
        table = pl.concat([pl.read_ipc(f) for f in table])
        info["label_keys"] = table.height
    if not files:
        return info
    # file names order the pieces, so the rows come in line order
    df = pl.concat([pl.read_ipc(f) for f in sorted(files)])
    matched = 0
    if isinstance(spec, Sessions):
        pairs = pl.DataFrame({"_pos": np.arange(df.height, dtype=np.int64), "_key": df["_key"]})
        windows = session_windows(df, pairs, spec)
        if table is not None:
            keys = windows["_key"].unique()
            matched = int(keys.is_in(table["key"].implode()).sum())
            key_label = key_label_expr(pl.col("_key"), table, single=True, unlisted=unlisted)
            windows = windows.with_columns(pl.max_horizontal(pl.col(LABEL), key_label).alias(LABEL))
        windows = windows.drop("_key")
    else:  # time windows: lines were labelled on the map side
        windows = group(df.sort(LINE_ID), spec).windows
        step_us = _us(spec.step)
        fmt = "%Y-%m-%dT%H:%M:%SZ" if step_us % 1_000_000 == 0 else "%Y-%m-%dT%H:%M:%S%.6fZ"
        k = pl.col(WINDOW_ID).str.strptime(pl.Datetime("us"), fmt).dt.epoch("us") // step_us
        lo, width = k_range
        windows = windows.filter(((k - lo) * n_out // width).clip(0, n_out - 1) == bucket)
    _write_ranked(windows, target)
    return {**info, "windows": windows.height, "matched_n": matched}


def _count_piece(
    pieces: list[_Piece],
    j: int,
    spec: CountWindows,
    columns: list[str],
    total: int,
    width: int,
    table: pl.DataFrame | None,
    key_pattern: str,
    target: str,
) -> dict[str, Any]:
    """The count windows starting in piece ``j`` (reading on into later pieces as needed)."""
    size, step = spec.size, spec.step
    assert step is not None
    piece = pieces[j]
    lo, hi = piece.offset, piece.offset + piece.rows
    k0, k1 = -(-lo // step), (hi - 1) // step  # windows starting in [lo, hi)
    if piece.rows == 0 or k0 > k1:
        return {"windows": 0, "matched": [], "covered": 0}
    a, b = k0 * step, min(k1 * step + size, total)
    frames = []
    for p in pieces:
        s, e = max(a, p.offset), min(b, p.offset + p.rows)
        if s < e:
            frames.append(_read(p, columns, s - p.offset, e - s))
    df = _typed(pl.concat(frames))
    df, matched = _fold_line_labels(df, table, key_pattern)
    windows = group(df, spec).windows
    k = pl.col(WINDOW_ID).str.slice(1).cast(pl.Int64) + k0
    keep = (k <= k1) & ((k == 0) | ((k - 1) * step + size < total))
    windows = windows.filter(keep).with_columns(
        ("w" + k.cast(pl.String).str.zfill(width)).alias(WINDOW_ID)
    )
    covered = int(windows[EVENT_IDS].list.len().sum() or 0)
    _write_ranked(windows, target)
    return {"windows": windows.height, "matched": matched, "covered": covered}


def _write_ranked(windows: pl.DataFrame, target: str) -> None:
    """A partition's windows in the local order, as uncompressed Arrow IPC in record batches
    of :data:`_BATCH` windows: a final part reads only the batches of its run of them."""
    import pyarrow as pa

    ranked = windows.with_columns(pl.col(LINE_IDS).list.first().alias(_FIRST))
    ranked = ranked.sort(_ORDER, nulls_last=True)
    ranked = (
        ranked.select(list(WINDOW_SCHEMA))
        .cast(WINDOW_SCHEMA)
        .with_columns(ranked[_FIRST].cast(pl.Int64))
    )
    table = ranked.to_arrow()
    with pa.OSFile(target, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=_BATCH)


def _read_run(path: str, lo: int, n: int) -> pl.DataFrame:
    """Rows ``lo .. lo + n - 1`` of a file :func:`_write_ranked` wrote: its batches only."""
    import pyarrow as pa

    first, last = lo // _BATCH, (lo + n - 1) // _BATCH
    with pa.OSFile(path, "rb") as source:
        reader = pa.ipc.open_file(source)
        batches = [reader.get_batch(i) for i in range(first, last + 1)]
        table = pa.Table.from_batches(batches, reader.schema).slice(lo - first * _BATCH, n)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _gather_part(
    files: list[str], runs: list[tuple[int, int, int]], target: str, meta: dict[str, str]
) -> int:
    """One output part: the run ``lo .. hi - 1`` of each sorted partition file named in
    ``runs`` (file index, lo, hi), merged into the local order."""
    frames = [_read_run(files[i], lo, hi - lo) for i, lo, hi in runs if hi > lo]
    if frames:
        merged = pl.concat(frames).sort(_ORDER, nulls_last=True)
    else:
        merged = pl.DataFrame(schema=WINDOW_SCHEMA)
    # written as io.tables.write_table writes the local table (zstd), into the temp dataset
    merged.select(list(WINDOW_SCHEMA)).cast(WINDOW_SCHEMA).write_parquet(target, metadata=meta)
    return merged.height


def _order_keys(path: str) -> pl.DataFrame:
    return pl.scan_ipc(path).select(_ORDER).collect()


def _sample(path: str) -> pl.DataFrame:
    """Every :data:`_SAMPLE`-th order key of a sorted partition file (its first included)."""
    return _order_keys(path).gather_every(_SAMPLE)


def _bounds(path: str, splitters: pl.DataFrame) -> list[int]:
    """Where each part's run of a sorted partition file starts: for each splitter, the first
    row whose order key is at or after it; then the file's end."""
    keys = _order_keys(path).with_columns(pl.lit(1, pl.Int8).alias("_tag"))
    marks = splitters.with_columns(pl.lit(0, pl.Int8).alias("_tag"))  # before an equal row
    merged = pl.concat([keys, marks]).sort([*_ORDER, "_tag"], nulls_last=True)
    at = np.flatnonzero((merged["_tag"] == 0).to_numpy()) - np.arange(marks.height)
    return [0, *at.tolist(), keys.height]


# ----------------------------------------------------------------------------- client
def _us(td: Any) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds


def dask_group(
    client: Any,
    events: str | Path,
    output: str | Path,
    spec: AnySpec,
    *,
    labels: str | Path | None = None,
    key_pattern: str | None = None,
    piece_rows: int = PIECE_ROWS,
) -> dict[str, Any]:
    """Group ``events`` (a file or dataset) on the Dask ``client`` into the dataset ``output``.

    Returns the same summary as :func:`logsieve.pipeline.jobs.group_job`.
    """
    from logsieve.grouping.windows import HDFS_BLOCK_PATTERN

    if isinstance(spec, FieldSessions):
        raise LogsieveError("--session-field is not available with --engine dask yet")
    events = Path(events)
    meta = read_meta(events)
    if not meta.get("templates_mined", True):
        raise LogsieveError(
            "windows of raw messages (parse --no-templates) need --engine local for now"
        )
    inputs = [events] + ([Path(labels)] if labels is not None else [])
    target = check_dataset_output(output, inputs)
    # sessions read the label file in chunks, sharded by key (below); others need it whole
    by_key = labels is not None and isinstance(spec, Sessions)
    table = None if by_key else as_label_table(labels)
    key_pattern = key_pattern or HDFS_BLOCK_PATTERN
    pieces = _pieces(events, piece_rows)
    total = sum(p.rows for p in pieces)
    columns = _columns(pieces[0].path, spec, labels is not None)
    for need in (LINE_ID, EVENT_ID):
        if need not in columns:
            raise LogsieveError(f"events table lacks column(s) {need}")
    n_out = max(1, len(pieces))
    out_meta = encode_meta(windows_meta(meta, spec, labels))
    t0 = time.perf_counter()
    with atomic_dataset(target) as tmp:
        work = tmp / "work"
        work.mkdir()
        tag = f"{id(work)}"
        shuffled = 0  # bytes written by the map side for the reduce side (count: none)
        # windows by count or time: the label table goes to each worker once, not inside
        # every task (sessions get a slice each, below)
        whole = table is not None and not isinstance(spec, Sessions)
        shared = client.scatter(table, broadcast=True) if whole else None
        if isinstance(spec, CountWindows):
            assert spec.step is not None
            last = (total - 1) // spec.step if total else 0
            width = max(6, len(str(last)))
            futures = [
                client.submit(
                    _count_piece, pieces, j, spec, columns, total, width, shared, key_pattern,
                    str(work / f"w-{j:05d}.arrow"), key=f"logsieve-count-{j}-{tag}",
                )
                for j in range(len(pieces))
            ]  # fmt: skip
            results = client.gather(futures)
            covered = sum(r["covered"] for r in results)
            dropped = total - covered if spec.step > spec.size else 0
            _check_sorted_pieces(client, pieces)
        else:
            k_range = (0, 1)
            if isinstance(spec, TimeWindows):
                k_range = _window_range(client, pieces, spec, total)
                scatter = [
                    client.submit(
                        _scatter_time, p, spec, n_out, k_range, shared, columns, key_pattern,
                        str(work), key=f"logsieve-scatter-{i}-{tag}",
                    )
                    for i, p in enumerate(pieces)
                ]  # fmt: skip
            else:
                scatter = [
                    client.submit(
                        _scatter_sessions, p, spec, columns, n_out, str(work),
                        key=f"logsieve-scatter-{i}-{tag}",
                    )
                    for i, p in enumerate(pieces)
                ]  # fmt: skip
            infos = client.gather(scatter)
            log.info("dask: map side done at %.1f s", time.perf_counter() - t0)
            _check_sorted(infos)
            files: dict[int, list[str]] = {}
            shuffled = sum(f.stat().st_size for f in work.glob("s-*.arrow"))
            for f in work.glob("s-*.arrow"):
                files.setdefault(int(f.name[2:7]), []).append(str(f))
            tables, unlisted = _bucket_tables(
                client, labels if by_key else None, n_out, work, shared, tag
            )
            futures = [
                client.submit(
                    _group_bucket, b, files.get(b, []), spec, n_out, k_range, tables[b],
                    str(work / f"w-{b:05d}.arrow"), unlisted,
                    key=f"logsieve-bucket-{b}-{tag}",
                )
                for b in range(n_out)
            ]  # fmt: skip
            results = client.gather(futures)
            log.info("dask: reduce side done at %.1f s", time.perf_counter() - t0)
            dropped = sum(i["dropped"] for i in infos)
            if isinstance(spec, TimeWindows):
                dropped += total - sum(i["rows"] for i in infos)  # null timestamps
                for i in infos:
                    results.append({"matched": i["matched"]})
        if labels is not None:
            n_keys = sum(r.get("label_keys", 0) for r in results)
            _check_coverage(n_keys if table is None else table["key"].n_unique(), results, spec,
                            key_pattern)  # fmt: skip
        files_out = sorted(str(f) for f in work.glob("w-*.arrow"))
        n_windows = _write_ordered(
            client, files_out, target_dir=tmp, n_parts=n_out, meta=out_meta, tag=tag
        )
        log.info("dask: ordered parts written at %.1f s", time.perf_counter() - t0)
        for f in work.iterdir():
            f.unlink()
        work.rmdir()
    summary = _summary(target, total, dropped)
    log.info("dask: %d windows from %d lines", n_windows, total)
    log.info("dask: shuffle of %d bytes (Arrow IPC)", shuffled)
    return {
        "grouping": spec_to_dict(spec),
        **summary,
        "output": str(output),
        "shuffle_bytes": shuffled,
    }


def _bucket_tables(
    client: Any, labels: str | Path | None, n_out: int, work: Path, shared: Any, tag: str
) -> tuple[list[Any], int | None]:
    """What each partition gets of the labels, and the label of keys the file does not name.

    Sessions (``labels`` given): the label file is read a chunk at a time (checked as
    :func:`~logsieve.grouping.labels.read_labels` checks it) and each chunk's rows go to
    files of the partition their key hashes to, as the map side sends the lines; a task per
    partition then keeps one row per key (anomalous wins) in one file. No process holds the
    whole table, and no partition builds a set of every labelled key. Windows by count or
    time labelled their lines on the map side: ``shared``, the whole table.
    """
    if labels is None:
        return [shared] * n_out, None
    files: list[list[str]] = [[] for _ in range(n_out)]
    bucket = (pl.col("key").hash(seed=0) % n_out).cast(pl.Int64).alias("_b")
    for k, rows in enumerate(iter_label_rows(labels)):
        parts = rows.with_columns(bucket).partition_by("_b", as_dict=True, include_key=False)
        for (b,), part in parts.items():
            target = work / f"l-{int(b):05d}-{k:06d}.arrow"
            part.write_ipc(target, compression="uncompressed")
            files[int(b)].append(str(target))
    targets = [str(work / f"labels-{b:05d}.arrow") for b in range(n_out)]
    normal = client.gather(client.map(
        _dedupe_labels, files, targets, key=[f"logsieve-labels-{b}-{tag}" for b in range(n_out)]
    ))  # fmt: skip
    # a table with no normal key is a list of anomalies: keys it does not name are normal
    return [[t] for t in targets], None if any(normal) else 0


def _dedupe_labels(files: list[str], target: str) -> bool:
    """One row per key of a partition's label rows (anomalous wins, as read_labels keeps
    it), in ``target``; whether any key is normal."""
    rows = [pl.read_ipc(f) for f in files]
    table = (
        pl.concat(rows).group_by("key").agg(pl.col(LABEL).max())
        if rows
        else pl.DataFrame(schema={"key": pl.String, LABEL: pl.Int8})
    )
    table.write_ipc(target, compression="uncompressed")
    return bool((table[LABEL] == 0).any())


def _window_range(
    client: Any, pieces: list[_Piece], spec: TimeWindows, total: int
) -> tuple[int, int]:
    """The smallest window number and the span of window numbers over the input."""
    size_us, step_us = _us(spec.size), _us(spec.step)

    def bounds(p: _Piece) -> tuple[Any, Any]:
        t = _read(p, [TIMESTAMP]).select(pl.col(TIMESTAMP).cast(TS_DTYPE).dt.epoch("us"))
        return t[TIMESTAMP].min(), t[TIMESTAMP].max()

    found = [b for b in client.gather(client.map(bounds, pieces)) if b[0] is not None]
    if not found:
        if total:
            raise LogsieveError(
                "time windows need timestamps, and no line has one (check the log format)"
            )
        return (0, 1)
    t0 = min(int(b[0]) for b in found)
    t1 = max(int(b[1]) for b in found)
    lo = (t0 - size_us) // step_us + 1
    hi = t1 // step_us
    return lo, hi - lo + 1


def _check_sorted(infos: list[dict[str, Any]]) -> None:
    prev = None
    for info in infos:
        if not info["lo"]:
            continue
        if not info.get("sorted", True) or (prev is not None and info["lo"][0] <= prev):
            raise LogsieveError(
                "--engine dask needs the events in line order, as parse writes them"
            )
        prev = info["hi"][0]


def _check_sorted_pieces(client: Any, pieces: list[_Piece]) -> None:
    def bounds(p: _Piece) -> dict[str, Any]:
        ids = _read(p, [LINE_ID])[LINE_ID]
        if not len(ids):
            return {"lo": [], "hi": []}
        return {"lo": [ids[0]], "hi": [ids[-1]], "sorted": bool(ids.is_sorted())}

    _check_sorted(client.gather(client.map(bounds, pieces)))


def _check_coverage(total: int, results: list[dict[str, Any]], spec: Any, key_pattern: str) -> None:
    # sessions: each partition counts its own keys; windows by count or time: the keys each
    # piece found, which may repeat across pieces
    found = len({k for r in results for k in r.get("matched", [])})
    found += sum(r.get("matched_n", 0) for r in results)
    what = (
        f"session keys found with {spec.pattern!r}"
        if isinstance(spec, Sessions)
        else f"keys found with {key_pattern!r}"
    )
    log.info("labels: %d of %d labelled keys occur among the %s", found, total, what)
    if not found and total:
        raise LogsieveError(
            f"labels: none of the {total:,} labelled keys occurs among the {what}; "
            "wrong labels file, or wrong key pattern?"
        )


def _write_ordered(
    client: Any, files: list[str], *, target_dir: Path, n_parts: int, meta: dict[str, str], tag: str
) -> int:
    """Write the windows as about ``n_parts`` parts, in the local order.

    A sort by sample: every partition file is sorted already; the client sorts a sample of
    their order keys (one in :data:`_SAMPLE`) and cuts it into ``n_parts`` ranges, each
    file finds where those ranges start in it, and each part merges its runs. The client
    holds the sample only, so its memory does not grow with the number of windows.
    """
    samples = client.gather(
        client.map(_sample, files, key=[f"logsieve-sample-{i}-{tag}" for i in range(len(files))])
    )
    sample = pl.concat(samples).sort(_ORDER, nulls_last=True) if samples else pl.DataFrame()
    cuts = sorted({i * sample.height // n_parts for i in range(1, n_parts)} - {0})
    splitters = sample[cuts] if cuts else sample.clear()
    bounds = client.gather(
        client.map(
            _bounds,
            files,
            splitters=splitters,
            key=[f"logsieve-bounds-{i}-{tag}" for i in range(len(files))],
        )
    )
    futures = []
    for j in range(len(cuts) + 1):
        runs = [(i, b[j], b[j + 1]) for i, b in enumerate(bounds)]
        futures.append(
            client.submit(
                _gather_part, files, runs, str(target_dir / part_name(j)), meta,
                key=f"logsieve-order-{j}-{tag}",
            )
        )  # fmt: skip
    return int(sum(client.gather(futures)))


def _summary(target: Path, lines: int, dropped: int) -> dict[str, int]:
    lab = pl.scan_parquet(sorted(target.glob("part-*.parquet"))).select(LABEL).collect()[LABEL]
    return {
        "windows": lab.len(),
        "anomalous": int((lab == 1).sum()),
        "normal": int((lab == 0).sum()),
        "unlabelled": int(lab.null_count()),
        "lines": lines,
        "lines_dropped": dropped,
    }
