"""Accuracy metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from logsieve.errors import InputError
from logsieve.parsing.accuracy import (
    evaluate,
    f1_grouping,
    grouping_accuracy,
    load_truth,
    normalize_template,
    parsing_accuracy,
)

# 6 lines, 3 true groups. Prediction keeps A and C whole but splits B in two.
TRUTH = ["A", "A", "B", "B", "C", "C"]
SPLIT = [1, 1, 2, 3, 4, 4]


def test_ga_split_group() -> None:
    # lines of A and C are right (4), both lines of B are wrong
    assert grouping_accuracy(TRUTH, SPLIT) == pytest.approx(4 / 6)


def test_ga_merged_groups() -> None:
    # B and C merged into one predicted group: only A's two lines are right
    assert grouping_accuracy(TRUTH, [1, 1, 2, 2, 2, 2]) == pytest.approx(2 / 6)
    assert grouping_accuracy(TRUTH, [0] * 6) == 0.0


def test_ga_label_names_do_not_matter() -> None:
    assert grouping_accuracy(TRUTH, ["x", "x", "y", "y", "z", "z"]) == 1.0
    assert grouping_accuracy(TRUTH, ["C", "C", "A", "A", "B", "B"]) == 1.0
    # ints and strings of the same value are the same label
    assert grouping_accuracy([1, 1, 2], ["1", "1", "2"]) == 1.0


def test_f1_grouping() -> None:
    r = f1_grouping(TRUTH, SPLIT)
    # correct groups: {1,2}=A and {5,6}=C -> 2 of 4 predicted, 2 of 3 true
    assert r["n_correct"] == 2
    assert r["n_pred_groups"] == 4 and r["n_truth_groups"] == 3
    assert r["precision"] == pytest.approx(0.5)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    perfect = f1_grouping(TRUTH, TRUTH)
    assert perfect["f1"] == perfect["precision"] == perfect["recall"] == 1.0
    assert f1_grouping(TRUTH, [0] * 6)["f1"] == 0.0


def test_empty_and_mismatched() -> None:
    assert math.isnan(grouping_accuracy([], []))
    assert math.isnan(f1_grouping([], [])["f1"])
    assert math.isnan(parsing_accuracy([], []))
    with pytest.raises(ValueError):
        grouping_accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        parsing_accuracy(["a"], [])


def test_normalize_template() -> None:
    assert normalize_template("Receiving block blk_<*> src: /<*>:<*>") == (
        "Receiving block <*> src: <*>"
    )
    assert normalize_template("  a  <*> <*>   <*> b <*>") == "a <*> b <*>"
    assert normalize_template("plain text") == "plain text"


def test_parsing_accuracy() -> None:
    truth = ["open <*> file", "open <*> file", "blk_<*> done", "a <*> <*> b", "x y", "x y"]
    pred = ["open <*> file", "open <*> <*>", "<*> done", "a <*> b", "x <*>", "x y"]
    # equal after normalisation: lines 1, 3, 4, 6
    assert parsing_accuracy(truth, pred) == pytest.approx(4 / 6)
    assert parsing_accuracy(pl.Series(truth), pl.Series(truth)) == 1.0


def test_ga_is_vectorized_on_many_lines() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 50, size=200_000)
    pred = truth.copy()
    pred[truth == 7] = 99  # renamed: still right
    pred[(truth == 3) & (np.arange(truth.size) % 2 == 0)] = 100  # split: wrong
    expected = 1.0 - float(np.mean(truth == 3))
    assert grouping_accuracy(pl.Series(truth), pl.Series(pred)) == pytest.approx(expected)


def _truth_csv(path) -> None:
    path.write_text(
        "LineId,Date,Content,EventId,EventTemplate\n"
        '1,d,"open a, now",E1,"open <*>, now"\n'
        "2,d,open b,E2,open <*>\n"
        "3,d,close x,E3,close <*>\n"
        "4,d,close y,E3,close <*>\n"
        "5,d,junk,,\n"
    )


def test_load_truth_and_evaluate(tmp_path) -> None:
    p = tmp_path / "S_2k.log_structured.csv"
    _truth_csv(p)
    truth = load_truth(p)
    assert truth.columns == ["line_id", "content", "event_id", "template"]
    assert truth["line_id"].dtype == pl.Int64
    assert truth["content"][0] == "open a, now"
    pred = pl.DataFrame(
        {
            "line_id": [5, 4, 3, 2, 1],  # any order; joined on line_id
            "event_id": ["E9", "E2", "E2", "E1", "E1"],
            "template": ["junk", "close <*>", "close <*>", "open <*>", "open <*>"],
        }
    )
    m = evaluate(truth, pred)
    # line 5 has no true event and is left out; lines 1-2 merged (wrong), 3-4 right
    assert m["n_lines"] == 4
    assert m["GA"] == pytest.approx(0.5)
    assert m["PA"] == pytest.approx(3 / 4)
    assert m["n_truth_groups"] == 3 and m["n_pred_groups"] == 2
    assert m["PGA"] == pytest.approx(0.5) and m["RGA"] == pytest.approx(1 / 3)
    assert m["F1_GA"] == pytest.approx(0.4)
    no_tpl = evaluate(truth, pred.drop("template"))
    assert math.isnan(no_tpl["PA"]) and no_tpl["GA"] == m["GA"]
    with pytest.raises(ValueError, match="no prediction"):
        evaluate(truth, pred.filter(pl.col("line_id") != 3))


def test_load_truth_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_truth(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("LineId,Content\n1,x\n")
    with pytest.raises(InputError, match="EventId"):
        load_truth(bad)
    notint = tmp_path / "notint.csv"
    notint.write_text("LineId,Content,EventId,EventTemplate\nx,a,E1,a\n")
    with pytest.raises(InputError, match="LineId"):
        load_truth(notint)


def test_load_real_truth(shared_data) -> None:
    for name, suffix in (("loghub_2k", "_structured.csv"), ("loghub_2k_corrected",
                                                         "_structured_corrected.csv")):
        t = load_truth(shared_data / name / "HDFS" / f"HDFS_2k.log{suffix}")
        assert t.height == 2000
        assert t["event_id"].n_unique() == 14
        assert t["line_id"].to_list() == list(range(1, 2001))
