"""Local Outlier Factor (Breunig et al., SIGMOD 2000) in novelty mode on event-count vectors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl

from logsieve.detectors.base import check_positive_ints
from logsieve.detectors.classical.base import CITATIONS, CountDetector, require, sklearn_quiet
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError

__all__ = ["LOFDetector"]


@register_detector("lof")
class LOFDetector(CountDetector):
    """Local Outlier Factor in novelty mode (Breunig et al., SIGMOD 2000).

    scikit-learn's ``LocalOutlierFactor(novelty=True)`` is fitted on the training
    windows; the model keeps their feature rows, k-distances and local reachability
    densities, and a new window's score is its LOF (minus ``score_samples``): the mean
    ratio of its neighbours' density to its own. Natural threshold 1.5 (scikit-learn's
    ``contamination="auto"`` offset).

    Parameters
    ----------
    n_neighbors : int, default 20
        ``k`` (scikit-learn's default; the paper suggests 10 to 20 as a lower bound).
    tfidf : bool, default True
        TF-IDF weighting (Euclidean distances).

    Note: identical training windows have k-distance 0 and a huge density (scikit-learn
    adds 1e-10), so a new window next to (not on) a very frequent normal pattern gets a
    very large LOF; scores then span many orders of magnitude.
    """

    description: ClassVar[str] = (
        "Local Outlier Factor (novelty) on event-count vectors; score = LOF"
    )
    citation: ClassVar[str] = CITATIONS["lof"]

    n_neighbors: int = 20
    tfidf: bool = True

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {"n_neighbors": 10, "tfidf": False}

    def _validate_params(self) -> None:
        super()._validate_params()
        check_positive_ints(self, "n_neighbors")

    def _fit_counts(self, train: pl.DataFrame, valid: pl.DataFrame) -> None:
        LocalOutlierFactor = require("sklearn.neighbors", self.name).LocalOutlierFactor

        X = self._features(train)
        if X.shape[0] < 2:
            raise LogsieveError("lof needs at least 2 training windows")
        lof = LocalOutlierFactor(n_neighbors=int(self.n_neighbors), novelty=True)
        sklearn_quiet(lof.fit, X)
        self.fit_X_ = np.asarray(X, dtype=np.float64)
        self.k_ = int(lof.n_neighbors_)
        self.k_distance_ = np.asarray(lof._distances_fit_X_[:, self.k_ - 1], dtype=np.float64)
        self.lrd_ = np.asarray(lof._lrd, dtype=np.float64)
        self._knn = None

    def _neighbors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        NearestNeighbors = require("sklearn.neighbors", self.name).NearestNeighbors

        knn = getattr(self, "_knn", None)
        if knn is None:
            knn = NearestNeighbors(n_neighbors=self.k_).fit(self.fit_X_)
            self._knn = knn
        return knn.kneighbors(X, n_neighbors=self.k_)

    def _score_matrix(self, X: np.ndarray) -> np.ndarray:
        dist, idx = self._neighbors(X)
        reach = np.maximum(dist, self.k_distance_[idx])
        lrd = 1.0 / (reach.mean(axis=1) + 1e-10)
        return (self.lrd_[idx] / lrd[:, None]).mean(axis=1)

    def _natural_threshold(self) -> float:
        return 1.5

    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"k": self.k_}, {
            "fit_X": self.fit_X_,
            "k_distance": self.k_distance_,
            "lrd": self.lrd_,
        }

    def _load_model_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.fit_X_ = np.asarray(arrays["fit_X"], dtype=np.float64)
        self.k_distance_ = np.asarray(arrays["k_distance"], dtype=np.float64)
        self.lrd_ = np.asarray(arrays["lrd"], dtype=np.float64)
        self.k_ = int(state["k"])
        self._knn = None
