"""Feedback on a next-event model clears what was marked and keeps what was not.

A small version of benchmarks/feedback_gains.py: DeepLog clears the windows an operator
marked (remembered exactly; its own fine-tuning guarded) without raising its threshold,
and still flags the other anomalies; what it learned survives save/load. With
``scope="pattern"`` it also remembers the marked windows' rare pairs.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from logsieve.detectors.feedback import learn_feedback
from logsieve.detectors.registry import create_detector, load_detector

NORMAL = ["a", "b", "c", "d", "e", "f"]
RARE = ["a", "b", "x", "y", "c", "d", "e", "f"]  # normal, seen once in training


def _windows(seqs: list[list[str]], label: int, prefix: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "window_id": [f"{prefix}{i}" for i in range(len(seqs))],
            "event_ids": seqs,
            "label": pl.Series([label] * len(seqs), dtype=pl.Int8),
        }
    )


def _normal(rng: np.random.Generator, n: int) -> list[list[str]]:
    out = []
    for _ in range(n):
        seq = list(NORMAL)
        if rng.random() < 0.5:  # a loop: c d repeats
            seq[2:4] = ["c", "d", "c", "d"]
        out.append(seq)
    return out


def _fitted():
    rng = np.random.default_rng(0)
    train = _windows([*_normal(rng, 300), RARE], 0, "tr")
    valid = _windows(_normal(rng, 60), 0, "va")
    det = create_detector("deeplog", **type(create_detector("deeplog"))._test_params(),
                          random_state=0)  # fmt: skip
    det.fit(train, valid=valid)
    return det, train, valid


ANOMALIES = _windows(
    [["a", "c", "b", "d", "e", "f"], ["a", "b", "c", "d", "z", "e", "f"], ["a", "b", "y", "x"]],
    1,
    "an",
)
MARKED = _windows([RARE, ["a", "b", "x", "y", "c", "d", "c", "d", "e", "f"]], 0, "m")


def test_deeplog_feedback_clears_marked_and_keeps_recall(tmp_path):
    det, train, valid = _fitted()
    assert det.predict(MARKED).all() and det.predict(ANOMALIES).all()
    threshold = det.threshold_
    report = learn_feedback(det, MARKED, "normal", train=train, valid=valid)
    assert report["scope"] == "window" and report["remembered"] == 2
    assert not det.predict(MARKED).any()
    assert det.predict(ANOMALIES).all()  # recall holds
    assert not det.predict(valid).any()
    assert det.threshold_ == threshold and "threshold_raised" not in report
    assert not det.taught_pairs_  # nothing generalised beyond the guarded fine-tuning
    det.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    assert not again.predict(MARKED).any() and again.predict(ANOMALIES).all()
    exp = again.explain(MARKED)
    assert [e["operator_label"] for e in exp] == ["normal", "normal"]


def test_deeplog_pattern_scope_teaches_pairs(tmp_path):
    det, train, valid = _fitted()
    report = learn_feedback(det, MARKED, "normal", train=train, valid=valid, scope="pattern")
    if report["flagged_by_model_after"]:  # the guarded fine-tuning left some flagged
        assert report["pairs_taught"] > 0
    assert not det._score_distinct(MARKED).max() > det.threshold_  # the model itself clears them
    assert det.predict(ANOMALIES).all()
    det.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    assert again.taught_pairs_ == det.taught_pairs_
