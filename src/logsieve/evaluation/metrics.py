"""Detection metrics from labels, 0/1 predictions and anomaly scores (NumPy only).

Conventions: label 1 = anomaly (positive), 0 = normal; scores are HIGHER = MORE
ANOMALOUS.

Degenerate cases (documented, never a ZeroDivisionError or a warning):

- a ratio whose denominator is zero is **nan** ("undefined"): precision with no
  predicted positives, recall with no actual positives, specificity with no actual
  negatives;
- F1 is computed as ``2TP / (2TP + FP + FN)``, so it is 0 when there are positives
  but none is found, and nan only when there is neither a positive nor an alarm;
- MCC is 0 when any row or column of the confusion matrix is empty (the usual
  convention, as in scikit-learn);
- ROC-AUC and PR-AUC (average precision) are nan when ``y_true`` holds one class only.

Ties in scores: ROC-AUC counts a tied (positive, negative) pair as one half (the
Mann-Whitney statistic); average precision treats tied scores as one threshold, as
scikit-learn's ``average_precision_score`` does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from logsieve.detectors.thresholds import best_f1_threshold
from logsieve.detectors.thresholds import check_labels as _labels
from logsieve.detectors.thresholds import check_scores as _scores
from logsieve.detectors.thresholds import score_curve as _curve
from logsieve.errors import LogsieveError

__all__ = [
    "confusion_counts",
    "precision",
    "recall",
    "specificity",
    "f1",
    "mcc",
    "roc_auc",
    "average_precision",
    "best_f1_threshold",
    "evaluate",
]


def _div(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


def confusion_counts(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, int]:
    """``{"tp", "fp", "tn", "fn"}`` as Python ints."""
    t = _labels(y_true)
    p = _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise LogsieveError(f"y_true and y_pred differ in length ({t.size} vs {p.size})")
    tp = int(np.sum((t == 1) & (p == 1)))
    fp = int(np.sum((t == 0) & (p == 1)))
    fn = int(np.sum((t == 1) & (p == 0)))
    return {"tp": tp, "fp": fp, "tn": int(t.size - tp - fp - fn), "fn": fn}


def precision(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """TP / (TP + FP); nan without predicted positives."""
    c = confusion_counts(y_true, y_pred)
    return _div(c["tp"], c["tp"] + c["fp"])


def recall(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """TP / (TP + FN); nan without actual positives."""
    c = confusion_counts(y_true, y_pred)
    return _div(c["tp"], c["tp"] + c["fn"])


def specificity(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """TN / (TN + FP) (= 1 - false-positive rate); nan without actual negatives."""
    c = confusion_counts(y_true, y_pred)
    return _div(c["tn"], c["tn"] + c["fp"])


def f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """2TP / (2TP + FP + FN); nan only when there are no positives and no alarms."""
    c = confusion_counts(y_true, y_pred)
    return _div(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"])


def _mcc(c: dict[str, int]) -> float:
    tp, fp, tn, fn = (float(c[k]) for k in ("tp", "fp", "tn", "fn"))
    den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return (tp * tn - fp * fn) / math.sqrt(den) if den else 0.0


def mcc(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Matthews correlation coefficient; 0 when a confusion-matrix margin is empty."""
    return _mcc(confusion_counts(y_true, y_pred))


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n_pos * n_neg), ties count half)."""
    t = _labels(y_true)
    s = _scores(scores, t.size)
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    # average ranks (1-based) with ties sharing the mean rank
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    first = np.r_[True, sorted_s[1:] != sorted_s[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], s.size]
    avg_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = avg_rank[group]
    u = ranks[t == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(y_true: ArrayLike, scores: ArrayLike) -> float:
    """PR-AUC as average precision: sum over thresholds of (R_k - R_{k-1}) * P_k."""
    t = _labels(y_true)
    s = _scores(scores, t.size)
    n_pos = int(t.sum())
    if n_pos == 0 or n_pos == t.size:
        return math.nan
    tps, fps, _ = _curve(t, s)
    prec = tps / (tps + fps)
    rec = tps / n_pos
    delta = np.diff(np.r_[0.0, rec])
    return float(np.sum(delta * prec))


def evaluate(
    y_true: ArrayLike, y_pred: ArrayLike | None = None, scores: ArrayLike | None = None
) -> dict[str, Any]:
    """All metrics that the given inputs allow, as a JSON-able dict.

    Threshold metrics (``precision``, ``recall``, ``specificity``, ``f1``, ``mcc``,
    confusion counts) need ``y_pred``; ranking metrics (``roc_auc``, ``pr_auc``) need
    ``scores``. ``n``, ``n_anomalous`` are always present. nan values stay nan
    (write JSON with ``allow_nan`` or convert them to null).
    """
    t = _labels(y_true)
    out: dict[str, Any] = {"n": int(t.size), "n_anomalous": int(t.sum())}
    if y_pred is not None:
        c = confusion_counts(t, y_pred)
        out.update(
            precision=_div(c["tp"], c["tp"] + c["fp"]),
            recall=_div(c["tp"], c["tp"] + c["fn"]),
            specificity=_div(c["tn"], c["tn"] + c["fp"]),
            f1=_div(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"]),
            mcc=_mcc(c),
            **c,
        )
    if scores is not None:
        out.update(roc_auc=roc_auc(t, scores), pr_auc=average_precision(t, scores))
    return out
