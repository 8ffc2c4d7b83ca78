"""Import sequences that were parsed and grouped elsewhere.

Three text formats are read into a windows table (:data:`logsieve.schema.WINDOW_SCHEMA`):

``deeplog``
    One session per line, space-separated integer log keys, no id, no header
    (DeepLog's ``hdfs_train`` / ``hdfs_test_abnormal``). Window ids are
    ``<file name>:<line number>`` (1-based, counting every physical line).
``id_keys``
    ``<sequence id>,<space-separated keys>`` per line, no header (the sequence files
    of Landauer et al., e.g. ``hadoop_loghub/hadoop_train``). The id becomes the
    window id.
``keys_label``
    A CSV with the header ``Sequence,label`` (LogRobust-style ``robust_log_*.csv``):
    keys then a 0/1 label per row. Window ids as for ``deeplog``. The per-row label
    wins over the ``label`` argument unless that is given explicitly.

Keys become event ids of the parsed-log namespace: key ``5`` -> ``"E5"`` (leading
zeros dropped; a key already written ``E5`` is kept). Imported windows have no raw
lines: ``line_ids`` is an empty list, ``start``/``end`` are null, and the table keeps
file order. Blank lines are skipped (their line numbers are not reused).

Label inference from the file name (when ``label`` is None): a name ending in
``_train`` or ``_test_normal`` is normal (0), one containing ``_test_abnormal``
(``hadoop_test_abnormal_disk_full`` too) is anomalous (1), anything else is null.
"""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path
from typing import Literal

import polars as pl

from logsieve.errors import InputError, LogsieveError
from logsieve.schema import (
    END,
    EVENT_ID,
    EVENT_IDS,
    LABEL,
    LINE_IDS,
    START,
    TEMPLATE,
    WINDOW_ID,
    WINDOW_SCHEMA,
)

logger = logging.getLogger(__name__)

SequenceFormat = Literal["auto", "deeplog", "id_keys", "keys_label"]

EVENT_ID_COL = EVENT_ID
_KEY_RE = r"^E?\d+$"
_EXTENSIONS = re.compile(r"\.(txt|csv|seq|log)$", re.IGNORECASE)
_ABNORMAL = re.compile(r"(^|_)test_abnormal(_|$)")
_NORMAL = re.compile(r"(^|_)(train|test_normal)$")
_KEYS_LABEL_HEADER = re.compile(r"^\s*sequence\s*,\s*label\s*$", re.IGNORECASE)


def _read_text(path: Path) -> str:
    """Whole file as text (``.gz`` transparently), with a clear error on failure."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(path, "not valid UTF-8 text", line=line) from exc


def _lines(path: Path) -> pl.DataFrame:
    """Non-blank physical lines of ``path`` with their 1-based line number."""
    text = _read_text(path)
    df = pl.DataFrame({"text": text.split("\n")}).with_row_index("lineno", offset=1)
    df = df.with_columns(pl.col("text").str.strip_chars_end("\r"))
    return df.filter(pl.col("text").str.strip_chars() != "")


def _file_stem(path: Path) -> str:
    """File name without ``.gz`` and a text extension (``hdfs_train.txt`` -> ``hdfs_train``)."""
    name = path.name
    name = name.removesuffix(".gz")
    return _EXTENSIONS.sub("", name)


def infer_label(path: str | Path) -> int | None:
    """Label implied by a sequence file's name: 0, 1, or None when the name says nothing.

    >>> infer_label("hdfs_test_abnormal"), infer_label("hadoop_train"), infer_label("x")
    (1, 0, None)
    """
    stem = _file_stem(Path(path)).lower()
    if _ABNORMAL.search(stem):
        return 1
    if _NORMAL.search(stem):
        return 0
    return None


def _detect_format(path: Path, lines: pl.DataFrame) -> str:
    if lines.height == 0:
        return "deeplog"
    first = lines["text"][0]
    if _KEYS_LABEL_HEADER.match(first):
        return "keys_label"
    if "," in first:
        return "id_keys"
    return "deeplog"


def _keys_to_event_ids(path: Path, df: pl.DataFrame, col: str) -> pl.DataFrame:
    """Split the space-separated key column ``col`` into a validated ``event_ids`` list."""
    df = df.with_columns(pl.col(col).str.extract_all(r"\S+").alias(EVENT_IDS))
    bad = df.filter(~pl.col(EVENT_IDS).list.eval(pl.element().str.contains(_KEY_RE)).list.all())
    if bad.height:
        row = bad.row(0, named=True)
        token = next(t for t in row[EVENT_IDS] if not re.match(_KEY_RE, t))
        raise InputError(
            path,
            f"bad log key {token!r}: keys must be non-negative integers (or E<n>)",
            line=row["lineno"],
        )
    norm = pl.lit("E") + pl.element().str.replace(r"^E?0*(\d)", "$1")
    return df.with_columns(pl.col(EVENT_IDS).list.eval(norm))


def read_sequences(
    path: str | Path,
    label: int | None = None,
    fmt: SequenceFormat = "auto",
) -> pl.DataFrame:
    """Read one pre-parsed sequence file into a windows table.

    Parameters
    ----------
    path
        Sequence file (``.gz`` accepted).
    label
        Label of every window (0 or 1). None: per-row labels for ``keys_label``,
        otherwise inferred from the file name (see :func:`infer_label`), else null.
    fmt
        ``"auto"`` (header ``Sequence,label`` -> keys_label; a comma on the first
        line -> id_keys; else deeplog), ``"deeplog"``, ``"id_keys"`` or ``"keys_label"``.

    Returns
    -------
    pl.DataFrame
        Windows table with exactly ``WINDOW_SCHEMA``, in file order.
    """
    path = Path(path)
    if label not in (None, 0, 1):
        raise LogsieveError(f"label must be 0, 1 or None, not {label!r}")
    if fmt not in ("auto", "deeplog", "id_keys", "keys_label"):
        raise LogsieveError(f"unknown sequence format {fmt!r} (auto, deeplog, id_keys, keys_label)")
    lines = _lines(path)
    kind = _detect_format(path, lines) if fmt == "auto" else fmt
    stem = _file_stem(path)
    row_label: pl.Expr | None = None

    if kind == "deeplog":
        df = lines.with_columns(
            (pl.lit(f"{stem}:") + pl.col("lineno").cast(pl.String)).alias(WINDOW_ID),
            pl.col("text").alias("keys"),
        )
    elif kind == "id_keys":
        df = lines.with_columns(pl.col("text").str.splitn(",", 2).alias("_parts")).with_columns(
            pl.col("_parts").struct.field("field_0").str.strip_chars().alias(WINDOW_ID),
            pl.col("_parts").struct.field("field_1").alias("keys"),
        )
        missing = df.filter(pl.col("keys").is_null())
        if missing.height:
            raise InputError(
                path, "expected '<id>,<keys>' (no comma found)", line=missing["lineno"][0]
            )
    elif kind == "keys_label":
        if lines.height == 0 or not _KEYS_LABEL_HEADER.match(lines["text"][0]):
            raise InputError(path, "expected the header 'Sequence,label'", line=1)
        df = lines.slice(1).with_columns(pl.col("text").str.splitn(",", 2).alias("_parts"))
        df = df.with_columns(
            (pl.lit(f"{stem}:") + pl.col("lineno").cast(pl.String)).alias(WINDOW_ID),
            pl.col("_parts").struct.field("field_0").alias("keys"),
            pl.col("_parts").struct.field("field_1").str.strip_chars().alias("_label"),
        )
        bad = df.filter(~pl.col("_label").is_in(["0", "1"]) | pl.col("_label").is_null())
        if bad.height:
            raise InputError(
                path, f"label must be 0 or 1, not {bad['_label'][0]!r}", line=bad["lineno"][0]
            )
        row_label = pl.col("_label").cast(pl.Int8)
    else:  # pragma: no cover - guarded above
        raise LogsieveError(f"unknown sequence format {kind!r}")

    df = _keys_to_event_ids(path, df, "keys")
    if label is not None:
        label_expr = pl.lit(label, dtype=pl.Int8)
    elif row_label is not None:
        label_expr = row_label
    else:
        label_expr = pl.lit(infer_label(path), dtype=pl.Int8)

    out = df.select(
        pl.col(WINDOW_ID),
        pl.col(EVENT_IDS),
        pl.lit([], dtype=pl.List(pl.Int64)).alias(LINE_IDS),
        pl.lit(None, dtype=WINDOW_SCHEMA[START]).alias(START),
        pl.lit(None, dtype=WINDOW_SCHEMA[END]).alias(END),
        label_expr.alias(LABEL),
    ).cast(WINDOW_SCHEMA)
    logger.info("read %d sequences from %s (format %s)", out.height, path, kind)
    if kind == "id_keys":
        dup = out.height - out[WINDOW_ID].n_unique()
        if dup:
            logger.warning("%s: %d duplicate sequence ids", path, dup)
    return out


def read_templates(path: str | Path) -> pl.DataFrame:
    """Read a template list into ``event_id, template``.

    Three layouts: what ``logsieve parse --templates-out`` writes (header
    ``event_id,template[,count]``), a Loghub ``*_templates.csv`` (header
    ``EventId,EventTemplate[,Occurrences]``), or a plain file with one template per line,
    event id *n* being line *n* (``ait_sequences/templates/*.csv``; commas inside
    templates are kept). Numeric ids are normalised as in :func:`read_sequences`
    (``5`` -> ``"E5"``).
    """
    path = Path(path)
    text = _read_text(path)
    first = text.split("\n", 1)[0].strip().lstrip("\ufeff")
    header = [h.strip().lower() for h in first.split(",")]
    for id_col, tpl_col in (("event_id", "template"), ("eventid", "eventtemplate")):
        if header[:2] == [id_col, tpl_col]:
            names = first.split(",")[:2]
            try:
                df = pl.read_csv(path, infer_schema=False, columns=[n.strip() for n in names])
            except Exception as exc:  # polars raises several error types on bad CSV
                raise InputError(path, f"cannot read templates CSV: {exc}") from exc
            df.columns = ["__id", "__tpl"]
            ids = pl.col("__id").str.strip_chars()
            ids = (
                pl.when(ids.str.contains(_KEY_RE))
                .then(pl.lit("E") + ids.str.replace(r"^E?0*(\d)", "$1"))
                .otherwise(ids)
            )
            return df.select(ids.alias(EVENT_ID_COL), pl.col("__tpl").alias(TEMPLATE))
    rows = pl.DataFrame({TEMPLATE: text.split("\n")}).with_row_index("n", offset=1)
    rows = rows.with_columns(pl.col(TEMPLATE).str.strip_chars_end("\r"))
    if rows.height and rows[TEMPLATE][-1] == "":
        rows = rows.slice(0, rows.height - 1)  # the final newline
    return rows.select(
        (pl.lit("E") + pl.col("n").cast(pl.String)).alias(EVENT_ID_COL), pl.col(TEMPLATE)
    )


def concat_windows(*tables: pl.DataFrame) -> pl.DataFrame:
    """Stack windows tables (in argument order) into one with exactly ``WINDOW_SCHEMA``.

    Accepts tables or one iterable of tables. Duplicate window ids are kept (logged).
    """
    if len(tables) == 1 and not isinstance(tables[0], pl.DataFrame):
        tables = tuple(tables[0])
    if not tables:
        return pl.DataFrame(schema=WINDOW_SCHEMA)
    parts = []
    for i, t in enumerate(tables):
        missing = [c for c in WINDOW_SCHEMA if c not in t.columns]
        if missing:
            raise LogsieveError(f"windows table #{i + 1} lacks column(s) {', '.join(missing)}")
        parts.append(t.select(list(WINDOW_SCHEMA)).cast(WINDOW_SCHEMA))
    out = pl.concat(parts, how="vertical")
    dup = out.height - out[WINDOW_ID].n_unique()
    if dup:
        logger.warning("concatenated windows hold %d duplicate window ids", dup)
    return out
