"""Classical detectors over event-count vectors (the loglizer family), on the detector contract.

Every model here turns a window into its event-count vector
(:class:`~logsieve.features.counts.EventCounter`: one column per event id of the
training vocabulary plus an out-of-vocabulary column, optionally TF-IDF weighted and
zero-meaned) and scores it; HIGHER = MORE ANOMALOUS everywhere (scikit-learn's
``score_samples`` / ``decision_function`` are flipped where needed).

Unsupervised (trained on normal windows):

- :class:`PCADetector` (``"pca"``): Xu et al., SOSP'09. Residual subspace of the
  principal components; score = squared prediction error (SPE); natural threshold =
  the Q-statistic of Jackson & Mudholkar at confidence ``1 - alpha``.
- :class:`IsolationForestDetector` (``"iforest"``): Liu, Ting, Zhou, ICDM'08; score =
  ``2 ** (-E[h(x)] / c(psi))``, natural threshold 0.5 (scikit-learn's
  ``contamination="auto"`` offset).
- :class:`OneClassSVMDetector` (``"ocsvm"``): Schölkopf et al., 2001; score = minus the
  SVM decision value, natural threshold 0 (the boundary).
- :class:`LOFDetector` (``"lof"``): Breunig et al., SIGMOD'00, novelty mode; score =
  the local outlier factor, natural threshold 1.5 (scikit-learn's ``"auto"`` offset).

Supervised (need labels 0 and 1; windows weighted by how often they occur):

- :class:`LogisticRegressionDetector` (``"lr"``), :class:`SVMDetector` (``"svm"``,
  linear), :class:`DecisionTreeDetector` (``"dtree"``); scores = the decision value
  (log-odds) / SVM margin / leaf probability of the anomaly class; natural thresholds 0,
  0 and 0.5 (the classifiers' own predictions).

Hyperparameter defaults are those of loglizer's HDFS benchmark (He et al., ISSRE'16
"Experience Report: System Log Analysis for Anomaly Detection") where it has the model:
PCA on TF-IDF + zero-mean counts with 95 % variance kept; LR ``C=100``; linear SVM
``penalty="l1", C=1, dual=False``; decision tree with Gini and no depth limit; Isolation
Forest on raw counts. Deviation: the solver tolerances of LR and SVM are tighter than
loglizer's (its loose ones stop the solvers far from the optimum). See each class.

scikit-learn fits the models; the fitted state is stored as plain arrays (no pickle)
and scoring is re-implemented in NumPy from those arrays (trees, kernels, neighbours),
so a saved model gives the same scores after loading. Tests check that these scores
equal scikit-learn's own ``score_samples`` / ``decision_function``.

Training on repeated windows: models whose objective is a sum over windows (LR, SVM,
decision tree, One-Class SVM) train on each distinct count vector once with its
multiplicity as sample weight, which is the same objective as training on every
window; PCA, Isolation Forest and LOF see every training window (their estimates are
not sums of per-window terms: subsampling, density).
"""

from __future__ import annotations

import abc
import logging
import math
import warnings
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np
import polars as pl

from logsieve.detectors.base import (
    BaseDetector,
    InputKind,
    ProgressCallback,
    _window_ids,
    check_positive_ints,
    resolve_seed,
)
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.counts import OOV_NAME, EventCounter, count_matrix
from logsieve.features.sequence import check_windows, event_id_series
from logsieve.schema import EVENT_IDS, LABEL

logger = logging.getLogger(__name__)

__all__ = [
    "CountDetector",
    "DecisionTreeDetector",
    "IsolationForestDetector",
    "LOFDetector",
    "LogisticRegressionDetector",
    "OneClassSVMDetector",
    "PCADetector",
    "SVMDetector",
    "q_statistic",
    "require",
]

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
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise LogsieveError(
            f"detector {detector!r} needs {exc.name or module!r}: pip install 'logsieve[ml]'"
        ) from exc


def _sklearn_quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
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


# =============================================================================== base
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


# =============================================================================== PCA
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


# =============================================================================== trees
class _FlatTrees:
    """Binary decision trees flattened into one set of node arrays (scored in NumPy).

    ``feature[n] < 0`` marks a leaf; internal nodes send ``x[feature] <= threshold``
    to ``left`` else ``right``; ``value[n]`` is the leaf's output.
    """

    KEYS = ("feature", "threshold", "left", "right", "value", "roots")

    def __init__(  # type: ignore[no-untyped-def]
        self, feature, threshold, left, right, value, roots
    ) -> None:
        self.feature = np.asarray(feature, dtype=np.int64)
        self.threshold = np.asarray(threshold, dtype=np.float64)
        self.left = np.asarray(left, dtype=np.int64)
        self.right = np.asarray(right, dtype=np.int64)
        self.value = np.asarray(value, dtype=np.float64)
        self.roots = np.asarray(roots, dtype=np.int64)
        n = len(self.feature)
        if not (len(self.threshold) == len(self.left) == len(self.right) == len(self.value) == n):
            raise LogsieveError("tree arrays have different lengths")
        internal = self.feature >= 0
        if internal.any() and (
            self.left[internal].min() < 0
            or self.left[internal].max() >= n
            or self.right[internal].max() >= n
        ):
            raise LogsieveError("tree arrays hold out-of-range child indices")

    @classmethod
    def from_sklearn(
        cls, trees: list[Any], values: list[np.ndarray], features: list[np.ndarray] | None = None
    ) -> _FlatTrees:
        """Flatten scikit-learn ``tree_`` objects; ``values[t]`` is tree ``t``'s node output."""
        parts: dict[str, list[np.ndarray]] = {k: [] for k in cls.KEYS}
        offset = 0
        for t, tree in enumerate(trees):
            feat = tree.feature.astype(np.int64)
            leaf = tree.children_left < 0
            if features is not None:
                feat = np.where(
                    leaf, -1, np.asarray(features[t], dtype=np.int64)[np.where(leaf, 0, feat)]
                )
            else:
                feat = np.where(leaf, -1, feat)
            parts["feature"].append(feat)
            parts["threshold"].append(tree.threshold.astype(np.float64))
            parts["left"].append(np.where(leaf, -1, tree.children_left + offset))
            parts["right"].append(np.where(leaf, -1, tree.children_right + offset))
            parts["value"].append(np.asarray(values[t], dtype=np.float64))
            parts["roots"].append(np.array([offset]))
            offset += tree.node_count
        return cls(*(np.concatenate(parts[k]) for k in cls.KEYS))

    def leaves(self, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Leaf node reached by every row of ``X`` in every tree, shape (n_rows, n_trees)."""
        X = np.asarray(X, dtype=np.float32)  # scikit-learn trees compare float32 features
        out = np.empty((X.shape[0], len(self.roots)), dtype=np.int64)
        for a in range(0, X.shape[0], chunk):
            Xc = X[a : a + chunk]
            node = np.broadcast_to(self.roots, (Xc.shape[0], len(self.roots))).copy()
            rows = np.arange(Xc.shape[0])[:, None]
            while True:
                feat = self.feature[node]
                internal = feat >= 0
                if not internal.any():
                    break
                vals = Xc[rows, np.where(internal, feat, 0)].astype(np.float64)
                nxt = np.where(vals <= self.threshold[node], self.left[node], self.right[node])
                node = np.where(internal, nxt, node)
            out[a : a + chunk] = node
        return out

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": getattr(self, k) for k in self.KEYS}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> _FlatTrees:
        return cls(*(arrays[f"{prefix}{k}"] for k in cls.KEYS))


def average_path_length(n: np.ndarray | float) -> np.ndarray:
    """``c(n)``: average path length of an unsuccessful BST search among ``n`` points."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    two = n == 2
    big = n > 2
    out[two] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _node_depths(tree: Any) -> np.ndarray:
    depth = np.zeros(tree.node_count, dtype=np.float64)
    frontier = np.array([0])
    while frontier.size:
        internal = frontier[tree.children_left[frontier] >= 0]
        kids_l, kids_r = tree.children_left[internal], tree.children_right[internal]
        depth[kids_l] = depth[internal] + 1
        depth[kids_r] = depth[internal] + 1
        frontier = np.concatenate([kids_l, kids_r])
    return depth


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
        IsolationForest = require("sklearn.ensemble", self.name).IsolationForest

        X = self._features(train)
        forest = IsolationForest(
            n_estimators=int(self.n_estimators),
            max_samples=self.max_samples,
            max_features=float(self.max_features),
            random_state=resolve_seed(self.random_state),
        )
        _sklearn_quiet(forest.fit, X)
        values = []
        for est in forest.estimators_:
            tree = est.tree_
            values.append(_node_depths(tree) + average_path_length(tree.n_node_samples))
        self.trees_ = _FlatTrees.from_sklearn(
            [e.tree_ for e in forest.estimators_],
            values,
            [np.asarray(f) for f in forest.estimators_features_],
        )
        self.max_samples_ = int(forest.max_samples_)

    def _score_matrix(self, X: np.ndarray) -> np.ndarray:
        leaves = self.trees_.leaves(X)
        depth = self.trees_.value[leaves].mean(axis=1)
        norm = float(average_path_length(np.array([self.max_samples_]))[0])
        return np.power(2.0, -depth / norm) if norm > 0 else np.ones(X.shape[0])

    def _natural_threshold(self) -> float:
        return 0.5

    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"max_samples": self.max_samples_}, self.trees_.to_arrays("tree.")

    def _load_model_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.trees_ = _FlatTrees.from_arrays(arrays, "tree.")
        self.max_samples_ = int(state["max_samples"])


# =============================================================================== One-Class SVM
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
        _sklearn_quiet(model.fit, X, sample_weight=weight)
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


# =============================================================================== LOF
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
        _sklearn_quiet(lof.fit, X)
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


# =============================================================================== supervised
class _SupervisedCountDetector(CountDetector):
    """Supervised count models: fit on distinct (vector, label) rows weighted by multiplicity."""

    requires_labels: ClassVar[bool] = True

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {"tfidf": False}

    def _training_rows(self, train: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X, weight, y = self._distinct_features(train, by_label=True)
        return X, weight, y


class _LinearCountDetector(_SupervisedCountDetector):
    def _score_matrix(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef_ + self.intercept_

    def _contributions(self, X: np.ndarray) -> np.ndarray:
        return X * self.coef_[None, :]

    def _natural_threshold(self) -> float:
        return 0.0

    def _store_linear(self, model: Any) -> None:
        classes = list(model.classes_)
        sign = 1.0 if classes.index(1) == 1 else -1.0
        self.coef_ = sign * np.asarray(model.coef_, dtype=np.float64).reshape(-1)
        self.intercept_ = sign * float(np.asarray(model.intercept_).reshape(-1)[0])

    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"intercept": self.intercept_}, {"coef": self.coef_}

    def _load_model_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.coef_ = np.asarray(arrays["coef"], dtype=np.float64)
        self.intercept_ = float(state["intercept"])


@register_detector("lr")
class LogisticRegressionDetector(_LinearCountDetector):
    """Logistic regression on TF-IDF event-count vectors (supervised; He et al., ISSRE 2016).

    Score = the decision value ``w . x + b`` (log-odds of the anomaly class); the natural
    threshold 0 is probability 0.5.

    Parameters
    ----------
    C : float, default 100
        Inverse L2 regularisation (loglizer: ``C=100``).
    tol : float, default 1e-4
        Stopping tolerance of the lbfgs solver. loglizer's ``tol=0.01`` stops lbfgs (and
        liblinear) after a handful of iterations on weighted distinct rows, far from
        the optimum (on HDFS, recall 0.68 instead of 0.92); the default converges.
    max_iter : int, default 1000
    class_weight : None or "balanced", default None
    tfidf : bool, default True
    """

    description: ClassVar[str] = (
        "logistic regression on TF-IDF event counts (supervised); score = log-odds of anomaly"
    )
    citation: ClassVar[str] = CITATIONS["supervised"]

    C: float = 100.0
    tol: float = 1e-4
    max_iter: int = 1000
    class_weight: str | None = None
    tfidf: bool = True

    def _fit_counts(self, train: pl.DataFrame, valid: pl.DataFrame) -> None:
        LogisticRegression = require("sklearn.linear_model", self.name).LogisticRegression

        X, weight, y = self._training_rows(train)
        model = LogisticRegression(
            C=float(self.C),
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            class_weight=self.class_weight,
        )
        _sklearn_quiet(model.fit, X, y, sample_weight=weight)
        self._store_linear(model)


@register_detector("svm")
class SVMDetector(_LinearCountDetector):
    """Linear SVM on TF-IDF event-count vectors (supervised; He et al., ISSRE 2016).

    scikit-learn's ``LinearSVC``; score = the signed margin ``w . x + b``, natural
    threshold 0.

    Parameters
    ----------
    C : float, default 1.0
    penalty : {"l1", "l2"}, default "l1"
        loglizer: L1 penalty, primal solver (``dual=False``).
    tol : float, default 1e-4
        Stopping tolerance. loglizer's ``tol=0.1`` stops liblinear after a few
        iterations on weighted distinct rows, far from the optimum (on HDFS, recall
        0.68 instead of 0.97); the default converges.
    max_iter : int, default 10000
    class_weight : None or "balanced", default None
    tfidf : bool, default True
    """

    description: ClassVar[str] = (
        "linear SVM on TF-IDF event counts (supervised); score = signed margin"
    )
    citation: ClassVar[str] = CITATIONS["supervised"]

    C: float = 1.0
    penalty: str = "l1"
    tol: float = 1e-4
    max_iter: int = 10000
    class_weight: str | None = None
    tfidf: bool = True

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.penalty not in ("l1", "l2"):
            raise LogsieveError(f"penalty must be 'l1' or 'l2', not {self.penalty!r}")

    def _fit_counts(self, train: pl.DataFrame, valid: pl.DataFrame) -> None:
        LinearSVC = require("sklearn.svm", self.name).LinearSVC

        X, weight, y = self._training_rows(train)
        model = LinearSVC(
            C=float(self.C),
            penalty=self.penalty,
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            dual=False,
            class_weight=self.class_weight,
            random_state=resolve_seed(self.random_state),
        )
        _sklearn_quiet(model.fit, X, y, sample_weight=weight)
        self._store_linear(model)


@register_detector("dtree")
class DecisionTreeDetector(_SupervisedCountDetector):
    """Decision tree on TF-IDF event-count vectors (supervised; He et al., ISSRE 2016).

    scikit-learn's ``DecisionTreeClassifier`` (Gini, unlimited depth, as loglizer); score
    = the anomaly-class share of the training weight in the window's leaf; natural
    threshold 0.5. Explanations list the splits on the window's path.

    Parameters
    ----------
    criterion : str, default "gini"
    max_depth : int or None, default None
    min_samples_leaf : int, default 1
    class_weight : None or "balanced", default None
    tfidf : bool, default True
    """

    description: ClassVar[str] = (
        "decision tree on TF-IDF event counts (supervised); score = leaf anomaly probability"
    )
    citation: ClassVar[str] = CITATIONS["supervised"]

    criterion: str = "gini"
    max_depth: int | None = None
    min_samples_leaf: int = 1
    class_weight: str | None = None
    tfidf: bool = True

    def _fit_counts(self, train: pl.DataFrame, valid: pl.DataFrame) -> None:
        DecisionTreeClassifier = require("sklearn.tree", self.name).DecisionTreeClassifier

        X, weight, y = self._training_rows(train)
        model = DecisionTreeClassifier(
            criterion=self.criterion,
            max_depth=self.max_depth,
            min_samples_leaf=int(self.min_samples_leaf),
            class_weight=self.class_weight,
            random_state=resolve_seed(self.random_state),
        )
        _sklearn_quiet(model.fit, X, y, sample_weight=weight)
        tree = model.tree_
        value = tree.value[:, 0, :].astype(np.float64)
        total = value.sum(axis=1)
        pos = list(model.classes_).index(1)
        proba = np.divide(value[:, pos], total, out=np.zeros_like(total), where=total > 0)
        self.tree_ = _FlatTrees.from_sklearn([tree], [proba])

    def _score_matrix(self, X: np.ndarray) -> np.ndarray:
        return self.tree_.value[self.tree_.leaves(X)[:, 0]]

    def _natural_threshold(self) -> float:
        return 0.5

    def _path(self, x: np.ndarray) -> list[tuple[int, float, bool]]:
        t = self.tree_
        node, path = int(t.roots[0]), []
        x32 = np.asarray(x, dtype=np.float32)
        while t.feature[node] >= 0:
            f = int(t.feature[node])
            left = float(x32[f]) <= t.threshold[node]
            path.append((f, float(t.threshold[node]), left))
            node = int(t.left[node] if left else t.right[node])
        return path

    def _contributions(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros_like(X)
        for i in range(X.shape[0]):  # explain() only: paths of a few windows
            for depth, (f, _, _) in enumerate(self._path(X[i])):
                out[i, f] = max(out[i, f], 1.0 / (depth + 1))
        return out

    def _explain_extra(self, windows: pl.DataFrame, X: np.ndarray) -> list[dict[str, Any]]:
        idf = self.counter_.idf_
        out = []
        for i in range(X.shape[0]):
            rules = []
            for f, thr, left in self._path(X[i]):
                raw_thr = thr / idf[f] if idf is not None and idf[f] > 0 else thr
                rules.append(f"count({self._event_label(f)}) {'<=' if left else '>'} {raw_thr:.4g}")
            out.append({"path": rules})
        return out

    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, self.tree_.to_arrays("tree.")

    def _load_model_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.tree_ = _FlatTrees.from_arrays(arrays, "tree.")
