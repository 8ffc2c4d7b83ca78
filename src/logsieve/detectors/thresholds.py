"""How a detector's decision threshold is chosen: the quantile and best-F1 rules.

Every detector picks its threshold when it is fitted (:meth:`BaseDetector.fit`), so the
rules belong to the detector stage; :mod:`logsieve.evaluation.metrics` re-exports
:func:`best_f1_threshold` for evaluation code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from logsieve.errors import LogsieveError

__all__ = [
    "STRATEGIES",
    "best_f1_threshold",
    "check_labels",
    "check_scores",
    "check_threshold",
    "quantile_threshold",
    "score_curve",
]

#: named threshold strategies (a number is a fixed threshold)
STRATEGIES = ("auto", "quantile", "best_f1")


def check_threshold(value: Any) -> None:
    """Raise :class:`LogsieveError` unless ``value`` is a strategy name or a number."""
    if isinstance(value, bool) or not (isinstance(value, (int, float)) or value in STRATEGIES):
        raise LogsieveError(
            f"threshold must be 'auto', 'quantile', 'best_f1' or a number, not {value!r}"
        )


def check_labels(y: ArrayLike, what: str = "y_true") -> np.ndarray:
    """``y`` as a one-dimensional int8 array of 0 and 1 (bools allowed)."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise LogsieveError(f"{what} must be one-dimensional, not shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int8)
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise LogsieveError(f"{what} must hold only 0 and 1")
    return arr.astype(np.int8)


def check_scores(s: ArrayLike, n: int) -> np.ndarray:
    """``s`` as finite float64 scores of shape ``(n,)``."""
    arr = np.asarray(s, dtype=np.float64)
    if arr.shape != (n,):
        raise LogsieveError(f"scores must have shape ({n},), not {arr.shape}")
    if not np.isfinite(arr).all():
        raise LogsieveError("scores must be finite (no nan or inf)")
    return arr


def score_curve(t: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative TP and FP counts at each distinct score, highest score first."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    t_sorted = t[order].astype(np.int64)
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # last index of each tie group
    tps = np.cumsum(t_sorted)[last]
    fps = np.cumsum(1 - t_sorted)[last]
    return tps, fps, s_sorted[last]


def best_f1_threshold(y_true: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """Threshold ``t`` maximising F1 of the rule ``score > t``, and that F1.

    ``t`` is the midpoint between the lowest flagged score and the next lower
    distinct score (or 1 below the lowest score when everything is flagged).
    Ties in F1 go to the higher threshold (fewer alarms). Meant for VALIDATION data:
    choosing it on test data is leakage.
    """
    t = check_labels(y_true)
    s = check_scores(scores, t.size)
    n_pos = int(t.sum())
    if n_pos == 0:
        raise LogsieveError("best-F1 threshold needs at least one anomalous (label 1) window")
    tps, fps, levels = score_curve(t, s)
    f1s = 2 * tps / (2 * tps + fps + (n_pos - tps))
    k = int(np.argmax(f1s))  # first maximum = highest threshold
    lower = levels[k + 1] if k + 1 < len(levels) else levels[k] - 1.0
    return float((levels[k] + lower) / 2.0), float(f1s[k])


def quantile_threshold(scores: ArrayLike, contamination: float) -> float:
    """The ``1 - contamination`` quantile of normal windows' scores (``method="higher"``).

    ``contamination`` is thus the share of normal windows tolerated above the threshold.
    """
    values = np.asarray(scores, dtype=np.float64)
    return float(np.quantile(values, 1.0 - float(contamination), method="higher"))
