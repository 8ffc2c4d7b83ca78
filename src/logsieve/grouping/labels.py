"""Side-file labels: which session keys (e.g. HDFS block ids) are anomalous.

A label table has two columns, ``key`` (str) and ``label`` (int8, 1 = anomalous,
0 = normal). :func:`read_labels` reads it from either

- a CSV with a header and two columns, key then label (Loghub ``anomaly_label.csv``:
  ``BlockId,Label`` with ``Normal``/``Anomaly``; ``0``/``1``, ``normal``/``abnormal``
  are accepted too), or
- a plain list of anomalous keys, one per line (no comma anywhere in the first line).

A file that is neither is refused with a one-line :class:`~logsieve.errors.InputError`
naming the file and line: a CSV with only a header, a value that is not a label, a "key"
holding whitespace (a log file given as labels), text that is not UTF-8.

**Unlisted keys.** A table that holds no normal row is a list of anomalies: keys it does
not name are *normal* (0). A table with normal rows is taken as explicit: keys it does not
name are *unknown* (null). :func:`unlisted_label` encodes this rule.

**Coverage.** :func:`label_coverage` tells how many of a table's keys occur in the data;
grouping refuses a table none of whose keys occurs (wrong file, or wrong key pattern),
since every window would silently come out normal or unknown.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from logsieve.errors import InputError, LogsieveError
from logsieve.schema import LABEL

logger = logging.getLogger(__name__)

KEY = "key"
LABEL_SCHEMA = pl.Schema({KEY: pl.String, LABEL: pl.Int8})

_HEADER_ONLY = "no labels: the file holds only a header row"
_NORMAL_WORDS = ["0", "normal", "false", "-"]
_ANOMALY_WORDS = ["1", "anomaly", "anomalous", "abnormal", "true"]


def _lines(text: str, first_lineno: int) -> pl.DataFrame:
    """Numbered, stripped, non-empty lines (split in Polars, not into a list of str)."""
    lines = pl.Series("text", [text]).str.split("\n").explode().to_frame()
    lines = lines.with_row_index("lineno", offset=first_lineno)
    return lines.with_columns(pl.col("text").str.strip_chars()).filter(pl.col("text") != "")


def _parse_rows(lines: pl.DataFrame, path: Path, *, csv: bool, first: bool) -> pl.DataFrame:
    """``key, label`` rows of some numbered lines of a label file (checked; not deduplicated).

    ``csv``: the file's layout (its first line holds a comma); ``first``: these lines start
    the file, so the first may be a header.
    """
    if not csv:
        table = lines.select(pl.col("text").alias(KEY), pl.lit(1, dtype=pl.Int8).alias(LABEL))
        spaced = lines.filter(pl.col("text").str.contains(r"\s"))
        if spaced.height:
            raise InputError(
                path,
                "not a labels file: a key holds whitespace (expected a 'key,label' CSV "
                "or one anomalous key per line; is this a log file?)",
                line=spaced["lineno"][0],
            )
        bad = lines.filter(pl.col("text").str.contains(","))
        if bad.height:
            raise InputError(
                path, "mixed layout: a comma in a plain list of keys", line=bad["lineno"][0]
            )
    else:
        parts = lines.with_columns(pl.col("text").str.splitn(",", 3).alias("_p")).with_columns(
            pl.col("_p").struct.field("field_0").str.strip_chars().str.strip_chars('"').alias(KEY),
            pl.col("_p")
            .struct.field("field_1")
            .str.strip_chars()
            .str.strip_chars('"')
            .str.to_lowercase()
            .alias("_v"),
        )
        value = (
            pl.when(pl.col("_v").is_in(_ANOMALY_WORDS))
            .then(pl.lit(1, dtype=pl.Int8))
            .when(pl.col("_v").is_in(_NORMAL_WORDS))
            .then(pl.lit(0, dtype=pl.Int8))
        )
        parts = parts.with_columns(value.alias(LABEL))
        header = first and parts[LABEL][0] is None  # the first row is a header unless it parses
        body = parts.slice(1) if header else parts
        no_comma = body.filter(pl.col("_v").is_null())
        if no_comma.height:
            raise InputError(path, "not a key,label row (no comma)", line=no_comma["lineno"][0])
        bad = body.filter(pl.col(LABEL).is_null())
        if bad.height:
            raise InputError(
                path,
                f"label must be Normal/Anomaly or 0/1, not {bad['_v'][0][:40]!r}",
                line=bad["lineno"][0],
            )
        empty = body.filter(pl.col(KEY) == "")
        if empty.height:
            raise InputError(path, "empty key", line=empty["lineno"][0])
        table = body.select(KEY, LABEL)

    return table


def read_labels(path: str | Path) -> pl.DataFrame:
    """Read a side file of key labels into a ``key, label`` table (one row per key).

    A key listed twice with different labels is anomalous (logged). See the module
    docstring for the accepted layouts and for what unlisted keys mean.
    """
    path = Path(path)
    table = pl.concat(list(iter_label_rows(path)))  # the same reader and checks as Dask's
    n_rows = table.height
    table = table.group_by(KEY, maintain_order=True).agg(pl.col(LABEL).max())
    conflicts = n_rows - table.height
    if conflicts:
        logger.warning(
            "%s: %d repeated keys (a key labelled anomalous anywhere is anomalous)", path, conflicts
        )
    logger.info(
        "read %d key labels from %s (%d anomalous)",
        table.height,
        path,
        int((table[LABEL] == 1).sum()),
    )
    return table.cast(LABEL_SCHEMA)


def as_label_table(labels: str | Path | pl.DataFrame | None) -> pl.DataFrame | None:
    """A validated label table from a path or a DataFrame (``key``/``label`` columns).

    None stays None.
    """
    if labels is None:
        return None
    if isinstance(labels, (str, Path)):
        return read_labels(labels)
    if not isinstance(labels, pl.DataFrame):
        raise LogsieveError(f"labels must be a path or a DataFrame, not {type(labels).__name__}")
    missing = [c for c in LABEL_SCHEMA if c not in labels.columns]
    if missing:
        raise LogsieveError(
            f"label table lacks column(s) {', '.join(missing)} (expected key, label)"
        )
    table = labels.select(KEY, LABEL).cast(LABEL_SCHEMA).drop_nulls()
    return table.group_by(KEY, maintain_order=True).agg(pl.col(LABEL).max())


class LabelCoverage(NamedTuple):
    """How many of a label table's keys occur in the data."""

    matched: int
    total: int


def label_coverage(table: pl.DataFrame, keys: pl.Series) -> LabelCoverage:
    """(keys of ``table`` found among ``keys``, keys in ``table``).

    ``keys`` are the keys found in the data: a string Series, or a list[str] Series with
    the keys of each line or window.
    """
    if isinstance(keys.dtype, pl.List):
        keys = keys.explode()
    found = keys.drop_nulls().unique().cast(pl.String).to_frame(KEY)
    matched = table.select(KEY).unique().join(found, on=KEY, how="semi").height
    return LabelCoverage(matched, table[KEY].n_unique())


def iter_label_rows(path: str | Path, chunk_bytes: int = 4 << 20) -> Iterator[pl.DataFrame]:
    """The ``key, label`` rows of a label file, a chunk of about ``chunk_bytes`` at a time,
    with the checks of :func:`read_labels` (not deduplicated: a key may repeat across
    chunks). Memory stays at one chunk, whatever the file's size."""
    path = Path(path)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    lineno, csv, rest, seen, rows = 1, False, b"", False, 0
    try:
        with opener(path, "rb") as fh:
            while True:
                block = fh.read(chunk_bytes)
                data = rest + block
                cut = data.rfind(b"\n") + 1 if block else len(data)
                data, rest = data[:cut], data[cut:]
                if data:
                    try:
                        text = data.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        line = lineno + data[: exc.start].count(b"\n")
                        raise InputError(path, "not valid UTF-8 text", line=line) from exc
                    if not seen:
                        text = text.lstrip("\ufeff")
                    lines = _lines(text, lineno)
                    lineno += text.count("\n")
                    if lines.height:
                        first = not seen
                        if first:
                            csv, seen = "," in lines["text"][0], True
                        table = _parse_rows(lines, path, csv=csv, first=first)
                        rows += table.height
                        yield table
                if not block:
                    break
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
    if not seen:
        raise InputError(path, "no labels in file")
    if not rows:
        raise InputError(path, _HEADER_ONLY)


def unlisted_label(table: pl.DataFrame) -> int | None:
    """Label of keys a table does not name: 0 for a pure anomaly list, else None (unknown)."""
    return 0 if int((table[LABEL] == 0).sum()) == 0 else None


def key_label_expr(
    keys: pl.Expr, table: pl.DataFrame, *, single: bool = False, unlisted: int | None = -1
) -> pl.Expr:
    """Per-row label of a list[str] column of keys: 1 when any key is anomalous, 0 when any
    key is known (or unlisted keys are normal) and none is anomalous, null otherwise.
    Rows without any key get null. ``single``: ``keys`` is one str key per row (a session's),
    the same rule without the list. ``unlisted``: the label of keys the table does not
    name, when ``table`` is a slice of the label table (default: :func:`unlisted_label`)."""
    anomalous = table.filter(pl.col(LABEL) == 1)[KEY].implode()
    listed = table[KEY].implode()
    if unlisted == -1:
        unlisted = unlisted_label(table)
    if single:
        is_anomalous = keys.is_in(anomalous)
        known = keys.is_not_null() if unlisted == 0 else keys.is_in(listed)
    else:
        is_anomalous = keys.list.eval(pl.element().is_in(anomalous)).list.any()
        if unlisted == 0:
            known = keys.list.len() > 0
        else:
            known = keys.list.eval(pl.element().is_in(listed)).list.any()
    return (
        pl.when(is_anomalous)
        .then(pl.lit(1, dtype=pl.Int8))
        .when(known)
        .then(pl.lit(0, dtype=pl.Int8))
        .otherwise(pl.lit(None, dtype=pl.Int8))
    )
