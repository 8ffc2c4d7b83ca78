"""Self-describing tables: Parquet files that carry their provenance.

Every events or windows table logsieve writes holds one Parquet key-value entry,
``logsieve``, a JSON object saying what the table is and how it was made: the table
kind, the log format and masks, the parser state and its hash, the event id -> template
map, and (for windows) the grouping spec. A later stage reads it instead of asking the
user to repeat options, so ``train`` finds the templates of the events it trains on and
``detect`` knows how the training windows were grouped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import InputError
from logsieve.io.atomic import atomic_path

META_KEY = "logsieve"

__all__ = [
    "META_KEY",
    "encode_meta",
    "read_meta",
    "read_table",
    "state_hash",
    "scan_table",
    "table_parts",
    "write_table",
]

PART_GLOB = "part-*.parquet"
"""The files of a partitioned table (a directory written by ``--engine dask``), in name order."""


def table_parts(path: str | Path) -> list[Path]:
    """The Parquet files of a table: ``[path]`` for a file, its sorted parts for a directory.

    A directory is a partitioned dataset (``part-000000.parquet``, ...) committed whole, so
    its parts in name order are the table's rows in order.
    """
    path = Path(path)
    if not path.is_dir():
        return [path]
    parts = sorted(path.glob(PART_GLOB))
    if not parts:
        raise InputError(path, f"a directory with no {PART_GLOB} files: not a logsieve table")
    return parts



def state_hash(state: Mapping[str, Any] | None) -> str | None:
    """SHA-256 of a JSON-able state, independent of key order (None stays None)."""
    if state is None:
        return None
    blob = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def encode_meta(meta: Mapping[str, Any] | None) -> dict[str, str]:
    """The Parquet key-value metadata for ``meta`` (empty when None)."""
    if not meta:
        return {}
    return {META_KEY: json.dumps(meta, sort_keys=True, separators=(",", ":"))}


def write_table(df: pl.DataFrame, path: str | Path, meta: Mapping[str, Any] | None) -> None:
    """Write ``df`` to Parquet atomically, with ``meta`` as its provenance."""
    with atomic_path(path, suffix=".parquet") as tmp:
        df.write_parquet(tmp, metadata=encode_meta(meta) or None)


def scan_table(path: str | Path) -> pl.LazyFrame:
    """A lazy scan of a table: a Parquet file or a partitioned directory (parts in order)."""
    parts = table_parts(path)
    return pl.scan_parquet(parts if len(parts) > 1 else parts[0])


def read_meta(path: str | Path) -> dict[str, Any]:
    """The provenance of a table written by logsieve (an empty dict for any other Parquet).

    ``path`` may be a partitioned dataset (a directory); every part carries the same
    provenance, so the first part's is read.
    """
    path = table_parts(path)[0]
    try:
        raw = pl.read_parquet_metadata(path)
    except FileNotFoundError as exc:
        raise InputError(path, "file not found") from exc
    except Exception as exc:  # polars raises several error types on files that are not Parquet
        raise InputError(path, f"not a readable Parquet file ({_first_line(exc)})") from exc
    text = raw.get(META_KEY)
    if not text:
        return {}
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"damaged logsieve metadata ({exc.msg})") from exc
    if not isinstance(meta, dict):
        raise InputError(path, "damaged logsieve metadata (not a JSON object)")
    return meta


def read_table(
    path: str | Path, columns: list[str] | None = None
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Read a Parquet table (a file or a partitioned directory) and its provenance, with
    one-line errors naming the file."""
    path = Path(path)
    meta = read_meta(path)
    try:
        parts = table_parts(path)
        df = pl.read_parquet(parts if len(parts) > 1 else parts[0], columns=columns)
    except Exception as exc:
        raise InputError(path, f"not a readable Parquet table ({_first_line(exc)})") from exc
    return df, meta


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
