"""Feedback: what a fitted detector learns from windows an operator labelled.

DeepLog's online update (Du et al., CCS 2017, section 3.3) for every model, in two layers.

1. The marked windows themselves (every model): their exact content is remembered with
   its label (:class:`~logsieve.detectors.known_windows.KnownWindows`, saved in the
   model's JSON state), so a window marked ``normal``, and any exact repeat of it, scores
   below the threshold from now on, and one marked ``anomaly`` above it. This touches no
   other window, so it cannot cost recall.

2. The model's own learning, which generalises to other windows, so it is guarded. The
   policy follows the model's family, and :func:`feedback_policy` states it in one line:

   - next-event models (DeepLog, LogAnomaly, the next-log Transformer): fine-tune on the
     marked windows (each counted ``MARKED_WEIGHT`` times) with a small learning rate and
     few epochs, rehearsing a sample of the training windows so the model does not
     forget; DeepLog first adds new keys to its vocabulary and widens its value ranges,
     and its update widens the session-length bound;
   - supervised neural models (LogRobust, ...): the same fine-tuning from the current
     weights on the labelled windows plus a rehearsal sample of the labelled training
     windows (no refit from scratch: a refit changes the network as much as a new seed);
   - other neural models trained on normal data (autoencoders, ...): the same fine-tuning;
   - classical models: add the marked windows to the training windows and refit.

   The guard (:func:`_holds`): the change is kept only if, on the validation windows kept
   with the model (else on a rehearsal sample of the training windows), it flags no more
   normal windows than before and every window flagged before that is not known to be
   normal (labelled anomalous, or unlabelled) is still flagged. Fine-tuning runs in
   short rounds; a round that fails the guard is undone and the next one is gentler. No
   test window takes part.

``scope="pattern"`` adds a generalising step on top, for operators who want the model to
clear windows *like* the marked ones: DeepLog remembers the marked windows' (history, next
key) pairs still outside the top-g (:meth:`DeepLog.teach_pairs`), other models raise the
threshold just above the marked windows' model scores. It is not guarded, and on HDFS it
costs recall (benchmarks/feedback_gains.py shows both scopes).

A model trained on normal windows only cannot learn from a window marked ``anomaly``:
:class:`FeedbackRefused` says so in one line.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import numpy as np
import polars as pl

from logsieve.detectors.base import BaseDetector
from logsieve.detectors.known_windows import KnownWindows, key_columns
from logsieve.errors import LogsieveError
from logsieve.features.sequence import check_windows
from logsieve.schema import LABEL

logger = logging.getLogger(__name__)

__all__ = ["SCOPES", "FeedbackRefused", "feedback_policy", "learn_feedback"]

LABELS = ("normal", "anomaly")
#: "window": exact marked windows + guarded learning; "pattern": also generalise, unguarded
SCOPES = ("window", "pattern")
#: fine-tuning defaults: the safe ones measured in issue 12 (epochs=1 or lr=1e-3 held TPs)
FINETUNE_EPOCHS = 2
FINETUNE_LR = 1e-3
#: training windows rehearsed with the marked ones, and how often each marked one counts
REHEARSAL = 2000
MARKED_WEIGHT = 10
#: at most this many fine-tuning rounds (each guarded); a round the guard undoes makes the
#: next one use a learning rate LR_BACKOFF times smaller
MAX_ROUNDS = 3
LR_BACKOFF = 3.0


class FeedbackRefused(LogsieveError):
    """The detector cannot learn from this label (a one-line reason)."""


def _is_next_event(det: BaseDetector) -> bool:
    from logsieve.detectors.neural.next_event import NextEventMixin

    return isinstance(det, NextEventMixin)


def _is_neural(det: BaseDetector) -> bool:
    """A neural model that can be fine-tuned (it builds training arrays for new windows)."""
    from logsieve.detectors.neural.trainer import TorchDetector

    return isinstance(det, TorchDetector) and type(det)._prepare is not TorchDetector._prepare


def _learning(det: BaseDetector) -> str:
    if _is_neural(det):
        what = "labelled" if det.requires_labels else "marked"
        extra = ""
        if det.name == "deeplog":
            extra = " (new keys join the vocabulary, value ranges and length bounds widen)"
        return (
            f"fine-tunes on the {what} windows{extra} (lr {FINETUNE_LR}, {FINETUNE_EPOCHS}-epoch "
            f"rounds) rehearsing training windows"
        )
    what = "labelled" if det.requires_labels else "normal"
    return f"adds the marked windows to its {what} training windows and refits"


def feedback_policy(det: BaseDetector, label: str, scope: str = "window") -> str:
    """What ``det`` does with windows marked ``label``, in one line (raises when it cannot)."""
    if label not in LABELS:
        raise LogsieveError(f"label must be 'normal' or 'anomaly', not {label!r}")
    if scope not in SCOPES:
        raise LogsieveError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    name = det.name or type(det).__name__
    if label == "anomaly" and not det.requires_labels:
        raise FeedbackRefused(
            f"{name} learns normal behaviour only (trained on normal windows): it cannot "
            "learn from windows marked anomaly"
        )
    policy = (
        f"{name}: remembers the marked windows as {label} (exact content), "
        f"{_learning(det)}, kept only if no validation window gets worse"
    )
    if scope == "pattern":
        policy += (
            "; then remembers their (history, next key) pairs outside the top-g"
            if callable(getattr(det, "teach_pairs", None))
            else "; then raises the threshold above the marked windows"
        )
    return policy


def _with_label(windows: pl.DataFrame, label: str) -> pl.DataFrame:
    value = 1 if label == "anomaly" else 0
    return windows.with_columns(pl.lit(value, dtype=pl.Int8).alias(LABEL))


def _rehearsal(train: pl.DataFrame | None, det: BaseDetector) -> pl.DataFrame | None:
    """A seeded sample of the training windows the model learned from."""
    if train is None or train.height == 0:
        return None
    if det.requires_labels:
        kept = train.filter(pl.col(LABEL).is_not_null())
    else:
        kept = train.filter(pl.col(LABEL).is_null() | (pl.col(LABEL) == 0))
    if kept.height > REHEARSAL:
        seed = det.random_state if det.random_state is not None else 0
        kept = kept.sample(REHEARSAL, seed=int(seed), shuffle=False)
    return kept


def _concat(*tables: pl.DataFrame | None) -> pl.DataFrame:
    parts = [t for t in tables if t is not None and t.height]
    cols = [c for c in parts[0].columns if all(c in t.columns for t in parts)]
    return pl.concat([t.select(cols) for t in parts], how="vertical_relaxed")


# ---------------------------------------------------------------------------- guard
class _Guard:
    """The windows a change is judged on, and what the model flagged on them before."""

    def __init__(self, det: BaseDetector, train: pl.DataFrame | None, valid: pl.DataFrame | None):
        windows = valid if valid is not None and valid.height else _rehearsal(train, det)
        self.windows = windows
        self.where = "validation" if windows is valid else "rehearsal"
        if windows is None or windows.height == 0:
            self.labels = np.zeros(0)
            self.flags = np.zeros(0, dtype=bool)
            return
        labels = windows.get_column(LABEL) if LABEL in windows.columns else None
        self.labels = (
            labels.cast(pl.Float64).fill_null(math.nan).to_numpy()
            if labels is not None
            else np.full(windows.height, math.nan)
        )
        self.flags = self._flags(det)

    def _flags(self, det: BaseDetector) -> np.ndarray:
        if self.windows is None or self.windows.height == 0:
            return np.zeros(0, dtype=bool)
        return np.asarray(det.decision_function(self.windows) > det.threshold_)

    def check(self, det: BaseDetector) -> str | None:
        """None when ``det`` is no worse than before on the guard windows, else why not."""
        after = self._flags(det)
        normal = self.labels == 0
        n_before, n_after = int(self.flags[normal].sum()), int(after[normal].sum())
        kept = ~normal  # anomalous or unlabelled: what was flagged must stay flagged
        lost = int((self.flags & kept & ~after).sum())
        if n_after > n_before or lost:
            return (
                f"on the {self.where} windows it flagged {n_after} normal (before {n_before})"
                + (f" and no longer flagged {lost} anomalous or unlabelled" if lost else "")
            )
        return None


def _restore(det: BaseDetector, snapshot: BaseDetector) -> None:
    det.__dict__.clear()
    det.__dict__.update(snapshot.__dict__)


# ---------------------------------------------------------------------------- learning
def learn_feedback(
    det: BaseDetector,
    windows: pl.DataFrame,
    label: str,
    *,
    train: pl.DataFrame | None = None,
    valid: pl.DataFrame | None = None,
    scope: str = "window",
) -> dict[str, Any]:
    """Teach ``det`` (in place) that ``windows`` are ``label``; returns a JSON-able report.

    ``train``/``valid``: the windows the model was trained and validated on (kept in the
    model directory); refitting needs them, fine-tuning rehearses a sample of them and
    the guard judges every change on ``valid``. ``scope``: see the module docstring.
    """
    policy = feedback_policy(det, label, scope)  # raises FeedbackRefused first
    windows = _with_label(check_windows(windows, "marked windows"), label)
    if windows.height == 0:
        raise LogsieveError("no windows to learn from")
    value = 1 if label == "anomaly" else 0
    before = det.decision_function(windows)
    threshold_before = float(det.threshold_)
    report: dict[str, Any] = {"model": det.name, "label": label, "scope": scope,
                              "policy": policy, "windows": windows.height}  # fmt: skip
    known = getattr(det, "known_windows_", None)
    guard = _Guard(det, train, valid)
    if _is_neural(det):
        report.update(_finetune(det, windows, train, guard))
    else:
        report.update(_refit(det, windows, train, valid, guard))
    det.known_windows_ = known  # a refit starts from none
    model_after = det._score_distinct(windows)  # the model alone, without the memory
    report["flagged_by_model_after"] = int((model_after > det.threshold_).sum())
    if scope == "pattern" and value == 0:
        report.update(_generalise(det, windows, model_after))
    memory = known if known is not None else KnownWindows(key_columns(det, windows))
    report["remembered"] = memory.add(windows, value)
    report["known_windows"] = memory.counts()
    det.known_windows_ = memory
    after = det.decision_function(windows)
    wrong = (after > det.threshold_) if value == 0 else (after <= det.threshold_)
    report.update(
        threshold=[threshold_before, float(det.threshold_)],
        flagged_before=int((before > threshold_before).sum()),
        flagged_after=int((after > det.threshold_).sum()),
        still_wrong=int(wrong.sum()),
    )
    return report


def _generalise(det: BaseDetector, windows: pl.DataFrame, model_after: np.ndarray) -> dict:
    """``scope="pattern"``: make the model itself clear the marked normal windows."""
    teach = getattr(det, "teach_pairs", None)
    if callable(teach):
        return {"pairs_taught": int(teach(windows))} if (model_after > det.threshold_).any() else {}
    if (model_after > det.threshold_).any():
        old = float(det.threshold_)
        det.threshold_ = float(np.nextafter(float(model_after.max()), math.inf))
        return {"threshold_raised": [old, det.threshold_]}
    return {}


def _refit(
    det: BaseDetector,
    windows: pl.DataFrame,
    train: pl.DataFrame | None,
    valid: pl.DataFrame | None,
    guard: _Guard,
) -> dict[str, Any]:
    """Classical models: refit on the training windows plus the marked ones, guarded."""
    if train is None:
        raise LogsieveError(
            f"{det.name} refits on its training windows, and this model directory keeps "
            "none (train it again with this logsieve to enable feedback)"
        )
    snapshot = copy.deepcopy(det)
    data = _concat(train, pl.concat([windows] * MARKED_WEIGHT))
    valid_w = valid if valid is not None and valid.height else None
    det.fit(data, valid=valid_w, templates=det.templates_)
    action = f"refit on {data.height} windows"
    why = guard.check(det)
    if why is not None:
        _restore(det, snapshot)
        action += f", undone: {why}"
    return {"action": action, "model_changed": why is None}


def _finetune(
    det: BaseDetector, windows: pl.DataFrame, train: pl.DataFrame | None, guard: _Guard
) -> dict[str, Any]:
    """Fine-tune a neural model on the marked windows (with rehearsal), guarded.

    DeepLog first grows its vocabulary and widens its value ranges (one guarded step;
    undone as a whole when it fails the guard); then up to ``MAX_ROUNDS`` rounds of
    ``FINETUNE_EPOCHS`` epochs, each kept only when it passes the guard (an undone round
    makes the next one gentler: ``LR_BACKOFF`` times smaller learning rate), stopping once
    the model alone flags none of the marked windows it should not.
    """
    out: dict[str, Any] = {}
    value = int(windows.get_column(LABEL)[0])
    snapshot = copy.deepcopy(det)
    grow = getattr(det, "add_keys", None)
    added = list(grow(windows)) if callable(grow) and value == 0 else []
    values = getattr(det, "values_", None)
    widened = values.learn_normal(windows) if values is not None and value == 0 else []
    grown = bool(added or widened)
    if grown:
        why = guard.check(det)
        if why is None:
            out.update({k: v for k, v in (("new_keys", added), ("value_ranges_widened",
                                                                  widened)) if v})  # fmt: skip
        else:
            _restore(det, snapshot)
            out["structure_undone"] = why
            grown = False
    data = _concat(pl.concat([windows] * MARKED_WEIGHT), _rehearsal(train, det))
    rounds = kept = 0
    lr = FINETUNE_LR
    undone: list[str] = []
    while rounds < MAX_ROUNDS:
        flags = det._score_distinct(windows) > det.threshold_
        if not (flags if value == 0 else ~flags).any():
            break
        snapshot = copy.deepcopy(det)
        det.update(data, epochs=FINETUNE_EPOCHS, lr=lr)  # type: ignore[attr-defined]
        rounds += 1
        why = guard.check(det)
        if why is None:
            kept += 1
            continue
        _restore(det, snapshot)
        undone.append(f"round {rounds} (lr {lr:.2g}) undone: {why}")
        lr /= LR_BACKOFF
    action = (
        f"fine-tuned on {data.height} windows ({windows.height} marked x{MARKED_WEIGHT}): "
        f"{kept} of {rounds} round(s) of {FINETUNE_EPOCHS} epochs kept"
    )
    if undone:
        action += "; " + "; ".join(undone)
    out.update(action=action, model_changed=bool(kept or grown))
    return out
