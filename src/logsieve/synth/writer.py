"""Formatting and writing of a synthetic log and its label / kind files.

Events are formatted in time-ordered chunks with Arrow string kernels and written while
the next chunk is formatted; the label files follow Loghub's ``BlockId,Label`` layout.
"""

from __future__ import annotations

import gzip
import io
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logsieve.io.atomic import atomic_path
from logsieve.synth.plan import ANOMALY_KINDS, VARIANTS, _Plan
from logsieve.synth.templates import TEMPLATES

# Event columns and their dtypes: the generator's events table, formatted here.
_COLS = (
    ("tmpl", np.uint8), ("blk", np.int32), ("t", np.float64), ("pid", np.int32),
    ("ip1", np.uint16), ("ip2", np.uint16), ("aux", np.uint16), ("size", np.int64),
)

_PIECES = [tpl.pieces() for tpl in TEMPLATES]


def _format_chunk(
    cols: dict[str, np.ndarray], tables: dict[str, pa.Array], start_s: int
) -> pa.Buffer:
    """Format one time-ordered batch of events into the bytes of its log lines."""
    sec = np.floor(cols["t"]).astype(np.int64)
    change = np.empty(len(sec), dtype=bool)
    change[0] = True
    np.not_equal(sec[1:], sec[:-1], out=change[1:])
    ts_idx = np.cumsum(change) - 1
    uniq = sec[change]
    ts_tab = pc.strftime(pa.array(start_s + uniq, type=pa.timestamp("s")),
                         format="%y%m%d %H%M%S")
    tmpl = cols["tmpl"]
    present = np.flatnonzero(np.bincount(tmpl, minlength=len(TEMPLATES)))
    parts: list[pa.Array] = []
    positions: list[np.ndarray] = []
    for tid in present:
        idx = np.flatnonzero(tmpl == tid)
        args: list[Any] = []
        for piece in _PIECES[tid]:
            if isinstance(piece, str):
                args.append(piece)
                continue
            name = piece[0]
            if name == "ts":
                args.append(ts_tab.take(pa.array(ts_idx[idx])))
            elif name in ("pid", "aux", "size"):
                args.append(pa.array(cols[name][idx]).cast(pa.string()))
            elif name == "path":
                args.append(tables["path"].take(pa.array(cols["blk"][idx])))
            else:
                args.append(tables[name].take(pa.array(cols[name][idx])))
        args.append("")
        parts.append(pc.binary_join_element_wise(*args))
        positions.append(idx)
    joined = pa.concat_arrays(parts) if len(parts) > 1 else parts[0]
    inverse = np.empty(len(tmpl), dtype=np.int64)
    inverse[np.concatenate(positions)] = np.arange(len(tmpl))
    ordered = joined.take(pa.array(inverse))
    return _string_data(ordered)


def _string_data(arr: pa.Array) -> pa.Buffer:
    """The concatenated character data of a (non-null) string array, without copying."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)
    offsets = offsets[arr.offset : arr.offset + len(arr) + 1]
    return arr.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def _write_log(
    path: Path,
    events: dict[str, np.ndarray],
    order: np.ndarray,
    tables: dict[str, pa.Array],
    start_s: int,
    compresslevel: int,
    chunk_lines: int,
) -> None:
    """Format in chunks and write (compression in a background thread overlaps formatting)."""
    total = len(order)
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        fh: io.BufferedIOBase
        if path.name.endswith(".gz"):
            # empty name and mtime 0: the gzip header holds nothing run-dependent
            fh = gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0
            )
        else:
            fh = raw
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: Future[Any] | None = None
            for lo in range(0, total, chunk_lines):
                sel = order[lo : lo + chunk_lines]
                cols = {name: events[name][sel] for name, _ in _COLS}
                buf = _format_chunk(cols, tables, start_s)
                del cols
                if pending is not None:
                    pending.result()
                pending = pool.submit(fh.write, buf)
            if pending is not None:
                pending.result()
        if fh is not raw:
            fh.close()


def _write_labels(
    labels_path: Path,
    kinds_path: Path,
    plan: _Plan,
    blocks: dict[str, Any],
    first_t: np.ndarray,
    err_blk: np.ndarray,
    err_tmpl: np.ndarray,
) -> None:
    """Loghub-style ``BlockId,Label`` (order of first appearance) and ``BlockId,Kind,Detail``."""
    import polars as pl

    order = np.argsort(first_t, kind="stable")
    blk = pl.from_arrow(blocks["blk_str"])
    assert isinstance(blk, pl.Series)
    kind = plan.kind
    labels = pl.DataFrame({
        "BlockId": blk.gather(order),
        "Label": np.where(kind[order] >= 0, "Anomaly", "Normal"),
    })
    with atomic_path(labels_path, suffix=".csv") as tmp:
        labels.write_csv(tmp)

    anom = order[kind[order] >= 0]
    kind_names = np.array(ANOMALY_KINDS, dtype=object)
    detail_tab = np.array(
        [[VARIANTS[k][min(v, len(VARIANTS[k]) - 1)] for v in range(4)] for k in ANOMALY_KINDS],
        dtype=object,
    )
    kinds_df = pl.DataFrame({
        "b": anom,
        "BlockId": blk.gather(anom),
        "Kind": pl.Series(kind_names[kind[anom]].tolist(), dtype=pl.String),
        "Detail": pl.Series(detail_tab[kind[anom], plan.variant[anom]].tolist(), dtype=pl.String),
    })
    if len(err_blk):
        keys = pl.Series([t.key for t in TEMPLATES], dtype=pl.String).gather(err_tmpl)
        err = (
            pl.DataFrame({"b": err_blk, "err": keys})
            .group_by("b", maintain_order=True)
            .agg(pl.col("err").str.join("+"))
        )
        kinds_df = kinds_df.join(err, on="b", how="left", maintain_order="left").with_columns(
            pl.coalesce("err", "Detail").alias("Detail")
        )
    with atomic_path(kinds_path, suffix=".csv") as tmp:
        kinds_df.select("BlockId", "Kind", "Detail").write_csv(tmp)
