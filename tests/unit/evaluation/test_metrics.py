"""Detection metrics on hand-computed cases, including the degenerate ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from logsieve.errors import LogsieveError
from logsieve.evaluation.metrics import (
    average_precision,
    best_f1_threshold,
    confusion_counts,
    evaluate,
    f1,
    mcc,
    precision,
    recall,
    roc_auc,
    specificity,
)

# 10 windows: 4 anomalous. Predictions: TP=3, FN=1, FP=2, TN=4.
Y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
P = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]


def test_confusion_and_threshold_metrics_by_hand():
    assert confusion_counts(Y, P) == {"tp": 3, "fp": 2, "tn": 4, "fn": 1}
    assert precision(Y, P) == pytest.approx(3 / 5)
    assert recall(Y, P) == pytest.approx(3 / 4)
    assert specificity(Y, P) == pytest.approx(4 / 6)
    assert f1(Y, P) == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))  # = 2/3
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (12 - 2) / sqrt(5*4*6*5)
    assert mcc(Y, P) == pytest.approx(10 / math.sqrt(600))


def test_roc_auc_by_hand():
    # positives 0.9, 0.4 ; negatives 0.5, 0.1 -> pairs won: (0.9>0.5, 0.9>0.1, 0.4>0.1) = 3 of 4
    assert roc_auc([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1]) == pytest.approx(0.75)
    # a tie counts one half: 0.9 beats 0.5 and 0.6 (2), 0.5 ties 0.5 (0.5), loses to 0.6
    # -> 2.5 / 4
    assert roc_auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.6]) == pytest.approx(0.625)
    assert roc_auc([0, 1], [0.0, 1.0]) == 1.0 and roc_auc([1, 0], [0.0, 1.0]) == 0.0


def test_average_precision_by_hand():
    # sorted by score: 1 (P=1/1, R=1/2), 0, 1 (P=2/3, R=2/2) -> AP = 0.5*1 + 0.5*2/3
    assert average_precision([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(0.5 + 1 / 3)
    # ties form one threshold: all three at once -> P = 2/3 at R = 1
    assert average_precision([1, 0, 1], [0.5, 0.5, 0.5]) == pytest.approx(2 / 3)


def test_degenerate_cases_are_defined():
    # no anomalies at all: recall undefined, F1 0 when there are false alarms
    assert math.isnan(recall([0, 0], [1, 0]))
    assert f1([0, 0], [1, 0]) == 0.0
    # nothing predicted: precision undefined, recall 0, F1 0
    assert math.isnan(precision([1, 0], [0, 0]))
    assert recall([1, 0], [0, 0]) == 0.0 and f1([1, 0], [0, 0]) == 0.0
    # neither positives nor alarms: F1 undefined; only negatives: specificity defined
    assert math.isnan(f1([0, 0], [0, 0])) and specificity([0, 0], [0, 0]) == 1.0
    assert math.isnan(specificity([1, 1], [1, 0]))
    assert mcc([0, 0], [0, 0]) == 0.0  # an empty margin
    assert math.isnan(roc_auc([0, 0], [0.1, 0.2])) and math.isnan(
        average_precision([1, 1], [0.1, 0.2])
    )
    assert evaluate([], [], [])["n"] == 0


def test_evaluate_collects_everything():
    scores = [0.9, 0.8, 0.7, 0.1, 0.75, 0.6, 0.3, 0.2, 0.1, 0.0]
    out = evaluate(Y, P, scores)
    assert out["n"] == 10 and out["n_anomalous"] == 4
    assert out["tp"] == 3 and out["precision"] == pytest.approx(0.6)
    assert out["roc_auc"] == pytest.approx(roc_auc(Y, scores))
    assert set(evaluate(Y)) == {"n", "n_anomalous"}


def test_best_f1_threshold_by_hand():
    y = [1, 1, 0, 1, 0, 0]
    s = [0.9, 0.8, 0.7, 0.6, 0.2, 0.1]
    # flag the top 2: F1 = 4/5 ; top 4: P=3/4, R=1 -> F1 = 6/7 (best)
    # so the threshold lies between 0.6 and 0.2
    t, best = best_f1_threshold(y, s)
    assert best == pytest.approx(6 / 7) and t == pytest.approx(0.4)
    assert f1(y, (np.array(s) > t).astype(int)) == pytest.approx(best)
    with pytest.raises(LogsieveError, match="anomalous"):
        best_f1_threshold([0, 0], [0.1, 0.2])


def test_input_validation():
    with pytest.raises(LogsieveError, match="0 and 1"):
        precision([2, 0], [1, 0])
    with pytest.raises(LogsieveError, match="length"):
        recall([1, 0], [1])
    with pytest.raises(LogsieveError, match="finite"):
        roc_auc([1, 0], [np.nan, 0.0])
    assert precision(np.array([True, False]), np.array([True, True])) == 0.5
