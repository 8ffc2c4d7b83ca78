"""The window level of feedback: remembered window contents and the learning guard."""

from __future__ import annotations

import copy
import json

import numpy as np
import polars as pl
import pytest
import torch
from detector_fixtures import TEMPLATES, make_windows

from logsieve.detectors.feedback import learn_feedback
from logsieve.detectors.known_windows import KnownWindows
from logsieve.detectors.registry import create_detector, get_detector_class, load_detector
from logsieve.errors import LogsieveError


def _windows(seqs, label=None, prefix="w"):
    return pl.DataFrame(
        {
            "window_id": [f"{prefix}{i}" for i in range(len(seqs))],
            "event_ids": seqs,
            "label": pl.Series([label] * len(seqs), dtype=pl.Int8),
        }
    )


def test_known_windows_match_exact_content_only():
    known = KnownWindows(["event_ids"])
    assert known.add(_windows([["a", "b"], ["a", "b"], ["c"]]), 0) == 2  # one per content
    scored = _windows([["a", "b"], ["b", "a"], ["c"], ["a", "b", "c"]])
    assert known.labels(scored).tolist() == [0, -1, 0, -1]  # order matters, no prefixes
    out = known.apply(np.array([9.0, 9.0, 1.0, 9.0]), scored, threshold=5.0)
    assert out[0] < 5.0 and out[0] == np.nextafter(5.0, -np.inf)
    assert out[1] == 9.0 and out[2] == 1.0 and out[3] == 9.0  # a lower score stays lower
    assert known.add(_windows([["c"]]), 1) == 1  # the later label replaces the earlier
    assert known.counts() == {"normal": 1, "anomaly": 1}
    assert known.apply(np.array([1.0]), _windows([["c"]]), 5.0)[0] > 5.0
    assert known.labels(pl.DataFrame({"window_id": ["x"]}).with_columns(
        pl.lit(None, dtype=pl.List(pl.String)).alias("event_ids")))[0] == -1  # fmt: skip


def test_known_windows_state_is_json_and_round_trips():
    known = KnownWindows(["event_ids"])
    known.add(_windows([["a", "b"]]), 0)
    state = json.loads(json.dumps(known.to_state()))
    again = KnownWindows.from_state(state)
    assert again.labels(_windows([["a", "b"], ["a"]])).tolist() == [0, -1]
    with pytest.raises(LogsieveError, match="format"):
        KnownWindows.from_state({**state, "format": 99})


def test_a_missing_key_column_matches_nothing():
    known = KnownWindows(["event_ids", "values"])
    marked = _windows([["a"]]).with_columns(pl.Series("values", [[["1"]]]))
    known.add(marked, 0)
    assert known.labels(marked).tolist() == [0]
    assert known.labels(_windows([["a"]])).tolist() == [-1]  # no values column: unknown
    other = marked.with_columns(pl.Series("values", [[["2"]]]))
    assert known.labels(other).tolist() == [-1]  # same keys, other values


@pytest.fixture(scope="module")
def fitted_ae():
    cls = get_detector_class("ae")
    det = create_detector("ae", **cls._test_params())
    return det.fit(make_windows(seed=0), templates=TEMPLATES)


def _worst_normal(det, windows, n=2):
    """The ``n`` highest-scoring normal windows, flagged (the threshold moves under them)."""
    scores = det.decision_function(windows)
    normal = np.flatnonzero(windows["label"].to_numpy() == 0)
    worst = normal[np.argsort(-scores[normal])[:n]]
    low = float(scores[worst].min())
    det.threshold_ = low - 1e-4 * abs(low) - 1e-9  # below float32 batch noise
    return windows[worst]


def test_memory_is_saved_with_the_model_and_explanations_agree(fitted_ae, tmp_path):
    det = copy.deepcopy(fitted_ae)
    test = make_windows(seed=1, prefix="t")
    marked = _worst_normal(det, test)
    assert det.predict(marked).all()
    report = learn_feedback(det, marked, "normal", train=make_windows(seed=0), scope="window")
    assert report["flagged_after"] == 0 and report["known_windows"]["normal"] >= 1
    assert "threshold_raised" not in report
    det.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc["state"]["known_windows_"]["entries"]
    again = load_detector(tmp_path / "m")
    assert not again.predict(marked).any()
    np.testing.assert_array_equal(again.decision_function(test), det.decision_function(test))
    exp = again.explain(marked)
    assert all(not e["is_anomaly"] and e["operator_label"] == "normal" for e in exp)
    assert all(e["score"] <= e["threshold"] for e in exp)
    again.fit(make_windows(seed=0))  # a new fit forgets what the operator said
    assert again.known_windows_ is None


def test_feedback_is_deterministic(fitted_ae, tmp_path):
    test = make_windows(seed=1, prefix="t")
    files = []
    for run in range(2):
        det = copy.deepcopy(fitted_ae)
        learn_feedback(det, _worst_normal(det, test), "normal", train=make_windows(seed=0))
        det.save(tmp_path / f"m{run}")
        files.append({f.name: f.read_bytes() for f in sorted((tmp_path / f"m{run}").iterdir())})
    assert files[0] == files[1]


def test_guard_undoes_learning_that_flags_more_validation_windows(fitted_ae, monkeypatch):
    det = copy.deepcopy(fitted_ae)
    test = make_windows(seed=1, prefix="t")
    valid = make_windows(seed=2, prefix="v")
    marked = _worst_normal(det, test)
    before = {k: v.clone() for k, v in det.module_.state_dict().items()}
    valid_before = det._score_distinct(valid)  # the model alone (no remembered windows)

    def ruin(windows, **kwargs):  # an update that wrecks the network
        with torch.no_grad():
            for p in det.module_.parameters():
                p.add_(torch.randn_like(p) * 5)
        return det

    monkeypatch.setattr(det, "update", ruin)
    report = learn_feedback(det, marked, "normal", train=make_windows(seed=0), valid=valid)
    assert "undone" in report["action"] and not report["model_changed"]
    for k, v in det.module_.state_dict().items():
        assert torch.equal(v, before[k])
    np.testing.assert_array_equal(det._score_distinct(valid), valid_before)
    assert report["flagged_after"] == 0  # the marked windows are cleared all the same


def test_pattern_scope_raises_the_threshold_for_models_without_pairs(fitted_ae):
    det = copy.deepcopy(fitted_ae)
    test = make_windows(seed=1, prefix="t")
    marked = _worst_normal(det, test)
    report = learn_feedback(det, marked, "normal", train=make_windows(seed=0), scope="pattern")
    if report["flagged_by_model_after"]:
        assert report["threshold_raised"][1] > report["threshold_raised"][0]
    with pytest.raises(LogsieveError, match="scope"):
        learn_feedback(det, marked, "normal", scope="everything")


def test_supervised_model_remembers_an_anomaly_label():
    cls = get_detector_class("logrobust")
    train = make_windows(seed=0)
    det = create_detector("logrobust", **cls._test_params()).fit(train, templates=TEMPLATES)
    test = make_windows(seed=1, prefix="t")
    scores = det.decision_function(test)
    normal = np.flatnonzero(test["label"].to_numpy() == 0)
    calm = test[normal[np.argsort(scores[normal])[:2]]]  # the least anomalous normals
    assert not det.predict(calm).any()
    report = learn_feedback(det, calm, "anomaly", train=train)
    assert det.predict(calm).all() and report["still_wrong"] == 0
    assert report["known_windows"]["normal"] == 0 and report["known_windows"]["anomaly"] >= 1
