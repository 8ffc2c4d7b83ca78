"""Explaining right after scoring reuses the scoring work and changes nothing."""

from __future__ import annotations

import pytest
from detector_fixtures import make_windows

from logsieve.detectors.registry import create_detector


@pytest.mark.parametrize("name", ["deeplog", "loganomaly", "transformer_nextlog"])
def test_reusing_scores_gives_the_same_scores_and_explanations(name: str) -> None:
    data = make_windows(n_normal=120, n_anomalous=20, seed=5)
    cls = create_detector(name).__class__
    det = create_detector(name, **cls._test_params()).fit(data.head(100))
    test = data.tail(40)
    plain_scores = det.decision_function(test)
    plain = det.explain(test)
    with det.reusing_scores():
        reused_scores = det.decision_function(test)
        reused = det.explain(test)
        again = det.explain(test.head(5))
    assert (plain_scores == reused_scores).all()
    assert reused == plain
    assert again == plain[:5]
    assert getattr(det, "_rank_memo", None) is None  # nothing outlives the block
