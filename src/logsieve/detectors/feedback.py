"""Feedback: what a fitted detector learns from windows an operator labelled.

DeepLog's online update (Du et al., CCS 2017, section 3.3) for every model. The policy
follows the model's family, and :func:`feedback_policy` states it in one line:

- next-event models (DeepLog, LogAnomaly, the next-log Transformer), label ``normal``:
  fine-tune on the marked windows with a small learning rate and few steps, rehearsing a
  sample of the training windows so the model does not forget; DeepLog also adds new
  keys to its vocabulary and widens its session-length bound;
- supervised models: add the labelled windows to the training windows and refit (the
  threshold is chosen again on the same validation windows);
- other neural models trained on normal data (autoencoders, ...): fine-tune on the
  marked windows with rehearsal;
- classical unsupervised models: add the marked windows to the normal training windows
  and refit;
- last, for label ``normal``: a marked window still above the threshold raises the
  threshold just above it (reported), so no marked window stays flagged.

A model trained on normal windows only cannot learn from a window marked ``anomaly``:
:class:`FeedbackRefused` says so in one line.
"""

from __future__ import annotations

import logging
import math
from typing import Any, cast

import numpy as np
import polars as pl

from logsieve.detectors.base import BaseDetector
from logsieve.errors import LogsieveError
from logsieve.features.sequence import check_windows, event_id_series
from logsieve.schema import LABEL

logger = logging.getLogger(__name__)

__all__ = ["FeedbackRefused", "feedback_policy", "learn_feedback"]

LABELS = ("normal", "anomaly")
#: fine-tuning defaults: the safe ones measured in issue 12 (epochs=1 or lr=1e-3 held TPs)
FINETUNE_EPOCHS = 2
FINETUNE_LR = 1e-3
#: training windows rehearsed with the marked ones, and how often each marked one counts
REHEARSAL = 2000
MARKED_WEIGHT = 10
#: at most this many fine-tuning rounds before the threshold is raised instead
MAX_ROUNDS = 3


class FeedbackRefused(LogsieveError):
    """The detector cannot learn from this label (a one-line reason)."""


def _is_next_event(det: BaseDetector) -> bool:
    from logsieve.detectors.neural.next_event import NextEventMixin

    return isinstance(det, NextEventMixin)


def _is_neural(det: BaseDetector) -> bool:
    """A neural model that can be fine-tuned (it builds training arrays for new windows)."""
    from logsieve.detectors.neural.trainer import TorchDetector

    return isinstance(det, TorchDetector) and type(det)._prepare is not TorchDetector._prepare


def feedback_policy(det: BaseDetector, label: str) -> str:
    """What ``det`` does with windows marked ``label``, in one line (raises when it cannot)."""
    if label not in LABELS:
        raise LogsieveError(f"label must be 'normal' or 'anomaly', not {label!r}")
    name = det.name or type(det).__name__
    if det.requires_labels:
        return f"{name}: adds the windows labelled {label} to its training windows and refits"
    if label == "anomaly":
        raise FeedbackRefused(
            f"{name} learns normal behaviour only (trained on normal windows): it cannot "
            "learn from windows marked anomaly"
        )
    if _is_next_event(det):
        return (
            f"{name}: fine-tunes on the marked windows (lr {FINETUNE_LR}, {FINETUNE_EPOCHS} "
            "epochs, undone if it flags more validation windows) rehearsing training "
            "windows; new keys join the vocabulary, length bounds and value ranges widen, "
            "pairs still outside the top-g are remembered as normal"
            if det.name == "deeplog"
            else f"{name}: fine-tunes on the marked windows (lr {FINETUNE_LR}, "
            f"{FINETUNE_EPOCHS} epochs) rehearsing training windows"
        )
    if _is_neural(det):
        return (
            f"{name}: fine-tunes on the marked windows rehearsing training windows, then "
            "raises the threshold above any marked window still flagged"
        )
    return (
        f"{name}: adds the marked windows to its normal training windows and refits, then "
        "raises the threshold above any marked window still flagged"
    )


def _with_label(windows: pl.DataFrame, label: str) -> pl.DataFrame:
    value = 1 if label == "anomaly" else 0
    return windows.with_columns(pl.lit(value, dtype=pl.Int8).alias(LABEL))


def _rehearsal(train: pl.DataFrame | None, det: BaseDetector) -> pl.DataFrame | None:
    if train is None or train.height == 0:
        return None
    normal = train.filter(pl.col(LABEL).is_null() | (pl.col(LABEL) == 0))
    if normal.height > REHEARSAL:
        seed = det.random_state if det.random_state is not None else 0
        normal = normal.sample(REHEARSAL, seed=int(seed), shuffle=False)
    return normal


def _concat(*tables: pl.DataFrame | None) -> pl.DataFrame:
    parts = [t for t in tables if t is not None and t.height]
    cols = [c for c in parts[0].columns if all(c in t.columns for t in parts)]
    return pl.concat([t.select(cols) for t in parts], how="vertical_relaxed")


def learn_feedback(
    det: BaseDetector,
    windows: pl.DataFrame,
    label: str,
    *,
    train: pl.DataFrame | None = None,
    valid: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Teach ``det`` (in place) that ``windows`` are ``label``; returns a JSON-able report.

    ``train``/``valid``: the windows the model was trained and validated on (kept in the
    model directory); refitting needs them, fine-tuning rehearses a sample of them.
    """
    policy = feedback_policy(det, label)  # raises FeedbackRefused first
    windows = _with_label(check_windows(windows, "marked windows"), label)
    if windows.height == 0:
        raise LogsieveError("no windows to learn from")
    before = det.decision_function(windows)
    threshold_before = float(det.threshold_)
    report: dict[str, Any] = {"model": det.name, "label": label, "policy": policy,
                              "windows": windows.height}  # fmt: skip
    repeated = pl.concat([windows] * MARKED_WEIGHT)
    if det.requires_labels or not _is_neural(det):
        if train is None:
            raise LogsieveError(
                f"{det.name} refits on its training windows, and this model directory keeps "
                "none (train it again with this logsieve to enable feedback)"
            )
        data = _concat(train, repeated)
        valid_w = valid if valid is not None and valid.height else None
        det.fit(data, valid=valid_w, templates=det.templates_)
        report["action"] = f"refit on {data.height} windows"
    else:
        report.update(_finetune(det, windows, repeated, train, valid))
    after = det.decision_function(windows)
    if label == "normal" and (after > det.threshold_).any():
        top = float(after.max())
        det.threshold_ = float(np.nextafter(top, math.inf))
        report["threshold_raised"] = [threshold_before, det.threshold_]
    report.update(
        threshold=[threshold_before, float(det.threshold_)],
        flagged_before=int((before > threshold_before).sum()),
        flagged_after=int((after > det.threshold_).sum()),
    )
    return report


def _guard(
    train: pl.DataFrame | None, valid: pl.DataFrame | None, det: BaseDetector
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """(normal windows fine-tuning must not start flagging, anomalies it must keep
    flagging): the validation windows, else a rehearsal sample and no anomalies."""
    if valid is not None and valid.height:
        normal = valid.filter(pl.col(LABEL).is_null() | (pl.col(LABEL) == 0))
        anomalies = valid.filter(pl.col(LABEL) == 1)
        if normal.height:
            return normal, anomalies
    return _rehearsal(train, det), None


def _flag_count(det: BaseDetector, windows: pl.DataFrame | None) -> int:
    if windows is None or windows.height == 0:
        return 0
    return int((det.decision_function(windows) > det.threshold_).sum())


def _finetune(
    det: BaseDetector,
    windows: pl.DataFrame,
    repeated: pl.DataFrame,
    train: pl.DataFrame | None,
    valid: pl.DataFrame | None,
) -> dict[str, Any]:
    """Fine-tune a neural model on the marked windows (with rehearsal), guarded.

    A few short rounds, stopping once no marked window is flagged. The rounds are
    undone when they flag more normal validation windows than before (the tail of a
    next-event model's ranking is easily reordered) or fewer anomalous ones. For DeepLog,
    its value model first widens the ranges the marked values fall outside, and the
    pairs still outside the top-g at the end are remembered (:meth:`DeepLog.teach_pairs`).
    """
    out: dict[str, Any] = {}
    data = _concat(repeated, _rehearsal(train, det))
    added = _grow(det, windows)
    values = getattr(det, "values_", None)
    if values is not None:
        widened = values.learn_normal(windows)
        if widened:
            out["value_ranges_widened"] = widened
    normal, anomalies = _guard(train, valid, det)
    guard_before = (_flag_count(det, normal), _flag_count(det, anomalies))
    module = det.module_  # type: ignore[attr-defined]
    saved = {k: v.detach().clone() for k, v in module.state_dict().items()}
    min_length = getattr(det, "min_length_", None)
    rounds = 0
    while rounds < MAX_ROUNDS:  # a few short rounds, until no marked window is flagged
        det.update(data, epochs=FINETUNE_EPOCHS, lr=FINETUNE_LR)  # type: ignore[attr-defined]
        rounds += 1
        if not (det.decision_function(windows) > det.threshold_).any():
            break
    guard_after = (_flag_count(det, normal), _flag_count(det, anomalies))
    out["action"] = (
        f"fine-tuned on {data.height} windows ({windows.height} marked), "
        f"{rounds} round(s) of {FINETUNE_EPOCHS} epochs"
    )
    if guard_after[0] > guard_before[0] or guard_after[1] < guard_before[1]:
        module.load_state_dict(saved)
        out["action"] += (
            f", undone: on validation windows it flagged {guard_after[0]} normal (before "
            f"{guard_before[0]}) and {guard_after[1]} anomalous (before {guard_before[1]})"
        )
        if min_length is not None:
            det.min_length_ = min(  # type: ignore[attr-defined]
                int(min_length),
                int(cast(int, event_id_series(windows).list.len().min()) or 0),
            )
    if added:
        out["new_keys"] = added
    teach = getattr(det, "teach_pairs", None)
    if callable(teach) and (det.decision_function(windows) > det.threshold_).any():
        out["pairs_taught"] = int(teach(windows))
    return out


def _grow(det: BaseDetector, windows: pl.DataFrame) -> list[str]:
    grow = getattr(det, "add_keys", None)
    return list(grow(windows)) if callable(grow) else []
