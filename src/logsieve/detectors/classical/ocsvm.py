"""One-Class SVM (Schölkopf et al., 2001) on event-count vectors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl

from logsieve.detectors.classical.base import CITATIONS, CountDetector, require, sklearn_quiet
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError

__all__ = ["OneClassSVMDetector"]

_KERNELS = ("rbf", "linear")


@register_detector("ocsvm")
class OneClassSVMDetector(CountDetector):
    """One-Class SVM on event-count vectors (Schölkopf et al., 2001).

    scikit-learn's ``OneClassSVM`` (libsvm) learns the support; score = minus its
    decision value, so the natural threshold 0 is the learned boundary. Trains on the
    distinct count vectors weighted by multiplicity (same solution as on all windows,
    up to the solver tolerance).

    Parameters
    ----------
    nu : float, default 0.01
        Upper bound on the share of training windows outside the boundary (and lower
        bound on the share of support vectors). scikit-learn's default 0.5 would put
        half of the normal windows outside; 0.01 matches ``contamination``.
    kernel : {"rbf", "linear"}, default "rbf"
    gamma : "scale", "auto" or float, default "scale"
        RBF width (scikit-learn's conventions).
    tfidf : bool, default True
        TF-IDF weighting (distances matter here).
    """

    description: ClassVar[str] = (
        "One-Class SVM on event-count vectors; score = distance outside the learned support"
    )
    citation: ClassVar[str] = CITATIONS["ocsvm"]

    nu: float = 0.01
    kernel: str = "rbf"
    gamma: str | float = "scale"
    tfidf: bool = True

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {"nu": 0.05, "tfidf": False}

    def _validate_params(self) -> None:
        super()._validate_params()
        if not 0.0 < float(self.nu) <= 1.0:
            raise LogsieveError(f"nu must be in (0, 1], not {self.nu!r}")
        if self.kernel not in _KERNELS:
            raise LogsieveError(f"kernel must be one of {', '.join(_KERNELS)}, not {self.kernel!r}")

    def _fit_counts(self, train: pl.DataFrame, valid: pl.DataFrame) -> None:
        OneClassSVM = require("sklearn.svm", self.name).OneClassSVM

        X, weight = self._distinct_features(train)
        if self.gamma == "scale":
            # scikit-learn's 1 / (n_features * X.var()) over every training window
            total = weight.sum() * X.shape[1]
            mean = float((weight @ X).sum() / total)
            var = float((weight @ ((X - mean) ** 2)).sum() / total)
            gamma = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        elif self.gamma == "auto":
            gamma = 1.0 / X.shape[1]
        else:
            gamma = float(self.gamma)
        model = OneClassSVM(kernel=self.kernel, nu=float(self.nu), gamma=gamma)
        sklearn_quiet(model.fit, X, sample_weight=weight)
        self.support_vectors_ = np.asarray(model.support_vectors_, dtype=np.float64)
        self.dual_coef_ = np.asarray(model.dual_coef_, dtype=np.float64).reshape(-1)
        self.intercept_ = float(np.asarray(model.intercept_).reshape(-1)[0])
        self.gamma_ = float(gamma)

    def _decision(self, X: np.ndarray) -> np.ndarray:
        sv = self.support_vectors_
        if self.kernel == "linear":
            K = X @ sv.T
        else:
            sq = (X**2).sum(1)[:, None] + (sv**2).sum(1)[None, :] - 2.0 * (X @ sv.T)
            K = np.exp(-self.gamma_ * np.maximum(sq, 0.0))
        return K @ self.dual_coef_ + self.intercept_

    def _score_matrix(self, X: np.ndarray) -> np.ndarray:
        return -self._decision(X)

    def _natural_threshold(self) -> float:
        return 0.0

    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return (
            {"intercept": self.intercept_, "gamma": self.gamma_},
            {"support_vectors": self.support_vectors_, "dual_coef": self.dual_coef_},
        )

    def _load_model_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.support_vectors_ = np.asarray(arrays["support_vectors"], dtype=np.float64)
        self.dual_coef_ = np.asarray(arrays["dual_coef"], dtype=np.float64)
        self.intercept_ = float(state["intercept"])
        self.gamma_ = float(state["gamma"])
