"""Classical count-vector detectors: agreement with scikit-learn, the PCA Q-statistic,
weighted distinct training, explanations and parameter checks."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from detector_fixtures import TEMPLATES, make_windows

from logsieve.detectors.classical.iforest import IsolationForestDetector, average_path_length
from logsieve.detectors.classical.lof import LOFDetector
from logsieve.detectors.classical.ocsvm import OneClassSVMDetector
from logsieve.detectors.classical.pca import PCADetector, q_statistic
from logsieve.detectors.classical.supervised import (
    DecisionTreeDetector,
    LogisticRegressionDetector,
    SVMDetector,
)
from logsieve.detectors.registry import create_detector, load_detector
from logsieve.errors import LogsieveError


@pytest.fixture(scope="module")
def train() -> pl.DataFrame:
    return make_windows(seed=0)


@pytest.fixture(scope="module")
def test() -> pl.DataFrame:
    return make_windows(seed=1, prefix="t")


def windows(*seqs: list[str], labels: list[int] | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "window_id": [f"w{i}" for i in range(len(seqs))],
            "event_ids": [list(s) for s in seqs],
            "label": labels if labels is not None else [0] * len(seqs),
        },
        schema={"window_id": pl.String, "event_ids": pl.List(pl.String), "label": pl.Int8},
    )


def normal_part(det, train):
    """Features of the windows an unsupervised detector (valid_fraction=0) trained on."""
    return det._features(train.filter(pl.col("label") == 0))


# ----------------------------------------------------------------------------- PCA
def test_q_statistic_matches_monte_carlo_quantile():
    lam = np.array([1.0, 0.5, 0.25, 0.1])
    rng = np.random.default_rng(0)
    spe = (rng.standard_normal((400_000, lam.size)) ** 2) @ lam  # SPE of Gaussian residuals
    for alpha in (0.05, 0.01, 0.001):
        # Jackson-Mudholkar's approximation is close and slightly conservative here
        ratio = q_statistic(lam, alpha) / np.quantile(spe, 1 - alpha)
        assert 1.0 <= ratio < 1.15
    assert q_statistic(lam, 0.001) > q_statistic(lam, 0.01)
    assert q_statistic(np.zeros(3), 0.01) is None


def test_pca_components_and_natural_threshold(train, test):
    det = PCADetector(tfidf=False, valid_fraction=0.0).fit(train)
    eig = det.eigenvalues_
    k = det.n_components_
    assert eig[:k].sum() / eig.sum() >= 0.95 > eig[: k - 1].sum() / eig.sum()
    assert det.threshold_source_ == "model"
    # the fixture's normal windows lie exactly in a subspace: tiny threshold, anomalies far above it
    scores = det.decision_function(test)
    y = test.get_column("label").to_numpy()
    assert scores[y == 0].max() <= det.threshold_
    assert (
        scores[y == 1] > det.threshold_
    ).mean() >= 0.7  # all but the count-identical "order" kind


def test_pca_spe_equals_sklearn_reconstruction_error(train, test):
    from sklearn.decomposition import PCA

    det = PCADetector(tfidf=True, n_components=2, valid_fraction=0.0).fit(train)
    X = normal_part(det, train)
    ref = PCA(n_components=2, svd_solver="full").fit(X)
    Xt = det._features(test)
    recon = ref.inverse_transform(ref.transform(Xt))
    np.testing.assert_allclose(det.decision_function(test), ((Xt - recon) ** 2).sum(1), atol=1e-9)
    assert det.counter_.idf_ is not None and det.counter_.mean_ is not None


def test_pca_q_threshold_on_noisy_data():
    rng = np.random.default_rng(3)
    seqs = []
    for _ in range(400):  # a loop count plus noise events: real residual variance
        n = int(rng.integers(1, 5))
        seqs.append(
            ["A"] + ["B", "C"] * n + ["N"] * int(rng.poisson(1.0)) + ["M"] * int(rng.poisson(0.5))
        )
    w = windows(*seqs)
    det = PCADetector(tfidf=False, n_components=1, alpha=0.01, valid_fraction=0.0).fit(w)
    assert det.threshold_ == pytest.approx(q_statistic(det.eigenvalues_[1:], 0.01))
    false_alarms = (det.decision_function(w) > det.threshold_).mean()
    assert false_alarms < 0.05


def test_pca_bad_parameters(train):
    with pytest.raises(LogsieveError, match="n_components"):
        PCADetector(n_components=1.5).fit(train)
    with pytest.raises(LogsieveError, match="alpha"):
        PCADetector(alpha=0.0).fit(train)


# ----------------------------------------------------------------------------- trees
def test_average_path_length():
    np.testing.assert_allclose(average_path_length(np.array([0, 1, 2])), [0.0, 0.0, 1.0])
    n = 256.0
    expected = 2 * (np.log(n - 1) + np.euler_gamma) - 2 * (n - 1) / n
    assert average_path_length(np.array([n]))[0] == pytest.approx(expected)


def test_iforest_scores_equal_sklearn(train, test):
    from sklearn.ensemble import IsolationForest

    det = IsolationForestDetector(n_estimators=30, valid_fraction=0.0, random_state=5).fit(train)
    ref = IsolationForest(n_estimators=30, random_state=5).fit(normal_part(det, train))
    np.testing.assert_allclose(det.decision_function(test), -ref.score_samples(det._features(test)))
    assert det.threshold_ == 0.5


def test_dtree_scores_equal_sklearn_and_explain_path(train, test):
    from sklearn.tree import DecisionTreeClassifier

    det = DecisionTreeDetector(valid_fraction=0.0, random_state=2).fit(train, templates=TEMPLATES)
    X, w, y = det._distinct_features(train, by_label=True)
    ref = DecisionTreeClassifier(random_state=2).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(
        det.decision_function(test), ref.predict_proba(det._features(test))[:, 1]
    )
    unseen = test.filter(pl.col("event_ids").list.contains("E99")).head(1)
    (exp,) = det.explain(unseen)
    assert exp["path"] and all(r.startswith("count(") for r in exp["path"])
    assert any("E99" in r for r in exp["path"]) or exp["is_anomaly"]


# ----------------------------------------------------------------------------- kernels, neighbours
def test_ocsvm_decision_equals_sklearn_and_weights_match_duplicates(train, test):
    from sklearn.svm import OneClassSVM

    det = OneClassSVMDetector(nu=0.1, tfidf=True, valid_fraction=0.0).fit(train)
    X, w = det._distinct_features(train.filter(pl.col("label") == 0))
    full = normal_part(det, train)
    assert det.gamma_ == pytest.approx(1.0 / (full.shape[1] * full.var()))  # gamma="scale"
    ref = OneClassSVM(nu=0.1, gamma=det.gamma_).fit(X, sample_weight=w)
    Xt = det._features(test)
    np.testing.assert_allclose(det.decision_function(test), -ref.decision_function(Xt), atol=1e-9)
    dup = OneClassSVM(nu=0.1, gamma=det.gamma_).fit(full)  # every window, no weights
    np.testing.assert_allclose(det.decision_function(test), -dup.decision_function(Xt), atol=5e-2)


def test_lof_scores_equal_sklearn(train, test):
    from sklearn.neighbors import LocalOutlierFactor

    det = LOFDetector(n_neighbors=10, tfidf=False, valid_fraction=0.0).fit(train)
    ref = LocalOutlierFactor(n_neighbors=10, novelty=True).fit(normal_part(det, train))
    np.testing.assert_allclose(
        det.decision_function(test), -ref.score_samples(det._features(test)), rtol=1e-9
    )
    assert det.threshold_ == 1.5


def test_ocsvm_and_lof_parameter_checks(train):
    with pytest.raises(LogsieveError, match="kernel"):
        OneClassSVMDetector(kernel="poly").fit(train)
    with pytest.raises(LogsieveError, match="nu"):
        OneClassSVMDetector(nu=0.0).fit(train)
    with pytest.raises(LogsieveError, match="n_neighbors"):
        LOFDetector(n_neighbors=0).fit(train)


# ----------------------------------------------------------------------------- supervised
@pytest.mark.parametrize("cls", [LogisticRegressionDetector, SVMDetector])
def test_linear_models_score_is_decision_value(cls, train, test):
    det = cls(valid_fraction=0.0, tfidf=False).fit(train)
    X = det._features(test)
    np.testing.assert_allclose(det.decision_function(test), X @ det.coef_ + det.intercept_)
    pred = det.predict(test)
    y = test.get_column("label").to_numpy()
    assert (pred == y).mean() > 0.9
    assert det.threshold_ == 0.0


def test_weighted_distinct_training_equals_training_on_every_window(train, test):
    from sklearn.linear_model import LogisticRegression

    det = LogisticRegressionDetector(valid_fraction=0.0, tol=1e-10, max_iter=5000).fit(train)
    X = det._features(train)
    y = train.get_column("label").to_numpy()
    ref = LogisticRegression(C=100.0, tol=1e-10, max_iter=5000).fit(X, y)
    Xt = det._features(test)
    np.testing.assert_allclose(det.decision_function(test), ref.decision_function(Xt), atol=1e-3)
    Xd, w, yd = det._distinct_features(train, by_label=True)
    assert w.sum() == train.height and len(Xd) < train.height
    assert set(np.unique(yd)) == {0, 1}


def test_supervised_models_need_both_labels(train):
    normal_only = train.filter(pl.col("label") == 0)
    for name in ("lr", "svm", "dtree"):
        with pytest.raises(LogsieveError, match="supervised"):
            create_detector(name).fit(normal_only)


# ----------------------------------------------------------------------------- common behaviour
def test_tfidf_zeroes_events_present_in_every_window(train):
    det = PCADetector(tfidf=True, valid_fraction=0.0).fit(train)
    names = ["<oov>", *det.counter_.vocab_.tokens]
    idf = dict(zip(names, det.counter_.idf_, strict=True))
    assert idf["E1"] == 0.0 and idf["E7"] > 0.0  # E1 opens every normal window


def test_explain_lists_unseen_events_and_templates(train):
    det = create_detector("pca", tfidf=False).fit(train, templates=TEMPLATES)
    w = windows(["E1", "E2", "E4", "E5", "E6", "E8", "X1", "X1", "X2"])
    (exp,) = det.explain(w, top=3)
    assert exp["unseen_events"] == ["X1", "X2"]
    assert exp["is_anomaly"] and exp["score"] > det.threshold_
    assert exp["events"][0]["event_id"] == "<oov>" and exp["events"][0]["count"] == 3
    assert len(exp["events"]) <= 3
    known = [e for e in exp["events"] if e["event_id"] != "<oov>"]
    assert all(e["template"] == TEMPLATES[e["event_id"]] for e in known)


def test_linear_explanation_ranks_by_signed_contribution(train):
    det = SVMDetector(tfidf=False, valid_fraction=0.0).fit(train)
    w = windows(["E1", "E2", "E4", "E5", "E4", "E5", "E6", "E8"])
    (exp,) = det.explain(w)
    contribs = [e["contribution"] for e in exp["events"]]
    assert contribs == sorted(contribs, reverse=True) and all(c > 0 for c in contribs)


def test_saved_model_is_plain_arrays_and_json(train, test, tmp_path):
    for name in ("iforest", "lof", "dtree", "ocsvm"):
        det = create_detector(name, tfidf=False).fit(train)
        path = det.save(tmp_path / name)
        assert sorted(p.name for p in path.iterdir()) == ["model.json", "weights.safetensors"]
        again = load_detector(path)
        np.testing.assert_array_equal(again.decision_function(test), det.decision_function(test))


def test_supervised_threshold_best_f1_uses_validation(train):
    valid = make_windows(n_normal=80, n_anomalous=16, seed=9, prefix="v")
    det = create_detector("lr", tfidf=False, threshold="best_f1").fit(train, valid=valid)
    assert det.threshold_source_ == "valid"
