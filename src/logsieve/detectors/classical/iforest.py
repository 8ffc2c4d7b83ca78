"""Isolation Forest (Liu, Ting, Zhou, ICDM 2008): the one array forest, and the detector.

:class:`ArrayIsolationForest` is grown by scikit-learn and kept as :class:`FlatTrees`
arrays, so it saves without pickle; :class:`IsolationForestDetector` (``iforest``)
scores event-count vectors with it, and the autoencoder models screen their training
windows with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl

from logsieve.detectors.base import check_positive_ints, resolve_seed
from logsieve.detectors.classical.base import CITATIONS, CountDetector, require, sklearn_quiet
from logsieve.detectors.classical.trees import FlatTrees, node_depths
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError

__all__ = ["ArrayIsolationForest", "IsolationForestDetector", "average_path_length"]


def average_path_length(n: np.ndarray | float) -> np.ndarray:
    """``c(n)``: average path length of an unsuccessful BST search among ``n`` points."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    two = n == 2
    big = n > 2
    out[two] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class ArrayIsolationForest:
    """An Isolation Forest kept as flat NumPy arrays (:class:`FlatTrees`).

    The trees are grown by :class:`sklearn.ensemble.IsolationForest` and copied into
    arrays whose node value is the path length credited there (depth plus ``c(n)`` of
    the node's training samples), so :meth:`score`, the anomaly score
    ``s(x) = 2 ** (-E[h(x)] / c(psi))`` in (0, 1] (higher = more anomalous), equals
    ``-IsolationForest.score_samples(x)``. ``arrays`` holds :attr:`FlatTrees.KEYS`;
    ``n_samples`` is the subsample size ``psi``.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], n_samples: int) -> None:
        arrays = dict(arrays)
        if (
            "value" not in arrays and "leaf_value" in arrays
        ):  # files written before the two forests merged
            arrays["value"] = arrays.pop("leaf_value")
        try:
            self.trees = FlatTrees(*(arrays[k] for k in FlatTrees.KEYS))
        except LogsieveError as exc:
            raise LogsieveError(f"isolation forest arrays are inconsistent ({exc})") from exc
        self.n_samples = int(n_samples)

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        *,
        n_estimators: int = 100,
        max_samples: int | float | str = "auto",
        max_features: float = 1.0,
        random_state: int = 0,
        owner: str = "iforest",
    ) -> ArrayIsolationForest:
        """Grow the forest on the rows of ``x`` (2-D) with scikit-learn.

        ``max_samples``: scikit-learn's (``"auto"`` = ``min(256, n_rows)``, the paper's
        ``psi``); ``owner`` names the detector in the error when scikit-learn is missing.
        """
        x = np.asarray(x, dtype=np.float32)  # what scikit-learn's trees use anyway
        if x.ndim != 2 or len(x) == 0:
            raise LogsieveError("isolation forest needs a non-empty 2-D feature matrix")
        IsolationForest = require("sklearn.ensemble", owner).IsolationForest

        forest = IsolationForest(
            n_estimators=int(n_estimators),
            max_samples=max_samples,
            max_features=float(max_features),
            random_state=int(random_state),
        )
        sklearn_quiet(forest.fit, x)
        trees = [est.tree_ for est in forest.estimators_]
        values = [
            node_depths(t.children_left, t.children_right) + average_path_length(t.n_node_samples)
            for t in trees
        ]
        flat = FlatTrees.from_sklearn(
            trees, values, [np.asarray(f) for f in forest.estimators_features_]
        )
        return cls(flat.to_arrays(""), int(forest.max_samples_))

    def path_lengths(self, x: np.ndarray) -> np.ndarray:
        """Mean path length ``E[h(x)]`` of every row over the trees."""
        return self.trees.value[self.trees.leaves(x)].mean(axis=1)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score ``2 ** (-E[h(x)] / c(psi))`` of every row, float64 in (0, 1]."""
        depth = self.path_lengths(x)
        norm = float(average_path_length(np.array([self.n_samples]))[0])
        return np.power(2.0, -depth / norm) if norm > 0 else np.ones(len(depth))

    def to_arrays(self, prefix: str = "iforest.") -> dict[str, np.ndarray]:
        return self.trees.to_arrays(prefix)

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], n_samples: int, prefix: str = "iforest."
    ) -> ArrayIsolationForest:
        sub = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        if "value" not in sub and "leaf_value" in sub:
            sub["value"] = sub.pop("leaf_value")
        missing = [k for k in FlatTrees.KEYS if k not in sub]
        if missing:
            raise LogsieveError(f"saved isolation forest lacks array(s) {', '.join(missing)}")
        return cls(sub, n_samples)


@register_detector("iforest")
class IsolationForestDetector(CountDetector):
    """Isolation Forest on event-count vectors (Liu, Ting, Zhou, ICDM 2008).

    scikit-learn's ``IsolationForest`` builds the trees; the score is the paper's
    ``s(x) = 2 ** (-E[h(x)] / c(psi))`` (``E[h]`` the mean path length with the ``c(n)``
    correction at leaves, ``psi`` the subsample size), i.e. minus scikit-learn's
    ``score_samples``. The natural threshold is 0.5 (``contamination="auto"``): the
    paper's "s much smaller than 0.5 means normal".

    Parameters
    ----------
    n_estimators : int, default 100
        Trees (the paper's ``t = 100``).
    max_samples : int, float or "auto", default "auto"
        Subsample per tree: "auto" = ``min(256, n)`` (the paper's ``psi = 256``).
    max_features : float, default 1.0
        Share of the columns each tree may split on.
    tfidf : bool, default False
        Trees are invariant to column scaling, so raw counts (loglizer) are used.

    loglizer fits it with ``contamination=0.03`` (a training-score quantile); use
    ``threshold="quantile"`` with ``contamination=0.03`` (on validation windows) for that.
    """

    description: ClassVar[str] = (
        "Isolation Forest on event-count vectors; score = 2^(-mean path length / c(psi))"
    )
    citation: ClassVar[str] = CITATIONS["iforest"]

    n_estimators: int = 100
    max_samples: int | float | str = "auto"
    max_features: float = 1.0
    tfidf: bool = False

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        # trees cannot split on columns that are constant in training (e.g. unseen events):
        # train on the contaminated windows, as the paper does
        return {"n_estimators": 50, "include_anomalies": True}

    def _validate_params(self) -> None:
        super()._validate_params()
        check_positive_ints(self, "n_estimators")

    def _fit_counts(self, train: pl.DataFrame, valid: pl.DataFrame) -> None:
        self.forest_ = ArrayIsolationForest.fit(
            self._features(train),
            n_estimators=int(self.n_estimators),
            max_samples=self.max_samples,
            max_features=float(self.max_features),
            random_state=resolve_seed(self.random_state),
            owner=self.name,
        )

    def _score_matrix(self, X: np.ndarray) -> np.ndarray:
        return self.forest_.score(X)

    def _natural_threshold(self) -> float:
        return 0.5

    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"max_samples": self.forest_.n_samples}, self.forest_.to_arrays("tree.")

    def _load_model_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.forest_ = ArrayIsolationForest.from_arrays(
            arrays, int(state["max_samples"]), prefix="tree."
        )
