"""Features of HTTP access-log windows: status mix, methods, sizes, URL shape and pace.

An events table parsed with an HTTP format (``weblog``, ``clf``, ``combined``) has a
status field, the request line as its message (``GET /path?q HTTP/1.1``), a timestamp
and, for the CLF formats, a response size. Templates only see the request line, so
without these features no model learns that a window is full of 404s or arrived in one
second. :func:`attach_http` turns each window's lines into one fixed-length vector (the
``http`` column, list[f64], names in :data:`HTTP_FEATURES`); :class:`HttpScaler`
standardises it on training windows (z-scores, std at least :data:`MIN_STD`).

Per window (``n`` requests):

- ``log_requests``: log(1 + n); ``log_distinct_urls`` and ``distinct_url_share``: distinct
  URLs (path and query) as log(1 + count) and as a share of ``n``;
- ``share_2xx`` .. ``share_5xx`` (statuses that are not numbers count in none),
  ``log_4xx`` and ``log_5xx`` (log(1 + count));
- ``share_get``, ``share_post``, ``share_head``, ``share_other_method``;
- ``log_size_mean``, ``log_size_max`` (log(1 + bytes)) and ``share_size_zero`` (``-``
  counts as 0): NaN when the format has no size field (``weblog`` has none);
- ``depth_mean``, ``depth_max``: path segments (``/a/b.php`` has 2);
- ``share_static`` (extension in :data:`STATIC_EXTENSIONS`), ``share_query`` (a ``?``),
  ``share_crawler`` and ``log_crawler`` (paths crawlers ask for, :data:`CRAWLER_PATHS`);
- ``log_rate``: log(1 + n / seconds spanned, at least 1 s); ``log_gap_mean``,
  ``log_gap_median``, ``log_gap_max``: log(1 + seconds between consecutive requests, in
  time order); ``share_same_second``: share of gaps of 0 s. NaN with fewer than two
  timed requests.

NaN means "not defined for this window"; :class:`HttpScaler` maps it to the training
mean (0 after standardising). Everything is computed in Polars over all windows at
once and is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.io.tables import scan_table
from logsieve.schema import CONTENT, LINE_ID, LINE_IDS, TIMESTAMP

__all__ = [
    "CRAWLER_PATHS",
    "HTTP",
    "HTTP_FEATURES",
    "MIN_STD",
    "STATIC_EXTENSIONS",
    "HttpScaler",
    "attach_http",
    "http_columns",
    "http_matrix",
    "is_http",
]

#: windows column holding the raw HTTP feature vector (list[f64], :data:`HTTP_FEATURES`)
HTTP = "http"

HTTP_FEATURES: tuple[str, ...] = (
    "log_requests",
    "log_distinct_urls",
    "distinct_url_share",
    "share_2xx",
    "share_3xx",
    "share_4xx",
    "share_5xx",
    "log_4xx",
    "log_5xx",
    "share_get",
    "share_post",
    "share_head",
    "share_other_method",
    "log_size_mean",
    "log_size_max",
    "share_size_zero",
    "depth_mean",
    "depth_max",
    "share_static",
    "share_query",
    "share_crawler",
    "log_crawler",
    "log_rate",
    "log_gap_mean",
    "log_gap_median",
    "log_gap_max",
    "share_same_second",
)

#: floor of the standard deviations of :class:`HttpScaler`
MIN_STD = 0.05

#: file extensions counted as static content (lowercase, no dot)
STATIC_EXTENSIONS: frozenset[str] = frozenset((
    "js", "css", "png", "jpg", "jpeg", "gif", "ico", "svg", "webp", "bmp", "woff", "woff2",
    "ttf", "otf", "eot", "map", "txt", "pdf", "mp4", "webm", "mp3", "zip", "gz",
))  # fmt: skip

#: regex over the lowercased path: files that crawlers and scanners ask for
CRAWLER_PATHS = (
    r"(^|/)(robots\.txt|humans\.txt|ads\.txt|security\.txt|sitemap[^/]*\.xml(\.gz)?)$"
    r"|(^|/)\.well-known/"
)

_STATUS_NAMES = ("status", "staus", "status_code", "code")
_SIZE_NAMES = ("size", "bytes", "body_bytes_sent", "response_size")
_REQUEST_NAMES = ("request", "url")


def _find(names: list[str], wanted: tuple[str, ...]) -> str | None:
    by_lower = {n.lower(): n for n in names}
    for w in wanted:
        if w in by_lower:
            return by_lower[w]
    return None


def http_columns(names: list[str]) -> dict[str, str | None]:
    """Which events columns hold the ``status``, ``request`` line and ``size`` (None: absent).

    The status and size fields are found by name, case-insensitively (``Status``,
    ``Staus``, ``Size``, ``Bytes`` ...); the request line is a ``Request``/``URL`` field
    when the format has one, else the message (``content``).
    """
    request = _find(names, _REQUEST_NAMES) or (CONTENT if CONTENT in names else None)
    return {
        "status": _find(names, _STATUS_NAMES),
        "request": request,
        "size": _find(names, _SIZE_NAMES),
    }


def _names(events: pl.DataFrame | pl.LazyFrame | str | Path) -> list[str]:
    if isinstance(events, (str, Path)):
        return list(scan_table(events).collect_schema().names())
    return list(events.lazy().collect_schema().names())


def is_http(events: pl.DataFrame | pl.LazyFrame | str | Path) -> bool:
    """True when an events table has a status field and a request line (an HTTP format)."""
    cols = http_columns(_names(events))
    return cols["status"] is not None and cols["request"] is not None


def _line_expressions(cols: Mapping[str, str | None]) -> list[pl.Expr]:
    """Per-line derived columns (``__status``, ``__method``, ``__url``, ``__size``, ``__t``)."""
    status = pl.col(str(cols["status"])).cast(pl.String).str.strip_chars()
    request = pl.col(str(cols["request"])).cast(pl.String).fill_null("").str.strip_chars()
    parts = request.str.split(" ")
    one = parts.list.len() <= 1
    method = pl.when(one).then(pl.lit("")).otherwise(parts.list.first().str.to_uppercase())
    url = pl.when(one).then(request).otherwise(parts.list.get(1, null_on_oob=True))
    size: pl.Expr
    if cols["size"] is not None:
        raw = pl.col(str(cols["size"])).cast(pl.String).str.strip_chars()
        size = pl.when(raw == "-").then(pl.lit(0.0)).otherwise(raw.cast(pl.Float64, strict=False))
    else:
        size = pl.lit(None, dtype=pl.Float64)
    return [
        status.cast(pl.Int64, strict=False).alias("__status"),
        method.alias("__method"),
        url.fill_null("").alias("__url"),
        size.alias("__size"),
    ]


def _log1p(expr: pl.Expr) -> pl.Expr:
    return (expr.cast(pl.Float64) + 1.0).log()


def _window_features(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per ``__w`` with the :data:`HTTP_FEATURES` from per-line columns."""
    path = pl.col("__url").str.split("?").list.first().str.to_lowercase()
    segments = path.str.split("/").list.eval(pl.element().filter(pl.element() != "")).list
    last = path.str.split("/").list.last()
    ext = pl.when(last.str.contains(r"\.")).then(last.str.split(".").list.last()).otherwise(None)
    lines = lines.with_columns(
        (pl.col("__status") // 100).alias("__class"),
        segments.len().cast(pl.Float64).alias("__depth"),
        ext.is_in(list(STATIC_EXTENSIONS)).fill_null(False).alias("__static"),
        pl.col("__url").str.contains("?", literal=True).alias("__query"),
        path.str.contains(CRAWLER_PATHS).alias("__crawler"),
    )
    n = pl.len().cast(pl.Float64)
    cls = pl.col("__class")
    method = pl.col("__method")
    t = pl.col("__t").drop_nulls().sort()
    gaps = t.diff().drop_nulls().dt.total_microseconds().cast(pl.Float64) / 1e6
    span = (t.max() - t.min()).dt.total_microseconds().cast(pl.Float64) / 1e6
    timed = t.len()
    size = pl.col("__size")
    has_size = size.drop_nulls().len() > 0
    agg = [
        _log1p(n).alias("log_requests"),
        _log1p(pl.col("__url").n_unique()).alias("log_distinct_urls"),
        (pl.col("__url").n_unique() / n).alias("distinct_url_share"),
        *[((cls == k).sum() / n).alias(f"share_{k}xx") for k in (2, 3, 4, 5)],
        _log1p((cls == 4).sum()).alias("log_4xx"),
        _log1p((cls == 5).sum()).alias("log_5xx"),
        ((method == "GET").sum() / n).alias("share_get"),
        ((method == "POST").sum() / n).alias("share_post"),
        ((method == "HEAD").sum() / n).alias("share_head"),
        ((~method.is_in(["GET", "POST", "HEAD"])).sum() / n).alias("share_other_method"),
        pl.when(has_size).then(_log1p(size.mean())).alias("log_size_mean"),
        pl.when(has_size).then(_log1p(size.max())).alias("log_size_max"),
        pl.when(has_size)
        .then((size == 0).sum() / size.drop_nulls().len())
        .alias("share_size_zero"),
        pl.col("__depth").mean().alias("depth_mean"),
        pl.col("__depth").max().alias("depth_max"),
        (pl.col("__static").sum() / n).alias("share_static"),
        (pl.col("__query").sum() / n).alias("share_query"),
        (pl.col("__crawler").sum() / n).alias("share_crawler"),
        _log1p(pl.col("__crawler").sum()).alias("log_crawler"),
        pl.when(timed >= 2)
        .then(_log1p(timed.cast(pl.Float64) / pl.max_horizontal(span, pl.lit(1.0))))
        .alias("log_rate"),
        pl.when(timed >= 2).then(_log1p(gaps.mean())).alias("log_gap_mean"),
        pl.when(timed >= 2).then(_log1p(gaps.median())).alias("log_gap_median"),
        pl.when(timed >= 2).then(_log1p(gaps.max())).alias("log_gap_max"),
        pl.when(timed >= 2).then((gaps == 0).mean()).alias("share_same_second"),
    ]
    return lines.group_by("__w").agg(agg)


def attach_http(
    windows: pl.DataFrame, events: pl.DataFrame | pl.LazyFrame | str | Path
) -> pl.DataFrame:
    """Add the ``http`` column (list[f64], :data:`HTTP_FEATURES` in order) to ``windows``.

    Each window's ``line_ids`` are looked up in ``events`` (a frame or a Parquet path),
    which must come from an HTTP format (:func:`is_http`); lines missing there are an
    error (the windows and events would not belong together). An empty window gets NaN
    everywhere.
    """
    lf = scan_table(events) if isinstance(events, (str, Path)) else events.lazy()
    names = list(lf.collect_schema().names())
    cols = http_columns(names)
    if cols["status"] is None or cols["request"] is None:
        raise LogsieveError(
            "HTTP features need an events table with a status field and a request line "
            "(parse with --format weblog, clf or combined)"
        )
    empty = pl.lit([], dtype=pl.List(pl.Float64))
    if LINE_IDS not in windows.columns:
        raise LogsieveError(f"windows have no {LINE_IDS!r} column: cannot look up their requests")
    if windows.height == 0:
        return windows.drop(HTTP, strict=False).with_columns(empty.alias(HTTP))
    exploded = (
        windows.select(LINE_IDS)
        .with_row_index("__w")
        .explode(LINE_IDS)
        .filter(pl.col(LINE_IDS).is_not_null())
    )
    needed = exploded.select(pl.col(LINE_IDS).unique().alias(LINE_ID))
    ts = pl.col(TIMESTAMP) if TIMESTAMP in names else pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    lines = (
        lf.join(needed.lazy(), on=LINE_ID, how="semi")
        .select(
            pl.col(LINE_ID), *_line_expressions(cols), ts.alias("__t"), pl.lit(True).alias("__hit")
        )
        .collect()
    )
    joined = exploded.join(lines, left_on=LINE_IDS, right_on=LINE_ID, how="left")
    missing = joined.get_column("__hit").null_count()
    if missing:
        raise LogsieveError(f"{missing} line id(s) of the windows are not in the events table")
    feats = _window_features(joined)
    vector = pl.concat_list([pl.col(c).cast(pl.Float64) for c in HTTP_FEATURES]).alias(HTTP)
    per_window = feats.select("__w", vector)
    nan_row = pl.lit([float("nan")] * len(HTTP_FEATURES), dtype=pl.List(pl.Float64))
    out = windows.drop(HTTP, strict=False).with_row_index("__w")
    out = out.join(per_window, on="__w", how="left", maintain_order="left")
    return out.with_columns(pl.col(HTTP).fill_null(nan_row)).drop("__w")


def http_matrix(windows: pl.DataFrame) -> np.ndarray:
    """The raw ``http`` column as float64 of shape ``(n_windows, len(HTTP_FEATURES))``
    (nulls inside become NaN)."""
    if HTTP not in windows.columns:
        raise LogsieveError(
            "these windows have no HTTP features: group an events table parsed with an HTTP "
            "format (--format weblog, clf or combined), or pass --events EVENTS.parquet"
        )
    width = len(HTTP_FEATURES)
    col = windows.get_column(HTTP)
    if windows.height == 0:
        return np.zeros((0, width), dtype=np.float64)
    lengths = col.list.len().fill_null(0).to_numpy()
    if not (lengths == width).all():
        raise LogsieveError(
            f"the {HTTP!r} column must hold {width} values per window "
            f"(made by this logsieve version's `group`); regroup the windows"
        )
    flat = col.explode().cast(pl.Float64).to_numpy().astype(np.float64)
    return flat.reshape(windows.height, width)


class HttpScaler:
    """Standardise :func:`http_matrix` rows: ``(x - mean) / std`` fitted on training windows.

    NaN (undefined, e.g. no size field, a one-request window) maps to 0, the training
    mean. Every std is at least :data:`MIN_STD` (0.05: the features are shares and logs,
    where 0.05 is a small but real difference), so a column that is constant in training
    (no 5xx ever, no crawler path ever) makes a new value stand out instead of dividing
    by almost zero or being ignored.
    """

    def fit(self, windows: pl.DataFrame) -> Self:
        """Fit mean and std of every feature on ``windows`` (NaN ignored)."""
        x = http_matrix(windows)
        ok = ~np.isnan(x)
        n = ok.sum(axis=0)
        filled = np.where(ok, x, 0.0)
        mean = np.divide(filled.sum(axis=0), n, out=np.zeros(x.shape[1]), where=n > 0)
        var = np.divide(
            (np.where(ok, x - mean, 0.0) ** 2).sum(axis=0), n, out=np.zeros(x.shape[1]), where=n > 0
        )
        std = np.sqrt(var)
        std = np.maximum(std, MIN_STD)
        self.mean_ = mean.astype(np.float32)
        self.std_ = std.astype(np.float32)
        return self

    def transform(self, windows: pl.DataFrame) -> np.ndarray:
        """Standardised features, float32 of shape ``(n_windows, len(HTTP_FEATURES))``."""
        if not hasattr(self, "mean_"):
            raise LogsieveError("HttpScaler is not fitted: call fit() first")
        x = http_matrix(windows)
        z = (x - self.mean_.astype(np.float64)) / self.std_.astype(np.float64)
        return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    @property
    def feature_names_(self) -> list[str]:
        return [f"http:{n}" for n in HTTP_FEATURES]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"http_mean": self.mean_, "http_std": self.std_}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> HttpScaler:
        self = cls()
        self.mean_ = np.asarray(arrays["http_mean"], dtype=np.float32)
        self.std_ = np.asarray(arrays["http_std"], dtype=np.float32)
        width = len(HTTP_FEATURES)
        if self.mean_.shape != (width,) or self.std_.shape != (width,):
            raise LogsieveError(f"saved HTTP scaler: expected {width} columns")
        return self
