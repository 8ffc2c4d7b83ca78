"""Feedback on a next-event model clears what was marked and keeps what was not.

A small version of benchmarks/feedback_gains.py: DeepLog learns a rare but normal
pattern from the windows an operator marked, without raising its threshold, and still
flags the other anomalies; what it learned survives save/load.
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


def test_deeplog_feedback_clears_marked_and_keeps_recall(tmp_path):
    rng = np.random.default_rng(0)
    train = _windows([*_normal(rng, 300), RARE], 0, "tr")
    valid = _windows(_normal(rng, 60), 0, "va")
    det = create_detector("deeplog", **type(create_detector("deeplog"))._test_params(),
                          random_state=0)  # fmt: skip
    det.fit(train, valid=valid)
    marked = _windows([RARE, ["a", "b", "x", "y", "c", "d", "c", "d", "e", "f"]], 0, "m")
    anomalies = _windows(
        [["a", "c", "b", "d", "e", "f"], ["a", "b", "c", "d", "z", "e", "f"], ["a", "b", "y", "x"]],
        1,
        "an",
    )
    assert det.predict(marked).all() and det.predict(anomalies).all()
    threshold = det.threshold_
    report = learn_feedback(det, marked, "normal", train=train, valid=valid)
    assert not det.predict(marked).any()
    assert det.predict(anomalies).all()  # recall holds
    assert not det.predict(valid).any()
    assert det.threshold_ == threshold and "threshold_raised" not in report
    det.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    assert not again.predict(marked).any() and again.predict(anomalies).all()
    assert again.taught_pairs_ == det.taught_pairs_
