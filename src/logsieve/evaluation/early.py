"""Early detection: how many lines of an anomalous window are read before the first alert.

Definition (the study's RQ5, "number of log messages seen before the anomaly is
flagged"): for a test window that is anomalous (label 1) *and* detected (its whole-window
prediction is 1), ``lines_seen`` is the 1-based position of the line at which the
detector first raises an alert, reading the window's lines in order; the line that
raises the alert counts (so ``lines_seen >= 1``, and ``lines_seen == length`` means
only the complete window was flagged).

Two ways to find the first alert:

``positions`` (next-event models: DeepLog, and any model whose ``explain()`` reports
    per-position decisions in the same format): the model predicts every line from the
    lines before it, so the alert comes at the first position whose prediction fails.
    :meth:`explain` returns, per window, ``positions``: the flagged positions (0-based;
    a position equal to the window length is DeepLog's "the window ended here"
    marker). ``lines_seen = min(first flagged position + 1, length)``. A detector
    qualifies when its explanation entries carry ``position`` plus ``expected`` or
    ``rank`` (a next-event prediction), see :func:`supports_positions`.
``prefix`` (whole-window models: classifiers, count-vector models): the window's
    growing prefixes (lines ``1..k`` for ``k = 1..length``) are scored as windows of
    their own, and ``lines_seen`` is the smallest ``k`` whose score is above the
    detector's threshold. Prefixes share ``event_ids`` often, and the detector scores
    each distinct one once; prefixes are scored in batches of ``batch_size`` rows.
    With ``max_prefix`` only prefixes up to that length are tried (and the full window
    always): a window not flagged by then counts as seen to its end.

``method="auto"`` picks ``positions`` when the detector supports it, else ``prefix``.

The price of alerting early: read line by line, a *normal* window may raise an alert
too (a classifier trained on complete windows can find a short prefix suspicious, e.g.
on HDFS where truncated sessions are anomalies). Running :func:`lines_to_first_alert`
on normal windows (with the same method) measures it: the share of them with a
``lines_seen`` is the streaming false-alarm rate. For next-event models it equals the
whole-window false-positive rate (any failed prediction flags the window).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.schema import EVENT_IDS, LINE_IDS, MESSAGES, WINDOW_ID

logger = logging.getLogger(__name__)

__all__ = [
    "EARLY_SCHEMA",
    "early_summary",
    "lines_to_first_alert",
    "resolve_method",
    "supports_positions",
]

EarlyMethod = Literal["auto", "positions", "prefix"]

EARLY_SCHEMA = {
    WINDOW_ID: pl.String,
    "length": pl.Int64,
    "lines_seen": pl.Int64,
    "method": pl.String,
}


def _is_position_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict) and "position" in entry and ("expected" in entry or "rank" in entry)
    )


def supports_positions(detector: Any, probe: pl.DataFrame | None = None) -> bool:
    """Whether ``detector.explain`` gives next-event position decisions.

    With ``probe`` (a few windows), the explanations must each carry a ``positions``
    list whose entries (if any) are next-event entries (``position`` plus ``expected``
    or ``rank``); a window without a failed prediction has an empty list. Without it,
    only an overridden ``explain`` is required.
    """
    explain = getattr(detector, "explain", None)
    if explain is None:
        return False
    from logsieve.detectors.base import BaseDetector

    if getattr(type(detector), "explain", None) is BaseDetector.explain:
        return False
    if probe is None or probe.height == 0:
        return True
    try:
        out = explain(probe.head(5))
    except Exception:  # a model whose explain cannot run here: fall back to prefixes
        logger.debug("explain() failed on probe windows", exc_info=True)
        return False
    if not out:
        return False
    for item in out:
        positions = item.get("positions") if isinstance(item, dict) else None
        if not isinstance(positions, list) or not all(_is_position_entry(p) for p in positions):
            return False
    return True


def _check_method(method: str) -> None:
    if method not in ("auto", "positions", "prefix"):
        raise LogsieveError(
            f"unknown early-detection method {method!r} (auto, positions or prefix)"
        )


def resolve_method(detector: Any, windows: pl.DataFrame, method: EarlyMethod = "auto") -> str:
    """``"positions"`` or ``"prefix"``: the method :func:`lines_to_first_alert` uses."""
    _check_method(method)
    if method == "auto":
        return "positions" if supports_positions(detector, windows) else "prefix"
    if method == "positions" and not supports_positions(detector, windows):
        raise LogsieveError(
            f"{type(detector).__name__} gives no per-position decisions; use method='prefix'"
        )
    return method


def _lengths(windows: pl.DataFrame) -> np.ndarray:
    return windows.get_column(EVENT_IDS).list.len().to_numpy().astype(np.int64)


def _by_positions(detector: Any, windows: pl.DataFrame) -> np.ndarray:
    lengths = _lengths(windows)
    out = detector.explain(windows)
    seen = np.full(windows.height, -1, dtype=np.int64)
    for i, item in enumerate(out):
        flagged = [int(p["position"]) for p in item.get("positions", ()) if _is_position_entry(p)]
        if flagged:
            seen[i] = min(min(flagged) + 1, int(lengths[i]))
    return seen


def _prefix_table(windows: pl.DataFrame, max_prefix: int | None) -> pl.DataFrame:
    n = pl.col(EVENT_IDS).list.len()
    table = windows.with_row_index("__w").with_columns(
        pl.int_ranges(1, n + 1).alias("__k"), n.alias("__n")
    )
    table = table.explode("__k").filter(pl.col("__k").is_not_null())
    if max_prefix:
        table = table.filter((pl.col("__k") <= max_prefix) | (pl.col("__k") == pl.col("__n")))
    cols = [pl.col(EVENT_IDS).list.head(pl.col("__k"))]
    for name in (LINE_IDS, MESSAGES):
        if name in table.columns and isinstance(table.schema[name], pl.List):
            cols.append(pl.col(name).list.head(pl.col("__k")))
    if WINDOW_ID in table.columns:
        cols.append(pl.col(WINDOW_ID) + pl.lit("#") + pl.col("__k").cast(pl.String))
    return table.with_columns(cols)


def _by_prefixes(
    detector: Any, windows: pl.DataFrame, max_prefix: int | None, batch_size: int
) -> np.ndarray:
    table = _prefix_table(windows, max_prefix)
    threshold = float(detector.threshold_)
    seen = np.full(windows.height, -1, dtype=np.int64)
    keep = [c for c in table.columns if not c.startswith("__")]
    for start in range(0, table.height, batch_size):
        part = table.slice(start, batch_size)
        scores = np.asarray(detector.decision_function(part.select(keep)), dtype=np.float64)
        hit = part.select("__w", "__k").filter(pl.Series(scores > threshold))
        if hit.height == 0:
            continue
        first = hit.group_by("__w").agg(pl.col("__k").min())
        w = first.get_column("__w").to_numpy().astype(np.int64)
        k = first.get_column("__k").to_numpy().astype(np.int64)
        current = seen[w]
        seen[w] = np.where((current < 0) | (k < current), k, current)
    return seen


def lines_to_first_alert(
    detector: Any,
    windows: pl.DataFrame,
    *,
    method: EarlyMethod = "auto",
    max_prefix: int | None = None,
    batch_size: int = 20_000,
) -> pl.DataFrame:
    """Lines seen before the first alert, for each window of ``windows``.

    Parameters
    ----------
    detector
        A fitted detector (``decision_function``, ``threshold_``, optionally ``explain``).
    windows
        The windows to analyse: normally the anomalous test windows the detector
        flagged (other windows may give ``lines_seen`` null: never flagged).
    method
        ``"auto"``, ``"positions"`` or ``"prefix"`` (see the module docstring).
    max_prefix
        Longest prefix scored by the ``prefix`` method (None or 0: all).
    batch_size
        Prefix windows scored per call.

    Returns
    -------
    pl.DataFrame
        ``window_id, length, lines_seen, method`` (:data:`EARLY_SCHEMA`), in the
        order of ``windows``; ``lines_seen`` is null for a window never flagged.
    """
    if batch_size < 1:
        raise LogsieveError(f"batch_size must be positive, not {batch_size}")
    if windows.height == 0:
        _check_method(method)
        return pl.DataFrame(schema=EARLY_SCHEMA)
    chosen = resolve_method(detector, windows, method)
    if chosen == "positions":
        seen = _by_positions(detector, windows)
    else:
        seen = _by_prefixes(detector, windows, max_prefix or None, batch_size)
    ids = (
        windows.get_column(WINDOW_ID).cast(pl.String)
        if WINDOW_ID in windows.columns
        else pl.Series([str(i) for i in range(windows.height)])
    )
    return pl.DataFrame(
        {
            WINDOW_ID: ids,
            "length": _lengths(windows),
            "lines_seen": pl.Series("lines_seen", seen, dtype=pl.Int64).scatter(
                np.flatnonzero(seen <= 0), None
            ),
            "method": [chosen] * windows.height,
        },
        schema=EARLY_SCHEMA,
    )


def early_summary(early: pl.DataFrame) -> dict[str, float | int | None]:
    """``n``, ``mean``, ``p25``, ``median``, ``p75``, ``p90``, ``max`` of ``lines_seen`` and
    ``median_fraction`` (lines seen / window length); None values when empty."""
    seen = early.get_column("lines_seen").drop_nulls().to_numpy().astype(np.float64)
    out: dict[str, float | int | None] = {"n": int(seen.size)}
    if seen.size == 0:
        return out | dict.fromkeys(
            ("mean", "p25", "median", "p75", "p90", "max", "median_fraction")
        )
    lengths = (
        early.filter(pl.col("lines_seen").is_not_null())
        .get_column("length")
        .to_numpy()
        .astype(np.float64)
    )
    q = np.quantile(seen, [0.25, 0.5, 0.75, 0.9])
    out.update(
        mean=float(seen.mean()),
        p25=float(q[0]),
        median=float(q[1]),
        p75=float(q[2]),
        p90=float(q[3]),
        max=float(seen.max()),
        median_fraction=float(np.median(seen / np.maximum(lengths, 1.0))),
    )
    return out
