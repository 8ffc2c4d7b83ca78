"""Windows an operator labelled, remembered exactly: the window level of feedback.

:func:`logsieve.detectors.feedback.learn_feedback` lets the model learn from marked
windows (fine-tuning, refitting), but what a model learns generalises, and a change
strong enough to clear a rare normal window can also clear anomalies that look like it
(issue 12). :class:`KnownWindows` is the part of feedback that cannot: it remembers each
marked window's content and its label, and :meth:`BaseDetector.decision_function
<logsieve.detectors.base.BaseDetector.decision_function>` clamps the score of a window
whose content equals a remembered one:

- marked ``normal``: the score becomes at most the largest float below ``threshold_``
  (the model's own score when it is already lower), so the window is not flagged;
- marked ``anomaly``: the score becomes at least the smallest float above ``threshold_``.

The clamp follows the current threshold, so it holds when a refit moves the threshold.
Nothing else is touched: a window that differs in one event is scored by the model
alone.

Content: the columns the model reads, exactly: ``event_ids`` (in order; count models
included: clearing every window with the same count vector would also clear orderings
the operator never saw), plus ``values`` and ``elapsed`` for a model that reads them
(DeepLog's value model) and ``messages`` for a raw-text model. A scored table without
one of these columns matches nothing. The memory is stored as JSON in the model's
state (``model.json``), so it is versioned with the model directory; the later label of
the same content replaces the earlier one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.schema import ELAPSED, EVENT_IDS, MESSAGES, VALUES, WINDOW_ID

__all__ = ["KnownWindows", "key_columns"]

FORMAT = 1
#: matched windows' scores, per label: 0 -> just under the threshold, 1 -> just over
_LABELS = (0, 1)


def key_columns(detector: Any, windows: pl.DataFrame) -> tuple[str, ...]:
    """The content columns of ``windows`` that identify a window for ``detector``."""
    cols = [EVENT_IDS]
    needs = getattr(detector, "needs_values", None)
    if callable(needs) and needs():
        cols += [c for c in (VALUES, ELAPSED) if c in windows.columns]
    if getattr(detector, "input_kind", None) == "raw" and MESSAGES in windows.columns:
        cols.append(MESSAGES)
    return tuple(cols)


def _encode(windows: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """One exact, comparable string per row: the JSON of its ``columns``."""
    return windows.select(pl.struct(list(columns)).struct.json_encode().alias("_key")).to_series()


class KnownWindows:
    """Labelled window contents (see the module docstring); JSON state, no pickling."""

    def __init__(self, columns: Sequence[str], entries: Sequence[Mapping[str, Any]] = ()) -> None:
        if EVENT_IDS not in columns:
            raise LogsieveError(f"known windows: the key columns must include {EVENT_IDS!r}")
        self.columns = tuple(columns)
        #: in order of marking: {"key": {column: value}, "label": 0/1, "window_id": str}
        self.entries: list[dict[str, Any]] = [dict(e) for e in entries]
        self._encoded: dict[tuple[Any, ...], tuple[pl.Series, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def counts(self) -> dict[str, int]:
        """How many contents are remembered per label (``{"normal": n, "anomaly": m}``)."""
        labels = [int(e["label"]) for e in self.entries]
        return {"normal": labels.count(0), "anomaly": labels.count(1)}

    # ------------------------------------------------------------------ learning
    def add(self, windows: pl.DataFrame, label: int) -> int:
        """Remember the contents of ``windows`` as ``label`` (0 normal, 1 anomaly);
        returns how many contents are new or changed label."""
        if label not in _LABELS:
            raise LogsieveError(f"known windows: label must be 0 or 1, not {label!r}")
        missing = [c for c in self.columns if c not in windows.columns]
        if missing:
            raise LogsieveError(f"known windows: the marked windows lack {', '.join(missing)}")
        keys = _encode(windows, self.columns).to_list()
        rows = windows.select(list(self.columns)).to_dicts()
        ids = (
            windows.get_column(WINDOW_ID).cast(pl.String).to_list()
            if WINDOW_ID in windows.columns
            else [None] * windows.height
        )
        index = {k: i for i, k in enumerate(self._keys_like(windows))}
        changed = 0
        for key, row, wid in zip(keys, rows, ids, strict=True):
            entry = {"key": row, "label": int(label), "window_id": wid}
            at = index.get(key)
            if at is None:
                index[key] = len(self.entries)
                self.entries.append(entry)
                changed += 1
            elif int(self.entries[at]["label"]) != label:
                self.entries[at] = entry
                changed += 1
        self._encoded.clear()
        return changed

    # ------------------------------------------------------------------ scoring
    def _keys_like(self, windows: pl.DataFrame) -> list[str]:
        return self._table_like(windows)[0].to_list()

    def _table_like(self, windows: pl.DataFrame) -> tuple[pl.Series, np.ndarray]:
        """The remembered keys encoded with the dtypes of ``windows`` (cached) and labels."""
        schema = {c: windows.schema[c] for c in self.columns}
        cache_key = tuple(schema.items())
        got = self._encoded.get(cache_key)
        if got is None:
            table = pl.DataFrame(
                {c: [e["key"].get(c) for e in self.entries] for c in self.columns}, schema=schema
            )
            labels = np.array([int(e["label"]) for e in self.entries], dtype=np.int8)
            got = (_encode(table, self.columns), labels)
            self._encoded[cache_key] = got
        return got

    def labels(self, windows: pl.DataFrame) -> np.ndarray:
        """Per window of ``windows``: the remembered label (0/1), or -1 when unknown."""
        out = np.full(windows.height, -1, dtype=np.int8)
        if not self.entries or windows.height == 0:
            return out
        if any(c not in windows.columns for c in self.columns):
            return out
        known, labels = self._table_like(windows)
        lookup = pl.DataFrame({"_key": known, "_label": labels})
        keys = _encode(windows, self.columns).to_frame("_key")
        joined = keys.join(lookup, on="_key", how="left", maintain_order="left")
        found = joined.get_column("_label").fill_null(-1).to_numpy()
        return found.astype(np.int8)

    def apply(self, scores: np.ndarray, windows: pl.DataFrame, threshold: float) -> np.ndarray:
        """``scores`` with remembered windows clamped to their side of ``threshold``."""
        labels = self.labels(windows)
        if not (labels >= 0).any():
            return scores
        out = np.array(scores, dtype=np.float64, copy=True)
        below = math.nextafter(float(threshold), -math.inf)
        above = math.nextafter(float(threshold), math.inf)
        out[labels == 0] = np.minimum(out[labels == 0], below)
        out[labels == 1] = np.maximum(out[labels == 1], above)
        return out

    def annotate(self, explanations: list[dict[str, Any]], windows: pl.DataFrame) -> None:
        """Make per-window explanations (in the order of ``windows``) agree with
        :meth:`apply`: clamp ``score``, set ``is_anomaly`` and add ``operator_label``."""
        if len(explanations) != windows.height:
            return
        labels = self.labels(windows)
        for exp, label in zip(explanations, labels.tolist(), strict=True):
            if label < 0 or "score" not in exp or "threshold" not in exp:
                continue
            threshold = float(exp["threshold"])
            if label == 0:
                exp["score"] = min(float(exp["score"]), math.nextafter(threshold, -math.inf))
            else:
                exp["score"] = max(float(exp["score"]), math.nextafter(threshold, math.inf))
            exp["is_anomaly"] = bool(label)
            exp["operator_label"] = "anomaly" if label else "normal"

    # ------------------------------------------------------------------ persistence
    def to_state(self) -> dict[str, Any]:
        return {"format": FORMAT, "columns": list(self.columns), "entries": self.entries}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> KnownWindows:
        if int(state.get("format", 0)) != FORMAT:
            raise LogsieveError(f"known windows: unsupported format {state.get('format')!r}")
        entries = state.get("entries") or []
        if not all(isinstance(e, Mapping) and "key" in e and "label" in e for e in entries):
            raise LogsieveError("known windows: every entry needs 'key' and 'label'")
        return cls(list(state["columns"]), entries)
