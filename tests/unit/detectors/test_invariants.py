"""Invariant Mining: the mined relations, support and scaling rules, the dimension
estimate, detection, readable explanations and persistence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from detector_fixtures import TEMPLATES, make_windows

from logsieve.detectors.classical.invariants import InvariantsMining, format_invariant
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


@pytest.fixture(scope="module")
def fixture_model() -> InvariantsMining:
    return InvariantsMining(valid_fraction=0.0).fit(make_windows(seed=0), templates=TEMPLATES)


def test_format_invariant():
    names = ["A", "B", "C", "1"]
    assert format_invariant(np.array([1, -1, 0, 0]), names) == "count(A) = count(B)"
    assert format_invariant(np.array([1, 0, 0, 0]), names) == "count(A) = 0"
    assert format_invariant(np.array([1, 1, -1, 0]), names) == "count(A) + count(B) = count(C)"
    assert format_invariant(np.array([2, -3, 0, 0]), names) == "2*count(A) = 3*count(B)"
    assert format_invariant(np.array([1, 0, 0, -1]), names) == "count(A) = 1"
    assert format_invariant(np.array([-1, 0, 0, 1]), names) == "count(A) = 1"
    assert (
        format_invariant(np.array([0, 1, -1, 0]), ["E10", "E2", "E1", "1"])
        == "count(E2) = count(E1)"
    )
    assert (
        format_invariant(np.array([1, 1, -1]), ["E10", "E2", "E1"])
        == "count(E2) + count(E10) = count(E1)"
    )


def test_mines_the_workflow_invariants(fixture_model):
    # E1 -> (E2 | E3) -> (E4 E5){1..3} -> E6 -> [E7] -> E8
    assert set(fixture_model.relations_) == {
        "count(<oov>) = 0",
        "count(E4) = count(E5)",
        "count(E1) = count(E6)",
        "count(E1) = count(E8)",
        "count(E1) = count(E2) + count(E3)",
    }
    assert fixture_model.dimension_ == len(fixture_model.invariants_) == 5
    np.testing.assert_array_equal(fixture_model.supports_, 1.0)


def test_detects_broken_relations_and_explains_them(fixture_model):
    test = make_windows(seed=1, prefix="t")
    y = test.get_column("label").to_numpy()
    pred = fixture_model.predict(test)
    assert pred[y == 0].sum() == 0  # no false alarm on normal windows
    assert pred[y == 1].mean() >= 0.7  # all but the count-identical "order" anomalies
    w = windows(
        [["E1", "E2", "E4", "E5", "E5", "E6", "E8"], ["E1", "E2", "E4", "E5", "E6", "E8", "X9"]]
    )
    first, second = fixture_model.explain(w)
    assert first["score"] == 1.0 and first["is_anomaly"]
    (broken,) = first["violated"]
    assert broken["invariant"] == "count(E4) = count(E5)"
    assert broken["counts"] == {"E4": 1, "E5": 2}
    assert [b["invariant"] for b in second["violated"]] == ["count(<oov>) = 0"]
    assert second["unseen_events"] == ["X9"]


def test_support_threshold():
    # count(A) = count(B) holds on 97 % of the windows
    seqs = [["A", "B"]] * 97 + [["A", "A", "B"]] * 3
    strict = InvariantsMining(valid_fraction=0.0, support=0.98).fit(windows(seqs))
    loose = InvariantsMining(valid_fraction=0.0, support=0.95).fit(windows(seqs))
    assert "count(A) = count(B)" not in strict.relations_
    assert "count(A) = count(B)" in loose.relations_
    assert loose.supports_[loose.relations_.index("count(A) = count(B)")] == pytest.approx(0.97)


def test_integer_scaling_needs_enough_scales():
    # three A for every two B: 2*count(A) = 3*count(B) needs scale 2 of (1, -1.5)
    seqs = [["A"] * (3 * k) + ["B"] * (2 * k) for k in (1, 2, 3, 1, 2, 4)]
    assert (
        "2*count(A) = 3*count(B)"
        in InvariantsMining(valid_fraction=0.0).fit(windows(seqs)).relations_
    )
    assert InvariantsMining(valid_fraction=0.0, max_scale=1).fit(windows(seqs)).relations_ == [
        "count(<oov>) = 0"
    ]


def test_max_size_limits_the_search():
    seqs = [
        ["A"] * a + ["B"] * b + ["C"] * (a + b) for a, b in [(1, 2), (2, 1), (3, 3), (1, 4), (2, 2)]
    ]
    three = InvariantsMining(valid_fraction=0.0).fit(windows(seqs))
    two = InvariantsMining(valid_fraction=0.0, max_size=2).fit(windows(seqs))
    assert "count(C) = count(A) + count(B)" in three.relations_
    assert two.relations_ == ["count(<oov>) = 0"]


def test_constant_term():
    seqs = [["S", "X"] + ["Y"] * k for k in (1, 2, 3, 1, 2)]
    plain = InvariantsMining(valid_fraction=0.0).fit(windows(seqs))
    const = InvariantsMining(valid_fraction=0.0, include_constant=True).fit(windows(seqs))
    assert "count(S) = count(X)" in plain.relations_ and "count(S) = 1" not in plain.relations_
    assert "count(S) = 1" in const.relations_
    w = windows([["S", "S", "X", "X", "Y"]])
    assert plain.decision_function(w)[0] == 0.0
    assert const.decision_function(w)[0] >= 1.0
    assert const.explain(w)[0]["violated"][0]["invariant"] == "count(S) = 1"


def test_no_invariant_space_scores_zero():
    rng = np.random.default_rng(0)
    seqs = [["A"] * int(rng.integers(1, 9)) + ["B"] * int(rng.integers(1, 9)) for _ in range(60)]
    det = InvariantsMining(valid_fraction=0.0, include_constant=False).fit(windows(seqs))
    # only the unseen-event relation exists: the counts of A and B are unrelated
    assert det.relations_ == ["count(<oov>) = 0"]
    assert det.decision_function(windows([["A", "B", "B"]]))[0] == 0.0


def test_independent_invariants_only():
    # A = B and B = C imply A = C: the third relation is not kept
    seqs = [["A", "B", "C"] * k for k in (1, 2, 3, 4)]
    det = InvariantsMining(valid_fraction=0.0).fit(windows(seqs))
    rel = [r for r in det.relations_ if r != "count(<oov>) = 0"]
    assert len(rel) == 2 and np.linalg.matrix_rank(det.invariants_) == len(det.invariants_)


def test_save_load_keeps_relations(fixture_model, tmp_path):
    fixture_model.save(tmp_path / "inv")
    again = load_detector(tmp_path / "inv")
    assert again.relations_ == fixture_model.relations_
    test = make_windows(seed=2, prefix="x")
    np.testing.assert_array_equal(
        again.decision_function(test), fixture_model.decision_function(test)
    )


def test_bad_parameters():
    w = windows([["A", "B"]] * 5)
    with pytest.raises(LogsieveError, match="support"):
        InvariantsMining(support=1.5).fit(w)
    with pytest.raises(LogsieveError, match="max_size"):
        InvariantsMining(max_size=0).fit(w)
    with pytest.raises(LogsieveError, match="epsilon"):
        InvariantsMining(epsilon=0.0).fit(w)
