"""What the classical count-vector detectors share: :class:`CountDetector` and helpers.

Every model turns a window into its event-count vector
(:class:`~logsieve.features.counts.EventCounter`) and scores it, HIGHER = MORE ANOMALOUS.
scikit-learn fits the models, but the fitted state is kept as plain arrays and scoring
is re-implemented in NumPy, so a model saves without pickle and scores the same after
loading. Models whose objective is a sum over windows train on distinct count vectors
weighted by their multiplicity, which is the same objective and far less work.
"""

from __future__ import annotations

import abc
import importlib
import logging
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl

from logsieve.detectors.base import BaseDetector, InputKind, ProgressCallback, _window_ids
from logsieve.errors import LogsieveError
from logsieve.features.counts import OOV_NAME, EventCounter, count_matrix
from logsieve.features.sequence import check_windows, event_id_series
from logsieve.schema import EVENT_IDS, LABEL

logger = logging.getLogger(__name__)

__all__ = ["CITATIONS", "CountDetector", "require", "sklearn_quiet"]

CITATIONS = {
    "pca": "Wei Xu, Ling Huang, Armando Fox, David Patterson, Michael I. Jordan. "
    "Detecting Large-Scale "
    "System Problems by Mining Console Logs. SOSP 2009. https://doi.org/10.1145/1629575.1629587",
    "iforest": "Fei Tony Liu, Kai Ming Ting, Zhi-Hua Zhou. Isolation Forest. ICDM 2008. "
    "https://doi.org/10.1109/ICDM.2008.17",
    "ocsvm": "Bernhard Schölkopf, John C. Platt, John Shawe-Taylor, Alex J. Smola, "
    "Robert C. Williamson. "
    "Estimating the Support of a High-Dimensional Distribution. Neural Computation 13(7), 2001. "
    "https://doi.org/10.1162/089976601750264965",
    "lof": "Markus M. Breunig, Hans-Peter Kriegel, Raymond T. Ng, Jörg Sander. LOF: Identifying "
    "Density-Based Local Outliers. SIGMOD 2000. https://doi.org/10.1145/342009.335388",
    "supervised": "Shilin He, Jieming Zhu, Pinjia He, Michael R. Lyu. "
    "Experience Report: System Log "
    "Analysis for Anomaly Detection. ISSRE 2016. https://doi.org/10.1109/ISSRE.2016.21",
}


def require(module: str, detector: str) -> Any:
    """Import ``module`` (scikit-learn / scipy), or raise a one-line :class:`LogsieveError`."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise LogsieveError(
            f"detector {detector!r} needs {exc.name or module!r}: pip install 'logsieve[ml]'"
        ) from exc


def sklearn_quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` and turn scikit-learn warnings (convergence, ...) into log lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    seen: set[str] = set()
    for w in caught:
        # first line only, once per call: lbfgs's advice paragraph repeats in every fit
        text = (str(w.message).strip().splitlines() or [""])[0]
        if text in seen:
            continue
        seen.add(text)
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
            logger.debug("scikit-learn: %s", text)
        else:  # ConvergenceWarning and other user-facing warnings
            logger.warning("scikit-learn: %s", text)
    return out


class CountDetector(BaseDetector):
    """Base of the detectors that score event-count vectors.

    Subclasses implement :meth:`_fit_counts` (learn from the training windows, with
    :attr:`counter_` already fitted) and :meth:`_score_matrix` (scores of a feature
    matrix), and optionally :meth:`_contributions` (per-event share of the score, used
    by :meth:`explain`) and :meth:`_model_state` / :meth:`_load_model_state`
    (persistence of the model's arrays). The feature weighting comes from
    :meth:`_counter_params` (by default the ``tfidf`` parameter when the class has one).

    Fitted attributes: ``counter_`` (:class:`EventCounter`), ``raw_mean_`` (mean raw
    count of every column over the training windows, used in explanations).
    """

    input_kind: ClassVar[InputKind] = "counts"

    # --------------------------------------------------------------- features
    def _counter_params(self) -> dict[str, Any]:
        return {"tfidf": bool(getattr(self, "tfidf", False)), "normalize": None}

    def _fit(
        self, train: pl.DataFrame, valid: pl.DataFrame, progress: ProgressCallback | None
    ) -> None:
        self.counter_ = EventCounter(**self._counter_params()).fit(train)
        raw = count_matrix(train, self.counter_.vocab_, sparse=True)
        self.raw_mean_ = np.asarray(raw.mean(axis=0), dtype=np.float64).reshape(-1)
        self._fit_counts(train, valid)

    def _features(self, windows: pl.DataFrame) -> np.ndarray:
        """Dense float64 feature matrix of ``windows`` (counter weighting applied)."""
        return np.asarray(self.counter_.transform(windows), dtype=np.float64)

    def _distinct_features(
        self, windows: pl.DataFrame, by_label: bool = False
    ) -> tuple[np.ndarray, ...]:
        """Distinct feature rows and their multiplicities (and labels when ``by_label``).

        Returns ``(X, weight)`` or ``(X, weight, y)``: rows unique over
        ``(features[, label])``, in order of first occurrence.
        """
        keys = [EVENT_IDS, LABEL] if by_label else [EVENT_IDS]
        grouped = windows.select(keys).group_by(keys, maintain_order=True).agg(pl.len().alias("_n"))
        X = self._features(grouped)
        n = grouped.get_column("_n").to_numpy().astype(np.float64)
        keyed = X
        if by_label:
            y = grouped.get_column(LABEL).cast(pl.Float64).to_numpy()
            keyed = np.column_stack([X, y])
        uniq, first, inverse = np.unique(keyed, axis=0, return_index=True, return_inverse=True)
        weight = np.bincount(inverse.reshape(-1), weights=n, minlength=len(uniq))
        order = np.argsort(first, kind="stable")
        uniq, weight = uniq[order], weight[order]
        if by_label:
            return uniq[:, :-1], weight, uniq[:, -1].astype(np.int64)
        return uniq, weight

    # --------------------------------------------------------------- model hooks
    @abc.abstractmethod
    def _fit_counts(self, train: pl.DataFrame, valid: pl.DataFrame) -> None:
        """Fit the model on ``train`` (``counter_`` is fitted)."""

    @abc.abstractmethod
    def _score_matrix(self, X: np.ndarray) -> np.ndarray:
        """Scores (float64, higher = more anomalous) of feature rows ``X``."""

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        return self._score_matrix(self._features(windows))

    def _contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-event share of the score, shape of ``X`` (default: |x - training mean|)."""
        center = self._feature_mean()
        return np.abs(X - center[None, :])

    def _feature_mean(self) -> np.ndarray:
        mean = self.raw_mean_.copy()
        if self.counter_.idf_ is not None:
            mean = mean * self.counter_.idf_
        if self.counter_.mean_ is not None:
            mean = mean - self.counter_.mean_
        return mean

    # --------------------------------------------------------------- explanations
    def _event_label(self, column: int) -> str:
        return OOV_NAME if column == 0 else self.counter_.vocab_.tokens[column - 1]

    def _template(self, event_id: str) -> str | None:
        return self.templates_.get(event_id) if event_id != OOV_NAME else None

    def _unseen_events(self, windows: pl.DataFrame) -> list[list[str]]:
        """Event ids of each window that the training vocabulary lacks (first-seen order)."""
        s = event_id_series(windows)
        flat = (
            pl.DataFrame({"_w": np.arange(windows.height)})
            .with_columns(s.alias("_e"))
            .explode("_e")
            .drop_nulls("_e")
        )
        known = pl.Series(list(self.counter_.vocab_.tokens), dtype=pl.String)
        oov = flat.filter(~pl.col("_e").is_in(known.implode())).unique(maintain_order=True)
        grouped = oov.group_by("_w", maintain_order=True).agg(pl.col("_e"))
        out: list[list[str]] = [[] for _ in range(windows.height)]
        for w, events in zip(
            grouped.get_column("_w").to_list(), grouped.get_column("_e").to_list(), strict=True
        ):
            out[w] = events
        return out

    def _explain_extra(self, windows: pl.DataFrame, X: np.ndarray) -> list[dict[str, Any]]:
        """Model-specific fields of each window's explanation (default: none)."""
        return [{} for _ in range(X.shape[0])]

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Per window: score, threshold, verdict, the events that drive the score, unseen events.

        ``events`` lists the ``top`` (default 5) columns with the largest contribution
        (:meth:`_contributions`) and a positive share: ``event_id``, ``template``,
        ``count`` in the window, ``expected`` (mean count over the training windows)
        and ``contribution``. ``unseen_events`` are the window's event ids that were
        never seen in training (they all count in the ``"<oov>"`` column).
        """
        self._check_fitted()
        windows = check_windows(windows)
        top = 5 if top is None else int(top)
        scores = self.decision_function(windows)
        X = self._features(windows)
        raw = count_matrix(windows, self.counter_.vocab_)
        contrib = self._contributions(X)
        unseen = self._unseen_events(windows)
        extra = self._explain_extra(windows, X)
        out = []
        for i, wid in enumerate(_window_ids(windows)):
            row = contrib[i]
            order = np.argsort(-row, kind="stable")[:top]
            events = [
                {
                    "event_id": self._event_label(int(j)),
                    "template": self._template(self._event_label(int(j))),
                    "count": int(raw[i, j]),
                    "expected": round(float(self.raw_mean_[j]), 4),
                    "contribution": float(row[j]),
                }
                for j in order
                if row[j] > 0
            ]
            out.append(
                {
                    "window_id": wid,
                    "score": float(scores[i]),
                    "threshold": self.threshold_,
                    "is_anomaly": bool(scores[i] > self.threshold_),
                    "events": events,
                    "unseen_events": unseen[i],
                    **extra[i],
                }
            )
        return out

    # --------------------------------------------------------------- persistence
    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {}

    def _load_model_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        return None

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        state["counter"] = self.counter_.to_dict()
        arrays = dict(arrays)
        arrays.update({f"counter.{k}": v for k, v in self.counter_.to_arrays().items()})
        arrays["raw_mean"] = self.raw_mean_
        mstate, marrays = self._model_state()
        state["model"] = mstate
        arrays.update({f"model.{k}": np.ascontiguousarray(v) for k, v in marrays.items()})
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        counter_arrays = {
            k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("counter.")
        }
        self.counter_ = EventCounter.from_dict(state["counter"], counter_arrays)
        self.raw_mean_ = np.asarray(arrays["raw_mean"], dtype=np.float64)
        model_arrays = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("model.")}
        self._load_model_state(state.get("model") or {}, model_arrays)
        super()._set_state(state, arrays)
