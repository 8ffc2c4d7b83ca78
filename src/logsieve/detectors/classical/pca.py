"""PCA residual-subspace detection (Xu et al., SOSP 2009) on event-count vectors.

A window's score is its squared prediction error off the normal subspace; the natural
threshold is the paper's Q-statistic.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np
import polars as pl

from logsieve.detectors.classical.base import CITATIONS, CountDetector, require
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError

logger = logging.getLogger(__name__)

__all__ = ["PCADetector", "q_statistic"]


def q_statistic(residual_eigenvalues: np.ndarray, alpha: float) -> float | None:
    """Jackson & Mudholkar's threshold ``Q_alpha`` on the squared prediction error.

    ``residual_eigenvalues`` are the covariance eigenvalues of the residual subspace;
    ``alpha`` the false-alarm probability (confidence ``1 - alpha``; ``c_alpha`` is
    the one-sided ``1 - alpha`` normal quantile). Returns None when the residual
    subspace carries no variance (the formula is undefined).
    """
    lam = np.asarray(residual_eigenvalues, dtype=np.float64)
    lam = lam[lam > 0]
    phi1, phi2, phi3 = (float(np.sum(lam**i)) for i in (1, 2, 3))
    if phi1 <= 0 or phi2 <= 0:
        return None
    h0 = 1.0 - 2.0 * phi1 * phi3 / (3.0 * phi2**2)
    if h0 <= 0:
        return None
    c_alpha = NormalDist().inv_cdf(1.0 - alpha)
    base = c_alpha * math.sqrt(2.0 * phi2 * h0**2) / phi1 + 1.0 + phi2 * h0 * (h0 - 1.0) / phi1**2
    if base <= 0:
        return None
    q = phi1 * base ** (1.0 / h0)
    return q if math.isfinite(q) else None


#: relative size below which a covariance eigenvalue counts as rounding noise
_EIG_RTOL = 1e-10
#: smallest natural SPE threshold, relative to the total variance (rounding noise of the projection)
_SPE_FLOOR = 1e-9


@register_detector("pca")
class PCADetector(CountDetector):
    """PCA residual-subspace detection (Xu et al., SOSP 2009).

    The training windows' (TF-IDF weighted, zero-mean) count vectors are decomposed by
    PCA; the first ``k`` components span the *normal* subspace, the rest the *residual*
    subspace. A window's score is its squared prediction error
    ``SPE = ||(I - P P^T) y||^2`` (``y`` centred, ``P`` the ``k`` normal components).
    The natural threshold (``threshold="auto"``) is the Q-statistic ``Q_alpha`` of
    Jackson & Mudholkar computed from the residual eigenvalues, as in the paper.

    Parameters
    ----------
    n_components : float or int, default 0.95
        A float in (0, 1): the smallest ``k`` whose components explain that share of the
        variance (the paper's 95 %); an int: ``k`` itself.
    alpha : float, default 0.001
        ``1 - alpha`` is the confidence of the Q-statistic (the paper: 99.9 %). ``c_alpha``
        is the one-sided normal quantile (3.090 for 0.001); loglizer's
        ``c_alpha = 3.2905`` is the two-sided one, i.e. ``alpha=0.0005`` here.
    tfidf : bool, default True
        TF-IDF weighting of the counts (the paper and loglizer); columns are always
        centred on the training mean.

    Deviation: the paper builds the normal subspace from all windows (unsupervised, most
    are normal); here, as for every unsupervised logsieve model, it is fitted on the
    windows labelled 0 or unlabelled unless ``include_anomalies=True``.
    """

    description: ClassVar[str] = (
        "PCA on event-count vectors; score = squared error off the normal subspace (Q-statistic)"
    )
    citation: ClassVar[str] = CITATIONS["pca"]

    n_components: float | int = 0.95
    alpha: float = 0.001
    tfidf: bool = True

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        # the synthetic fixture has events present in every window, which TF-IDF zeroes
        return {"tfidf": False}

    def _validate_params(self) -> None:
        super()._validate_params()
        k = self.n_components
        ok_float = isinstance(k, float) and 0.0 < k < 1.0
        ok_int = isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1
        if not (ok_float or ok_int):
            raise LogsieveError(
                f"n_components must be a float in (0, 1) or an integer >= 1, not {k!r}"
            )
        if not 0.0 < float(self.alpha) < 1.0:
            raise LogsieveError(f"alpha must be in (0, 1), not {self.alpha!r}")

    def _counter_params(self) -> dict[str, Any]:
        return {"tfidf": bool(self.tfidf), "normalize": "zero_mean"}

    def _fit_counts(self, train: pl.DataFrame, valid: pl.DataFrame) -> None:
        PCA = require("sklearn.decomposition", self.name).PCA

        X = self._features(train)
        if X.shape[0] < 2:
            raise LogsieveError("pca needs at least 2 training windows")
        pca = PCA(svd_solver="full").fit(X)
        eig = np.clip(pca.explained_variance_.astype(np.float64), 0.0, None)
        total = float(eig.sum())
        if isinstance(self.n_components, float):
            if total <= 0:
                k = 0
            else:
                ratio = np.cumsum(eig) / total
                k = int(np.searchsorted(ratio, self.n_components - 1e-12) + 1)
        else:
            k = int(self.n_components)
        k = min(k, len(eig))
        self.components_ = pca.components_[:k].astype(np.float64)
        self.center_ = pca.mean_.astype(np.float64)
        self.eigenvalues_ = eig
        self.n_components_ = k
        # eigenvalues at rounding-noise level are zero: normal data lies exactly in a subspace
        floor = _SPE_FLOOR * total if total > 0 else _SPE_FLOOR
        residual = np.where(eig[k:] > _EIG_RTOL * (eig[0] if len(eig) else 0.0), eig[k:], 0.0)
        q = q_statistic(residual, float(self.alpha))
        if q is None and not residual.any():
            q = 0.0  # no residual variance at all: any error above the noise floor is anomalous
        self.q_threshold_ = None if q is None else max(q, floor)
        logger.info(
            "pca: %d of %d components keep %.1f%% of the variance; Q-threshold %s",
            k,
            len(eig),
            100.0 * (eig[:k].sum() / total if total > 0 else 1.0),
            self.q_threshold_,
        )

    def _residual(self, X: np.ndarray) -> np.ndarray:
        Y = X - self.center_[None, :]
        return Y - (Y @ self.components_.T) @ self.components_

    def _score_matrix(self, X: np.ndarray) -> np.ndarray:
        R = self._residual(X)
        return np.einsum("ij,ij->i", R, R)

    def _contributions(self, X: np.ndarray) -> np.ndarray:
        return self._residual(X) ** 2

    def _natural_threshold(self) -> float | None:
        if self.q_threshold_ is None:
            logger.warning(
                "pca: Q-statistic undefined for these residual eigenvalues; using the quantile rule"
            )
        return self.q_threshold_

    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return (
            {"n_components": self.n_components_, "q_threshold": self.q_threshold_},
            {
                "components": self.components_,
                "center": self.center_,
                "eigenvalues": self.eigenvalues_,
            },
        )

    def _load_model_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.components_ = np.asarray(arrays["components"], dtype=np.float64)
        self.center_ = np.asarray(arrays["center"], dtype=np.float64)
        self.eigenvalues_ = np.asarray(arrays["eigenvalues"], dtype=np.float64)
        self.n_components_ = int(state["n_components"])
        q = state.get("q_threshold")
        self.q_threshold_ = None if q is None else float(q)
