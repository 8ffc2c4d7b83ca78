"""Event-count vectors: exact matrices, TF-IDF, OOV column, normalisation, persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from scipy import sparse as sp

from logsieve.errors import LogsieveError, NotFittedError
from logsieve.features.counts import OOV_NAME, EventCounter, count_matrix
from logsieve.features.sequence import EventVocab

LIST = pl.List(pl.String)


def windows(rows: list[list[str] | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {"window_id": [f"w{i}" for i in range(len(rows))], "event_ids": rows, "label": [0] * len(rows)},
        schema={"window_id": pl.String, "event_ids": LIST, "label": pl.Int8},
    )


# E1 occurs 3 times (2 windows), E2 twice (2 windows), E3 once: vocab order E1, E2, E3
TRAIN = windows([["E1", "E2", "E1"], ["E2", "E1"], ["E3"]])
TEST = windows([["E3", "E9", "E9"], [], None, ["E1"]])


def test_exact_counts_and_oov_column():
    c = EventCounter().fit(TRAIN)
    assert c.feature_names_ == [OOV_NAME, "E1", "E2", "E3"]
    assert c.n_features_ == 4
    np.testing.assert_array_equal(
        c.transform(TRAIN),
        np.array([[0, 2, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=np.float32),
    )
    got = c.transform(TEST)
    assert got.dtype == np.float32
    # E9 is unknown: two occurrences in the OOV column; empty and null windows are zero rows
    np.testing.assert_array_equal(got, np.array([[2, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))


def test_tfidf_matches_hand_computation():
    c = EventCounter(tfidf=True).fit(TRAIN)
    n = 3  # training windows; df: E1 2, E2 2, E3 1, OOV 0 (treated as 1)
    expected_idf = np.array([math.log(n / 1), math.log(n / 2), math.log(n / 2), math.log(n / 1)], dtype=np.float32)
    np.testing.assert_allclose(c.idf_, expected_idf, rtol=1e-6)
    got = c.transform(TEST)
    np.testing.assert_allclose(got[0], [2 * math.log(3), 0, 0, math.log(3)], rtol=1e-6)
    np.testing.assert_allclose(got[3], [0, math.log(1.5), 0, 0], rtol=1e-6)


def test_event_in_every_window_gets_zero_weight():
    c = EventCounter(tfidf=True).fit(windows([["A", "B"], ["A"], ["A", "A"]]))
    assert c.feature_names_[1] == "A"
    assert c.idf_[1] == 0.0
    assert not c.transform(windows([["A", "A", "A"]])).any()


def test_zero_mean_uses_training_means():
    c = EventCounter(normalize="zero_mean").fit(TRAIN)
    train = c.transform(TRAIN)
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(c.mean_, [0, 1, 2 / 3, 1 / 3], rtol=1e-6)
    raw = EventCounter().fit(TRAIN).transform(TEST)
    np.testing.assert_allclose(c.transform(TEST), raw - c.mean_, rtol=1e-6)


def test_tfidf_then_zero_mean():
    c = EventCounter(tfidf=True, normalize="zero_mean").fit(TRAIN)
    weighted = EventCounter(tfidf=True).fit(TRAIN).transform(TRAIN)
    np.testing.assert_allclose(c.mean_, weighted.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(c.transform(TRAIN).mean(axis=0), 0.0, atol=1e-6)


def test_l2_rows_and_sparse_equals_dense():
    dense = EventCounter(tfidf=True, normalize="l2").fit(TRAIN)
    sparse = EventCounter(tfidf=True, normalize="l2", sparse=True).fit(TRAIN)
    d, s = dense.transform(TEST), sparse.transform(TEST)
    assert sp.issparse(s) and s.format == "csr" and s.dtype == np.float32
    np.testing.assert_allclose(s.toarray(), d, rtol=1e-6)
    norms = np.linalg.norm(d, axis=1)
    np.testing.assert_allclose(norms, [1, 0, 0, 1], rtol=1e-6)
    raw = EventCounter(sparse=True).fit(TRAIN).transform(TEST)
    np.testing.assert_array_equal(raw.toarray(), EventCounter().fit(TRAIN).transform(TEST))


def test_fixed_vocabulary_and_integer_ids():
    c = EventCounter(vocab=["E3", "E1"]).fit(TRAIN)
    assert c.feature_names_ == [OOV_NAME, "E3", "E1"]
    np.testing.assert_array_equal(c.transform(TRAIN)[0], [1, 0, 2])  # E2 is OOV here
    vocab = EventVocab.fit(TRAIN)
    assert EventCounter(vocab=vocab).fit(TRAIN).vocab_ is vocab
    ints = pl.DataFrame({"event_ids": [[5, 5, 7]]}, schema={"event_ids": pl.List(pl.Int64)})
    np.testing.assert_array_equal(count_matrix(ints, EventVocab(["5", "7"])), [[0, 2, 1]])


def test_bad_parameters_and_unfitted():
    with pytest.raises(NotFittedError):
        EventCounter().transform(TRAIN)
    with pytest.raises(LogsieveError, match="normalize"):
        EventCounter(normalize="max").fit(TRAIN)
    with pytest.raises(LogsieveError, match="dense"):
        EventCounter(sparse=True, normalize="zero_mean").fit(TRAIN)
    with pytest.raises(LogsieveError, match="zero training windows"):
        EventCounter().fit(TRAIN.head(0))
    with pytest.raises(LogsieveError, match="event_ids"):
        EventCounter().fit(pl.DataFrame({"x": [1]}))


@pytest.mark.parametrize(
    "params", [{}, {"tfidf": True}, {"tfidf": True, "normalize": "zero_mean"}, {"normalize": "l2", "sparse": True}]
)
def test_save_load_round_trip(tmp_path, params):
    from safetensors.numpy import load_file, save_file

    c = EventCounter(**params).fit(TRAIN)
    (tmp_path / "counter.json").write_text(json.dumps(c.to_dict()))
    arrays = c.to_arrays()
    if arrays:
        save_file(arrays, str(tmp_path / "counter.safetensors"))
        arrays = load_file(str(tmp_path / "counter.safetensors"))
    back = EventCounter.from_dict(json.loads((tmp_path / "counter.json").read_text()), arrays)
    a, b = c.transform(TEST), back.transform(TEST)
    if sp.issparse(a):
        a, b = a.toarray(), b.toarray()
    np.testing.assert_array_equal(a, b)
    assert back.feature_names_ == c.feature_names_
    if params.get("tfidf"):
        with pytest.raises(LogsieveError, match="idf"):
            EventCounter.from_dict(c.to_dict(), {})


def test_many_windows_vectorized():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 30, 20_000)
    flat = pl.Series([f"E{i}" for i in rng.integers(1, 60, int(lengths.sum()))])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    col = pl.DataFrame({"e": flat, "w": np.repeat(np.arange(len(lengths)), lengths)})
    agg = col.group_by("w", maintain_order=True).agg("e")
    full = pl.DataFrame({"w": np.arange(len(lengths))}).join(agg, on="w", how="left", maintain_order="left")
    wins = pl.DataFrame({"event_ids": full.get_column("e")}).with_columns(pl.col("event_ids").fill_null([]))
    mat = EventCounter().fit(wins).transform(wins)
    assert mat.shape[0] == 20_000
    np.testing.assert_array_equal(mat.sum(axis=1), lengths)
    assert int(mat.sum()) == int(offsets[-1])
