"""LogClustering: event weights, cosine distances, complete-link clusters and their
representatives, matching, the online update and persistence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from detector_fixtures import TEMPLATES, make_windows

from logsieve.detectors.classical.logclustering import LogClustering, cosine_distances
from logsieve.detectors.registry import load_detector
from logsieve.errors import LogsieveError


def windows(seqs: list[list[str]], labels: list[int] | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "window_id": [f"w{i}" for i in range(len(seqs))],
            "event_ids": seqs,
            "label": labels if labels is not None else [0] * len(seqs),
        },
        schema={"window_id": pl.String, "event_ids": pl.List(pl.String), "label": pl.Int8},
    )


# two behaviours: a read path (A B C) and a write path (D E F, with a variable F count)
READ = [["A", "B", "C"]] * 30 + [["A", "B", "C", "C"]] * 5
WRITE = [["D", "E"] + ["F"] * k for k in (1, 1, 1, 2, 2, 3)] * 4
TRAIN = windows(READ + WRITE)


def test_cosine_distances_with_empty_rows():
    A = np.array([[1.0, 0.0], [0.0, 0.0], [2.0, 2.0]])
    D = cosine_distances(A, A)
    assert D[0, 0] == pytest.approx(0.0) and D[1, 1] == 0.0
    assert D[0, 1] == 1.0 and D[1, 2] == 1.0
    assert D[0, 2] == pytest.approx(1 - 1 / np.sqrt(2))


def test_event_weights_follow_the_paper():
    det = LogClustering(valid_fraction=0.0).fit(TRAIN)
    n = TRAIN.height
    idf = det.counter_.idf_
    sigmoid = 1.0 / (1.0 + np.exp(-idf.astype(np.float64)))
    np.testing.assert_allclose(det.weights_[1:], 0.5 * sigmoid[1:])
    assert det.weights_[0] == pytest.approx(0.5 * sigmoid[0] + 0.5)  # contrast: unseen events
    assert idf[0] == pytest.approx(np.log(n), rel=1e-6)
    plain = LogClustering(valid_fraction=0.0, contrast=False).fit(TRAIN)
    np.testing.assert_allclose(plain.weights_, sigmoid)


def test_clusters_respect_complete_linkage_and_representatives_are_medoids():
    det = LogClustering(valid_fraction=0.0, max_distance=0.1).fit(TRAIN)
    # members of one cluster are all within max_distance of each other (complete linkage)
    for c in range(len(det.rep_index_)):
        idx = np.flatnonzero(det.member_cluster_ == c)
        D = cosine_distances(det.members_[idx], det.members_[idx])
        assert D.max() <= 0.1 + 1e-12
        # the representative minimises the weighted summed distance to the members
        sums = D @ det.member_weight_[idx]
        assert det.member_score_[idx] == pytest.approx(sums)
        assert det.rep_index_[c] == idx[np.argmin(sums)]
    assert det.cluster_sizes_.sum() == TRAIN.height
    # the frequent read window represents its cluster
    raw = det.representatives_ / det.weights_[None, :]
    names = ["<oov>", *det.counter_.vocab_.tokens]
    reps = [{names[j]: round(v) for j, v in enumerate(r) if v > 0} for r in raw]
    assert {"A": 1, "B": 1, "C": 1} in reps


def test_matching_and_natural_threshold():
    det = LogClustering(valid_fraction=0.0, max_distance=0.1).fit(TRAIN, templates=TEMPLATES)
    assert det.threshold_ == 0.1 and det.threshold_source_ == "model"
    w = windows([["A", "B", "C"], ["D", "E", "F", "F"], ["A", "B", "X"], ["A", "D"]])
    s = det.decision_function(w)
    assert s[0] == pytest.approx(0.0, abs=1e-12) and s[1] == pytest.approx(0.0, abs=1e-12)
    assert s[2] > 0.1 and s[3] > 0.1
    custom = LogClustering(valid_fraction=0.0, max_distance=0.1, anomaly_threshold=0.9).fit(TRAIN)
    assert custom.threshold_ == 0.9


def test_explanation_names_cluster_and_differences():
    det = LogClustering(valid_fraction=0.0, max_distance=0.1).fit(TRAIN)
    (exp,) = det.explain(windows([["A", "B", "C", "X"]]))
    assert exp["is_anomaly"] and exp["unseen_events"] == ["X"]
    assert exp["distance"] == pytest.approx(exp["score"])
    assert {"event_id": "<oov>", "count": 1, "representative_count": 0} in exp["differences"]
    assert exp["events"][0]["event_id"] == "<oov>"


def test_online_assignment_reproduces_separated_clusters():
    offline = LogClustering(valid_fraction=0.0, max_distance=0.1).fit(TRAIN)
    online = LogClustering(valid_fraction=0.0, max_distance=0.1, max_offline=2).fit(TRAIN)
    assert online.cluster_sizes_.sum() == TRAIN.height
    probe = windows([["A", "B", "C"], ["D", "E", "F"], ["A", "B", "C", "C", "C"], ["Q"]])
    np.testing.assert_allclose(
        online.decision_function(probe) <= 0.1, offline.decision_function(probe) <= 0.1
    )


def test_update_adds_confirmed_normal_windows(tmp_path):
    det = LogClustering(valid_fraction=0.0, max_distance=0.1).fit(TRAIN)
    new = windows([["G", "H"], ["G", "H"], ["A", "B", "C"]])
    assert det.predict(new).tolist() == [1, 1, 0]
    n_clusters = len(det.rep_index_)
    assert det.update(new) is det
    assert det.predict(new).tolist() == [0, 0, 0]
    assert len(det.rep_index_) == n_clusters + 1
    assert det.cluster_sizes_.sum() == TRAIN.height + 3
    det.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    np.testing.assert_array_equal(again.decision_function(new), det.decision_function(new))
    np.testing.assert_array_equal(again.rep_index_, det.rep_index_)


def test_fixture_detection():
    det = LogClustering(valid_fraction=0.0, max_distance=0.05).fit(make_windows(seed=0))
    test = make_windows(seed=1, prefix="t")
    y = test.get_column("label").to_numpy()
    pred = det.predict(test)
    assert pred[y == 0].sum() == 0 and pred[y == 1].sum() >= 10


def test_bad_parameters():
    with pytest.raises(LogsieveError, match="linkage"):
        LogClustering(linkage="ward").fit(TRAIN)
    with pytest.raises(LogsieveError, match="max_distance"):
        LogClustering(max_distance=3.0).fit(TRAIN)
    with pytest.raises(LogsieveError, match="max_offline"):
        LogClustering(max_offline=1).fit(TRAIN)
