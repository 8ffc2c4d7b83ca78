"""PLELog: probabilistic label estimation (on its own), the semi-supervised rule, the
attention-GRU classifier, explanations and persistence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from detector_fixtures import make_windows

from logsieve.detectors.plelog import (
    KNOWN_NORMAL,
    NOISE_AS_ANOMALY,
    NOISE_AS_NORMAL,
    NORMAL_CLUSTER,
    OTHER_CLUSTER,
    SOURCE_NAMES,
    AttentionGRU,
    PLELog,
    composition_means,
    estimate_labels,
)
from logsieve.detectors.registry import create_detector, load_detector
from logsieve.errors import LogsieveError

TINY = PLELog._test_params()
WORDS = ("open", "read", "check", "write", "flush", "close", "report", "finish")
RICH = {f"E{i}": f"{w} file <*> done" for i, w in enumerate(WORDS, start=1)} | {"E99": "unexpected failure <*>"}


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two dense normal blobs, one dense anomalous blob and a few scattered outliers."""
    rng = np.random.default_rng(seed)
    a = rng.normal([0, 0, 0], 0.1, size=(60, 3))
    b = rng.normal([5, 0, 0], 0.1, size=(60, 3))
    c = rng.normal([0, 5, 0], 0.1, size=(30, 3))  # anomalous cluster: no known normal in it
    d = rng.uniform(-20, 20, size=(4, 3)) + np.array([0, 0, 30])  # far-away outliers
    x = np.vstack([a, b, c, d])
    truth = np.r_[np.zeros(120), np.ones(34)].astype(int)
    return x, truth


def test_estimate_labels_on_its_own():
    x, truth = blobs()
    known = np.zeros(len(x), dtype=bool)
    known[[0, 1, 2, 60, 61, 62]] = True  # a few known normals in each normal blob
    est = estimate_labels(x, known, min_cluster_size=10, min_samples=5, reduce_dim=None)
    assert est.p_anomalous.shape == (len(x),)
    assert ((est.p_anomalous >= 0) & (est.p_anomalous <= 1)).all()
    assert (est.p_anomalous[known] == 0).all() and (est.source[known] == KNOWN_NORMAL).all()
    # unlabelled windows of the normal blobs are probably normal, the rest probably anomalous
    np.testing.assert_array_equal(est.predicted[~known], truth[~known])
    assert (est.source[3:60] == NORMAL_CLUSTER).all() or (est.source[3:60] != OTHER_CLUSTER).all()
    assert set(est.source[120:150].tolist()) <= {OTHER_CLUSTER, NOISE_AS_ANOMALY}
    assert (est.source[150:] == NOISE_AS_ANOMALY).all() and (est.p_anomalous[150:] == 1).all()
    # soft labels: the confidence follows the cluster membership strength
    in_normal = est.source == NORMAL_CLUSTER
    np.testing.assert_allclose(est.p_anomalous[in_normal], (1 - est.membership[in_normal]) / 2)
    other = est.source == OTHER_CLUSTER
    np.testing.assert_allclose(est.p_anomalous[other], (1 + est.membership[other]) / 2)
    summary = est.summary()
    assert summary["windows"] == len(x) and summary["known_normal"] == 6
    assert sum(summary[name] for name in SOURCE_NAMES) == len(x)
    assert summary["estimated_anomalous"] == 34


def test_estimate_labels_noise_identical_to_a_known_normal_is_normal():
    x, _ = blobs()
    x = np.vstack([x, x[[150]]])  # an outlier that a known-normal window equals
    known = np.zeros(len(x), dtype=bool)
    known[[0, 60, len(x) - 1]] = True
    est = estimate_labels(x, known, min_cluster_size=10, min_samples=5, reduce_dim=None)
    assert est.source[150] == NOISE_AS_NORMAL and est.p_anomalous[150] == 0.0


def test_estimate_labels_caps_cluster_sizes_and_reduces_dimension():
    rng = np.random.default_rng(1)
    x = np.vstack([rng.normal(0, 0.1, size=(40, 80)), rng.normal(3, 0.1, size=(40, 80))])
    known = np.zeros(80, dtype=bool)
    known[:5] = True
    est = estimate_labels(x, known, min_cluster_size=100, min_samples=100, reduce_dim=10)
    assert est.min_cluster_size == est.min_samples == 4  # 5 % of 80 windows
    np.testing.assert_array_equal(est.predicted[5:], np.r_[np.zeros(35), np.ones(40)])
    again = estimate_labels(x, known, min_cluster_size=100, min_samples=100, reduce_dim=10)
    np.testing.assert_array_equal(est.p_anomalous, again.p_anomalous)  # deterministic


def test_composition_means_are_exact_and_position_independent():
    rng = np.random.default_rng(3)
    table = np.vstack([np.zeros((2, 5)), rng.normal(size=(4, 5))]).astype(np.float32)
    windows = [[2, 3], [3, 2, 2, 3], [2, 2, 4], [], [5, 5, 5], [4, 2, 2], [5]]
    codes = np.array([c for w in windows for c in w], dtype=np.int64)
    lengths = np.array([len(w) for w in windows])
    means, inverse = composition_means(codes, lengths, table)
    assert means.dtype == np.float64 and inverse.shape == (len(windows),)
    rows = means[inverse]
    # proportional counts ([A, B] and [B, A, A, B]), reordered ([A, A, C] and [C, A, A]) and
    # repeated ([E, E, E] and [E]) windows share one composition, hence bit-identical features
    assert inverse[0] == inverse[1] and inverse[2] == inverse[5] and inverse[4] == inverse[6]
    assert len(means) == 4
    expected = [table[w].astype(np.float64).mean(0) if w else np.zeros(5) for w in windows]
    np.testing.assert_allclose(rows, np.vstack(expected), rtol=1e-12, atol=1e-15)
    # a window's row does not depend on the other windows or on its position
    for i, w in enumerate(windows):
        alone, _ = composition_means(np.array(w, dtype=np.int64), np.array([len(w)]), table)
        np.testing.assert_array_equal(alone[0], rows[i])
    empty, inv = composition_means(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), table)
    assert empty.shape == (0, 5) and inv.shape == (0,)


def test_estimate_labels_projects_identical_rows_identically():
    # duplicates at many positions of a PCA product: identical rows must stay identical
    # (last-bit differences split a block of duplicates into a cloud HDBSCAN cuts at random)
    rng = np.random.default_rng(2)
    base = rng.normal(size=(6, 30)) * np.r_[1e3, np.ones(29)]
    pick = rng.integers(0, 6, 997)
    x = base[pick]
    known = np.zeros(len(x), dtype=bool)
    known[rng.choice(len(x), 300, replace=False)] = True
    est = estimate_labels(x, known, min_cluster_size=20, min_samples=10, reduce_dim=5)
    for g in range(6):
        rows = pick == g
        assert len(np.unique(est.cluster[rows])) == 1
        assert len(np.unique(est.membership[rows])) == 1
        assert len(np.unique(est.p_anomalous[rows & ~known])) <= 1


def test_estimate_labels_errors():
    x, _ = blobs()
    with pytest.raises(LogsieveError, match="known-normal"):
        estimate_labels(x, np.zeros(len(x), dtype=bool))
    with pytest.raises(LogsieveError, match="do not match"):
        estimate_labels(x, np.ones(3, dtype=bool))


@pytest.fixture(scope="module")
def train() -> pl.DataFrame:
    return make_windows(seed=0)


@pytest.fixture(scope="module")
def fitted(train) -> PLELog:
    return PLELog(**TINY).fit(train, templates=RICH)


def test_registered_semi_supervised_with_paper_defaults():
    det = create_detector("plelog")
    assert isinstance(det, PLELog) and not det.requires_labels and det.input_kind == "semantic"
    assert (det.min_cluster_size, det.min_samples, det.known_normal_fraction) == (100, 100, 0.5)
    assert (det.hidden_size, det.num_layers, det.batch_size) == (100, 2, 100)
    assert det.include_anomalies  # anomalies stay in training, as unlabelled windows


def test_semi_supervised_rule_uses_only_a_fraction_of_normal_labels(train):
    det = PLELog(**TINY, valid_fraction=0.0, known_normal_fraction=0.25).fit(train, templates=RICH)
    labels = train.get_column("label").to_numpy()
    est = det.label_estimate_
    assert det.n_train_windows_ == train.height  # windows labelled 1 are kept (unlabelled)
    known = est.source == KNOWN_NORMAL
    assert known.sum() == round(0.25 * (labels == 0).sum())
    assert (labels[known] == 0).all()
    # hidden anomalies are recovered by the clustering (here: those whose event multiset
    # differs from every normal window's), not read from the labels
    assert est.predicted[labels == 1].mean() >= 0.4
    assert est.predicted[(labels == 0) & ~known].mean() < 0.1
    # without label-1 windows (include_anomalies=False) they are simply dropped
    dropped = PLELog(**TINY, valid_fraction=0.0, include_anomalies=False).fit(train, templates=RICH)
    assert dropped.n_train_windows_ == int((labels == 0).sum())


def test_window_features_identical_for_same_event_proportions(fitted, train):
    w = pl.DataFrame(
        {
            "window_id": ["a", "b", "c", "d"],
            "event_ids": [["E1", "E2"], ["E2", "E1", "E1", "E2"], ["E1", "E3"], ["E1", "ZZ"]],
        }
    )
    feats = fitted.window_features(w)
    np.testing.assert_array_equal(feats[0], feats[1])
    assert not np.array_equal(feats[0], feats[2])
    table = fitted._semantic_table().astype(np.float64)
    vocab = fitted._input_vocab()
    e1, e2 = table[vocab.index("E1")], table[vocab.index("E2")]
    np.testing.assert_allclose(feats[0], (e1 + e2) / 2, rtol=1e-12)
    np.testing.assert_allclose(feats[3], e1 / 2, rtol=1e-12)  # an unknown event counts as zero
    # each training window's features are those it gets alone: no dependence on neighbours
    every = fitted.window_features(train)
    for i in (0, 7, train.height - 1):
        np.testing.assert_array_equal(every[i], fitted.window_features(train[i : i + 1])[0])


def test_label_estimation_does_not_depend_on_blas_threads(train):
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def estimate(threads: int) -> np.ndarray:
        det = PLELog(**{**TINY, "reduce_dim": 4}, valid_fraction=0.0)
        det.templates_ = dict(RICH)
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            det._prepare_fit(train)
        return det.label_estimate_.p_anomalous

    np.testing.assert_array_equal(estimate(1), estimate(2))


def test_noise_rule_matches_windows_by_event_proportions(train):
    # a known normal and an unlabelled window with the same event proportions (here three
    # times as long, reordered) are identical for the label estimation. With float32
    # features (2a + b) / 3 and (6a + 3b) / 9 differed in their last bits, and the noise
    # window was labelled anomalous with certainty
    odd = pl.DataFrame(
        {
            "window_id": ["k", "u"],
            "event_ids": [["E99", "E2", "E99"], ["E99", "E99", "E2", "E99", "E2", "E99", "E99", "E2", "E99"]],
            "label": [0, None],
        },
        schema_overrides={"label": pl.Int8},
    )
    data = pl.concat([train.select(odd.columns), odd], how="vertical_relaxed")
    det = PLELog(**TINY, valid_fraction=0.0, known_normal_fraction=1.0)
    det.templates_ = dict(RICH)
    det._prepare_fit(data)
    est = det.label_estimate_
    k, u = data.height - 2, data.height - 1
    assert est.source[k] == KNOWN_NORMAL and est.cluster[k] == est.cluster[u] == -1
    assert est.source[u] == NOISE_AS_NORMAL and est.p_anomalous[u] == 0.0


def test_needs_known_normal_windows(train):
    anomalous = train.with_columns(pl.lit(1, dtype=pl.Int8).alias("label"))
    with pytest.raises(LogsieveError, match="labelled 0"):
        PLELog(**TINY).fit(anomalous)


def test_classifier_learns_the_estimated_labels(fitted, train):
    from logsieve.detectors.base import split_valid

    part, _ = split_valid(train, fitted.valid_fraction)  # the windows fit() trained on
    est = fitted.label_estimate_
    scores = fitted.decision_function(part)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert fitted.threshold_ == 0.5 and fitted.threshold_source_ == "model"
    assert scores[est.predicted == 1].mean() > scores[est.source == KNOWN_NORMAL].mean() + 0.3
    test = make_windows(seed=1, prefix="t")
    y = test.get_column("label").to_numpy()
    pred = fitted.predict(test)
    assert pred[y == 0].mean() < 0.05 and pred[y == 1].sum() > 0


def test_training_targets_are_the_mean_soft_labels_of_distinct_windows(train):
    det = PLELog(**TINY, valid_fraction=0.0)
    det.templates_ = dict(RICH)
    arrays = det._prepare_fit(train)
    from logsieve.features.sequence import distinct_windows

    distinct, inverse, counts = distinct_windows(train)
    assert len(arrays["target"]) == distinct.height
    np.testing.assert_array_equal(arrays["weight"], counts)
    expected = np.bincount(inverse, weights=det.label_estimate_.p_anomalous) / counts
    np.testing.assert_allclose(arrays["target"], expected, rtol=1e-6)
    assert arrays["codes"].shape[0] == distinct.height
    np.testing.assert_array_equal(arrays["length"], distinct.get_column("event_ids").list.len().to_numpy())


def test_attention_gru_masks_padding():
    torch.manual_seed(0)
    module = AttentionGRU(dim=4, hidden_size=6, num_layers=2, dropout=0.2).eval()
    x = torch.randn(3, 5, 4)
    lengths = torch.tensor([5, 2, 0])
    logits, weights = module(x, lengths)
    assert logits.shape == (3,) and weights.shape == (3, 5)
    torch.testing.assert_close(weights.sum(1), torch.ones(3))
    assert (weights[1, 2:] == 0).all() and (weights[2, 1:] == 0).all()
    # padding content does not change the result
    x2 = x.clone()
    x2[1, 2:] = 99.0
    logits2, _ = module(x2, lengths)
    torch.testing.assert_close(logits[1], logits2[1])


def test_long_windows_keep_their_last_events(train):
    det = PLELog(**{**TINY, "max_len": 4}).fit(train, templates=RICH)
    w = pl.DataFrame({"window_id": ["a"], "event_ids": [["E1", "E2", "E4", "E5", "E4", "E5", "E6", "E8"]]})
    arrays = det._sequence_arrays(w)
    assert arrays["codes"].shape == (1, 4) and arrays["length"][0] == 4
    assert det._input_vocab().decode(arrays["codes"][0].tolist()) == ["E4", "E5", "E6", "E8"]
    (expl,) = det.explain(w, top=10)
    assert sorted(p["position"] for p in expl["attention"]) == [4, 5, 6, 7]


def test_explain_gives_attended_events(fitted):
    test = make_windows(seed=1, prefix="t").head(6)
    out = fitted.explain(test, top=3)
    scores = fitted.decision_function(test)
    lines = test.get_column("line_ids").to_list()
    seqs = test.get_column("event_ids").to_list()
    for e, s, ln, seq in zip(out, scores, lines, seqs, strict=True):
        assert e["score"] == pytest.approx(s)
        att = e["attention"]
        assert len(att) == min(3, len(seq))
        weights = [a["weight"] for a in att]
        assert weights == sorted(weights, reverse=True)
        for a in att:
            assert a["event_id"] == seq[a["position"]] and a["line_id"] == ln[a["position"]]
            assert a["template"] == RICH[a["event_id"]]


def test_unseen_templates_get_vectors_in_the_classifier(train):
    det = PLELog(**TINY, include_anomalies=False).fit(train, templates=dict(RICH, E50="read file <*> again"))
    assert "E99" not in det.vocab_ and "E50" in det.extra_event_ids_
    table = det._semantic_table()
    assert np.linalg.norm(table[det._input_vocab().index("E50")]) > 0


def test_save_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    test = make_windows(seed=2, prefix="u")
    np.testing.assert_array_equal(again.decision_function(test), fitted.decision_function(test))
    assert again.label_summary_ == fitted.label_summary_


def test_bad_params(train):
    with pytest.raises(LogsieveError, match="known_normal_fraction"):
        PLELog(known_normal_fraction=0.0).fit(train)
    with pytest.raises(LogsieveError, match="min_cluster_size"):
        PLELog(min_cluster_size=0).fit(train)
    with pytest.raises(LogsieveError, match="embedder"):
        PLELog(embedder="bert").fit(train)
