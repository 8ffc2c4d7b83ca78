"""Train / validation / test splits and leakage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from logsieve.errors import LogsieveError
from logsieve.grouping.split import leakage, split_windows
from logsieve.schema import TS_DTYPE, WINDOW_SCHEMA

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def windows(n: int, labels=None, seqs=None) -> pl.DataFrame:
    """n time-ordered windows; window i has events [E<i>] unless ``seqs`` is given."""
    return pl.DataFrame(
        {
            "window_id": [f"w{i:03d}" for i in range(n)],
            "event_ids": seqs or [[f"E{i}"] for i in range(n)],
            "line_ids": [[i] for i in range(n)],
            "start": pl.Series([T0 + timedelta(minutes=i) for i in range(n)], dtype=TS_DTYPE),
            "end": pl.Series([T0 + timedelta(minutes=i) for i in range(n)], dtype=TS_DTYPE),
            "label": pl.Series(labels or [0] * n, dtype=pl.Int8),
        },
        schema=WINDOW_SCHEMA,
    )


def ids(df: pl.DataFrame) -> list[str]:
    return df["window_id"].to_list()


def test_chronological_sizes_order_and_no_overlap():
    w = windows(100)
    s = split_windows(w)
    assert (s.train.height, s.valid.height, s.test.height) == (80, 10, 10)
    assert ids(s.train) + ids(s.valid) + ids(s.test) == ids(w)  # consecutive slices, in order
    assert (
        s.train["start"].max()
        < s.valid["start"].min()
        <= s.valid["start"].max()
        < s.test["start"].min()
    )
    assert s.train.schema == w.schema


def test_random_split_is_seeded_disjoint_and_keeps_order():
    w = windows(50)
    a = split_windows(w, train=0.6, valid=0.2, method="random", seed=7)
    b = split_windows(w, train=0.6, valid=0.2, method="random", seed=7)
    c = split_windows(w, train=0.6, valid=0.2, method="random", seed=8)
    assert ids(a.train) == ids(b.train) and ids(a.test) == ids(b.test)
    assert ids(a.train) != ids(c.train)
    parts = [set(ids(p)) for p in (a.train, a.valid, a.test)]
    assert sum(len(p) for p in parts) == 50 and set.union(*parts) == set(ids(w))
    assert (len(parts[0]), len(parts[1]), len(parts[2])) == (30, 10, 10)
    for p in (a.train, a.valid, a.test):
        assert ids(p) == sorted(ids(p))  # original (time) order inside each part
    assert a.summary()["seed"] == 7 and split_windows(w).summary()["seed"] is None


def test_explicit_test_fraction_leaves_rest_unused():
    s = split_windows(windows(20), train=0.5, valid=0.0, test=0.25)
    assert (s.train.height, s.valid.height, s.test.height) == (10, 0, 5)
    assert ids(s.test) == [f"w{i:03d}" for i in range(10, 15)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"train": 0.0},
        {"train": 1.2},
        {"train": -0.1},
        {"valid": -0.1},
        {"train": 0.8, "valid": 0.3},
        {"train": 0.5, "valid": 0.3, "test": 0.3},
        {"train": "0.8"},
        {"train": float("nan")},
        {"method": "shuffled"},
    ],
)
def test_bad_fractions_rejected(kwargs):
    with pytest.raises(LogsieveError):
        split_windows(windows(10), **kwargs)


def test_train_normal_only_never_touches_test():
    labels = [1, 0, None, 0, 1, 0, 0, 1, 0, 1]
    s = split_windows(windows(10, labels=labels), train=0.5, valid=0.2, train_normal_only=True)
    assert ids(s.train) == ["w001", "w002", "w003"]  # label-1 windows w000, w004 dropped; null kept
    assert ids(s.valid) == ["w005", "w006"]
    assert ids(s.test) == ["w007", "w008", "w009"] and s.test["label"].to_list() == [1, 0, 1]
    summary = s.summary()
    assert summary["dropped_anomalous"] == 2
    assert summary["train"] == {"windows": 3, "anomalous": 0, "normal": 2, "unlabelled": 1}
    assert summary["test"]["anomalous"] == 2


def test_leakage_hand_made():
    seqs = [["E1", "E2"], ["E3"], ["E1", "E2"], ["E2", "E1"], ["E3"], ["E1"], ["E12"], ["E1", "E2"]]
    w = windows(8, seqs=seqs)
    train, test = w.head(3), w.tail(5)
    # test: [E2 E1] no (order matters), [E3] yes, [E1] no, [E12] no, [E1 E2] yes
    assert leakage(train, test) == (2, 0.4)
    assert leakage(train, test.head(0)) == (0, 0.0)
    # "E1","E2" must not collide with "E1 E2" or "E12"
    tricky = windows(2, seqs=[["E1 E2"], ["E1", "E2"]])
    assert leakage(tricky.head(1), tricky.tail(1)) == (0, 0.0)
    s = split_windows(w, train=3 / 8, valid=0.0)
    assert s.summary()["leakage"] == {"count": 2, "fraction": 0.4}


def test_empty_table():
    s = split_windows(windows(0))
    assert s.train.height == s.valid.height == s.test.height == 0
    assert s.summary()["leakage"]["count"] == 0
