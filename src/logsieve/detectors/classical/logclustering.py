"""LogClustering (Lin, Zhang, Lou, Zhang, Chen, ICSE 2016): clusters of normal windows.

Windows become weighted event vectors, similar normal windows are clustered and each
cluster is represented by one real window; a new window that matches no known cluster
(cosine distance above the threshold) is a new, so anomalous, behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from logsieve.detectors.base import check_positive_ints
from logsieve.detectors.classical.base import CountDetector, require
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.counts import count_matrix
from logsieve.features.sequence import check_windows

logger = logging.getLogger(__name__)

__all__ = ["LogClustering", "cosine_distances"]

CITATION = (
    "Qingwei Lin, Hongyu Zhang, Jian-Guang Lou, Yu Zhang, Xuewei Chen. "
    "Log Clustering based Problem Identification for Online Service Systems. "
    "ICSE 2016 (SEIP). https://doi.org/10.1145/2889160.2889232"
)

_LINKAGES = ("complete", "average", "single")


def _unit_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.linalg.norm(X, axis=1)
    zero = norms == 0
    return X / np.where(zero, 1.0, norms)[:, None], zero


def cosine_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``1 - cos(a, b)`` of every row pair, in [0, 2] (empty rows: 0 to each other, else 1)."""
    An, az = _unit_rows(np.asarray(A, dtype=np.float64))
    Bn, bz = _unit_rows(np.asarray(B, dtype=np.float64))
    D = np.clip(1.0 - An @ Bn.T, 0.0, 2.0)
    if az.any() or bz.any():
        D[az, :] = 1.0
        D[:, bz] = 1.0
        D[np.ix_(az, bz)] = 0.0
    return D


@register_detector("logclustering")
class LogClustering(CountDetector):
    """LogClustering (Lin et al., ICSE 2016), following the paper:

    - vectorisation: event counts weighted by ``w(t) = 0.5 * Norm(IDF(t)) + 0.5 *
      Contrast(t)``, ``IDF(t) = log(N / n_t)`` over the training windows, ``Norm`` the
      sigmoid; the training windows play the paper's "testing environment", so
      ``Contrast(t) = 1`` exactly for the out-of-vocabulary column (unseen events);
      ``contrast=False`` uses ``Norm(IDF)`` only;
    - clustering: agglomerative, cosine distance, complete linkage, cut at
      ``max_distance`` (scipy ``linkage`` / ``fcluster``) over the distinct normal
      training vectors;
    - representatives: per cluster the member with the smallest average distance to the
      others (windows weighted by their counts), i.e. a real window, not a mean;
    - matching: score = cosine distance to the nearest representative, anomalous above
      ``anomaly_threshold``;
    - online update: :meth:`update` adds windows confirmed normal to the nearest cluster
      when within ``max_distance`` (incremental centroid) or opens a new one; ``fit``
      clusters the first ``max_offline`` distinct vectors offline and adds the rest this
      way (the paper's and loglizer's way to scale).

    Not implemented: labelling clusters as known problems (the knowledge base holds
    normal behaviour only). Defaults: loglizer's HDFS setting ``max_distance =
    anomaly_threshold = 0.3``. With the paper's sigmoid weights every known event weighs
    between 0.25 and 0.5, so 0.3 is a loose threshold; ``threshold="best_f1"`` or a
    smaller ``anomaly_threshold`` sets the operating point (figures in docs/results.md).

    Parameters
    ----------
    max_distance : float, default 0.3
        Cosine-distance threshold of the hierarchical clustering and of the online
        assignment.
    anomaly_threshold : float or None, default None
        A window farther than this from every representative is anomalous (the
        natural threshold); None = ``max_distance``.
    contrast : bool, default True
        Add the contrast-based weight (1 for events unseen in training).
    linkage : {"complete", "average", "single"}, default "complete"
    max_offline : int, default 5000
        Distinct training vectors clustered offline; the rest join online.

    Attributes
    ----------
    weights_ : ndarray, shape (n_columns,)
        Event weights ``w(t)``.
    representatives_ : ndarray, shape (n_clusters, n_columns)
        Weighted vector of each cluster's representative window.
    cluster_sizes_ : ndarray, shape (n_clusters,)
        Training windows per cluster.
    """

    description: ClassVar[str] = (
        "hierarchical clustering of weighted event vectors; "
        "score = cosine distance to the nearest known cluster"
    )
    citation: ClassVar[str] = CITATION

    max_distance: float = 0.3
    anomaly_threshold: float | None = None
    contrast: bool = True
    linkage: str = "complete"
    max_offline: int = 5000

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {"max_distance": 0.05}

    def _validate_params(self) -> None:
        super()._validate_params()
        if not 0.0 <= float(self.max_distance) <= 2.0:
            raise LogsieveError(f"max_distance must be in [0, 2], not {self.max_distance!r}")
        if self.anomaly_threshold is not None and not 0.0 <= float(self.anomaly_threshold) <= 2.0:
            raise LogsieveError(
                f"anomaly_threshold must be in [0, 2] or None, not {self.anomaly_threshold!r}"
            )
        if self.linkage not in _LINKAGES:
            raise LogsieveError(
                f"linkage must be one of {', '.join(_LINKAGES)}, not {self.linkage!r}"
            )
        check_positive_ints(self, "max_offline", minimum=2)

    def _counter_params(self) -> dict[str, Any]:
        return {"tfidf": True, "normalize": None}

    def _features(self, windows: pl.DataFrame) -> np.ndarray:
        raw = count_matrix(windows, self.counter_.vocab_).astype(np.float64)
        return raw * self.weights_[None, :]

    # ------------------------------------------------------------------ clustering
    def _event_weights(self, idf: np.ndarray) -> np.ndarray:
        """``w(t) = 0.5 * sigmoid(IDF(t)) + 0.5 * Contrast(t)``; ``sigmoid(IDF)`` if no contrast."""
        weights = 0.5 / (1.0 + np.exp(-idf))
        if not self.contrast:
            return 2.0 * weights
        weights[0] += 0.5  # the out-of-vocabulary column: events unseen in training
        return weights

    def _fit_counts(self, train: pl.DataFrame, valid: pl.DataFrame) -> None:
        hierarchy = require("scipy.cluster.hierarchy", self.name)
        squareform = require("scipy.spatial.distance", self.name).squareform

        idf = self.counter_.idf_
        assert idf is not None  # the counter is fitted with tfidf=True (_counter_params)
        self.weights_ = self._event_weights(idf.astype(np.float64))
        X, w = self._distinct_features(train)
        n_off = min(len(X), int(self.max_offline))
        Xo, wo = X[:n_off], w[:n_off]
        if n_off == 1:
            labels = np.zeros(1, dtype=np.int64)
            D = np.zeros((1, 1))
        else:
            D = cosine_distances(Xo, Xo)
            np.fill_diagonal(D, 0.0)
            D = (D + D.T) / 2.0
            Z = hierarchy.linkage(squareform(D, checks=False), method=self.linkage)
            labels = (
                hierarchy.fcluster(Z, t=float(self.max_distance), criterion="distance").astype(
                    np.int64
                )
                - 1
            )
        # member scores: weighted sum of distances to the other members of the same cluster
        n_clusters = int(labels.max()) + 1
        onehot = np.zeros((n_off, n_clusters))
        onehot[np.arange(n_off), labels] = wo
        score = (D @ onehot)[np.arange(n_off), labels]
        self.members_ = Xo
        self.member_cluster_ = labels
        self.member_weight_ = wo.astype(np.float64)
        self.member_score_ = score
        self._refresh_representatives()
        if len(X) > n_off:
            logger.info(
                "logclustering: %d distinct vectors clustered offline, %d added online",
                n_off,
                len(X) - n_off,
            )
            self._add_online(X[n_off:], w[n_off:])
        logger.info(
            "logclustering: %d clusters from %d distinct training vectors",
            len(self.rep_index_),
            len(self.members_),
        )

    def _refresh_representatives(self) -> None:
        """Representative of every cluster: the member of least summed distance (oldest on ties)."""
        labels, score = self.member_cluster_, self.member_score_
        order = np.lexsort(
            (np.arange(len(labels)), score, labels)
        )  # by cluster, then score, then age
        first = np.unique(labels[order], return_index=True)[1]
        self.rep_index_ = order[first].astype(np.int64)
        self.cluster_sizes_ = np.bincount(
            labels, weights=self.member_weight_, minlength=len(self.rep_index_)
        )

    @property
    def representatives_(self) -> np.ndarray:
        return self.members_[self.rep_index_]

    def _add_online(self, X: np.ndarray, w: np.ndarray) -> None:
        """The paper's online step, row by row: join the nearest cluster or open a new one."""
        n0, m = len(self.members_), len(X)
        M = np.vstack([self.members_, X])  # room for every new row; filled in order
        Mn, mzero = _unit_rows(M)
        lab = np.concatenate([self.member_cluster_, np.full(m, -1, dtype=np.int64)])
        wt = np.concatenate([self.member_weight_, np.asarray(w, dtype=np.float64)])
        sc = np.concatenate([self.member_score_, np.zeros(m)])
        rep_index = list(self.rep_index_)
        members_of: dict[int, list[int]] = {}
        for i, c in enumerate(self.member_cluster_.tolist()):
            members_of.setdefault(c, []).append(i)
        cap = len(rep_index) + m
        Rn = np.zeros((cap, M.shape[1]))
        rzero = np.zeros(cap, dtype=bool)
        n_rep = len(rep_index)
        Rn[:n_rep], rzero[:n_rep] = Mn[rep_index], mzero[rep_index]

        def dist(i: int, rows: np.ndarray, rows_zero: np.ndarray) -> np.ndarray:
            d = np.clip(1.0 - rows @ Mn[i], 0.0, 2.0)
            if mzero[i]:
                return np.where(rows_zero, 0.0, 1.0)
            d[rows_zero] = 1.0
            return d

        for i in range(n0, n0 + m):
            d_rep = dist(i, Rn[:n_rep], rzero[:n_rep])
            c = int(np.argmin(d_rep)) if n_rep else -1
            if c >= 0 and d_rep[c] <= self.max_distance:
                idx = np.asarray(members_of[c])
                d = dist(i, Mn[idx], mzero[idx])
                sc[idx] += wt[i] * d
                sc[i] = float(wt[idx] @ d)
                members_of[c].append(i)
                lab[i] = c
                cand = np.asarray(members_of[c])
                best = int(cand[np.argmin(sc[cand])])
                rep_index[c] = best
                Rn[c], rzero[c] = Mn[best], mzero[best]
            else:
                c = n_rep
                n_rep += 1
                members_of[c] = [i]
                lab[i] = c
                rep_index.append(i)
                Rn[c], rzero[c] = Mn[i], mzero[i]
        self.members_, self.member_cluster_, self.member_weight_, self.member_score_ = (
            M,
            lab,
            wt,
            sc,
        )
        self.rep_index_ = np.asarray(rep_index, dtype=np.int64)
        self.cluster_sizes_ = np.bincount(lab, weights=wt, minlength=len(rep_index))

    def update(self, windows: pl.DataFrame) -> Self:
        """Online update with windows known to be normal (e.g. confirmed false alarms).

        Each distinct window joins the nearest cluster when within ``max_distance``
        (its representative is recomputed) or opens a new cluster, as in the paper's
        online phase. The event weights and the threshold are unchanged.
        """
        self._check_fitted()
        windows = check_windows(windows)
        if windows.height == 0:
            return self
        X, w = self._distinct_features(windows)
        before = len(self.rep_index_)
        self._add_online(X, w)
        logger.info(
            "logclustering: update added %d windows, %d new clusters",
            int(w.sum()),
            len(self.rep_index_) - before,
        )
        return self

    # ------------------------------------------------------------------ scoring
    def _nearest(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        D = cosine_distances(X, self.representatives_)
        idx = np.argmin(D, axis=1)
        return idx, D[np.arange(X.shape[0]), idx]

    def _score_matrix(self, X: np.ndarray) -> np.ndarray:
        return self._nearest(X)[1]

    def _natural_threshold(self) -> float:
        return float(
            self.max_distance if self.anomaly_threshold is None else self.anomaly_threshold
        )

    def _contributions(self, X: np.ndarray) -> np.ndarray:
        idx, _ = self._nearest(X)
        Xn, _ = _unit_rows(X)
        Rn, _ = _unit_rows(self.representatives_[idx])
        return np.abs(Xn - Rn)

    def _explain_extra(self, windows: pl.DataFrame, X: np.ndarray) -> list[dict[str, Any]]:
        idx, dist = self._nearest(X)
        reps_raw = self.representatives_[idx] / self.weights_[None, :]
        raw = X / self.weights_[None, :]
        out = []
        for i in range(X.shape[0]):
            diff = np.flatnonzero(np.abs(np.rint(raw[i]) - np.rint(reps_raw[i])) > 0)
            out.append(
                {
                    "nearest_cluster": int(idx[i]),
                    "cluster_size": float(self.cluster_sizes_[idx[i]]),
                    "distance": float(dist[i]),
                    "differences": [
                        {
                            "event_id": self._event_label(int(j)),
                            "count": int(round(raw[i, j])),
                            "representative_count": int(round(reps_raw[i, j])),
                        }
                        for j in diff
                    ],
                }
            )
        return out

    # ------------------------------------------------------------------ persistence
    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {
            "weights": self.weights_,
            "members": self.members_,
            "member_cluster": self.member_cluster_,
            "member_weight": self.member_weight_,
            "member_score": self.member_score_,
            "rep_index": self.rep_index_,
        }

    def _load_model_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.weights_ = np.asarray(arrays["weights"], dtype=np.float64)
        self.members_ = np.asarray(arrays["members"], dtype=np.float64)
        self.member_cluster_ = np.asarray(arrays["member_cluster"], dtype=np.int64)
        self.member_weight_ = np.asarray(arrays["member_weight"], dtype=np.float64)
        self.member_score_ = np.asarray(arrays["member_score"], dtype=np.float64)
        self.rep_index_ = np.asarray(arrays["rep_index"], dtype=np.int64)
        n = len(self.members_)
        if not (
            len(self.member_cluster_) == len(self.member_weight_) == len(self.member_score_) == n
        ):
            raise LogsieveError("saved clusters: member arrays have different lengths")
        if self.rep_index_.size and (self.rep_index_.min() < 0 or self.rep_index_.max() >= n):
            raise LogsieveError("saved clusters: representative index out of range")
        self.cluster_sizes_ = np.bincount(
            self.member_cluster_, weights=self.member_weight_, minlength=len(self.rep_index_)
        )
