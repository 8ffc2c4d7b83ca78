"""Supervised baselines on TF-IDF event counts (He et al., ISSRE 2016): LR, linear SVM, tree.

They train on distinct (count vector, label) rows weighted by multiplicity. Defaults
are those of loglizer's HDFS benchmark, except tighter solver tolerances for LR and
SVM (loglizer's stop the solvers far from the optimum; see each class).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl

from logsieve.detectors.base import resolve_seed
from logsieve.detectors.classical.base import CITATIONS, CountDetector, require, sklearn_quiet
from logsieve.detectors.classical.trees import FlatTrees
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError

__all__ = ["DecisionTreeDetector", "LogisticRegressionDetector", "SVMDetector"]


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
        the optimum (recall on HDFS in docs/results.md); the default converges.
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
        sklearn_quiet(model.fit, X, y, sample_weight=weight)
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
        iterations on weighted distinct rows, far from the optimum (recall on HDFS in
        docs/results.md); the default converges.
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
        sklearn_quiet(model.fit, X, y, sample_weight=weight)
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
        sklearn_quiet(model.fit, X, y, sample_weight=weight)
        tree = model.tree_
        value = tree.value[:, 0, :].astype(np.float64)
        total = value.sum(axis=1)
        pos = list(model.classes_).index(1)
        proba = np.divide(value[:, pos], total, out=np.zeros_like(total), where=total > 0)
        self.tree_ = FlatTrees.from_sklearn([tree], [proba])

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
        self.tree_ = FlatTrees.from_arrays(arrays, "tree.")
