"""Autoencoder family: shared pieces (features, array Isolation Forest, chunking) and the
model-specific behaviour of ae, lstm_ae, iforest_ae, farzad and bursic (the shared
contract is in test_detector_contract.py)."""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest
from detector_fixtures import TEMPLATES, make_windows

from logsieve.detectors.ae_bursic import Bursic, _lines_from
from logsieve.detectors.ae_farzad import FarzadGulliver
from logsieve.detectors.autoencoders import Autoencoder, IsolationForestAE
from logsieve.detectors.classical.iforest import ArrayIsolationForest
from logsieve.detectors.lstm_ae import LSTMAutoencoder
from logsieve.detectors.neural.autoencoder_parts import (
    CountFeatures,
    chunk_sequences,
    expand_rows,
    weighted_quantile,
)
from logsieve.detectors.registry import load_detector
from logsieve.errors import LogsieveError
from logsieve.features.sequence import EncodedWindows
from logsieve.grouping.text import attach_messages

# templates whose words differ (the fixture's differ only by a number, which word tokens drop)
WORDY = {
    "E1": "Receiving block <*> from <*>",
    "E2": "Received block <*> of size <*>",
    "E3": "PacketResponder <*> terminating",
    "E4": "Deleting block <*> file <*>",
    "E5": "Verification succeeded for <*>",
    "E6": "Served block <*> to <*>",
    "E7": "Got exception while serving <*>",
    "E8": "Adding an already existing block <*>",
}


@pytest.fixture(scope="module")
def train() -> pl.DataFrame:
    return make_windows(seed=0)


@pytest.fixture(scope="module")
def test() -> pl.DataFrame:
    return make_windows(seed=1, prefix="t")


def _windows(seqs: list[list[str]], prefix: str = "x") -> pl.DataFrame:
    return pl.DataFrame(
        {"window_id": [f"{prefix}{i}" for i in range(len(seqs))], "event_ids": seqs},
        schema={"window_id": pl.String, "event_ids": pl.List(pl.String)},
    )


# ---------------------------------------------------------------- helpers
def test_weighted_quantile_and_expand_rows():
    values = np.array([3.0, 1.0, 2.0])
    assert weighted_quantile(values, np.array([1, 1, 1]), 0.5) == 2.0
    assert (
        weighted_quantile(values, np.array([0, 10, 1]), 0.9) == 1.0
    )  # 1.0 holds 10/11 of the weight
    x = np.arange(6.0).reshape(3, 2)
    rows = expand_rows(x, np.array([2, 0, 1]), 100, np.random.default_rng(0))
    np.testing.assert_array_equal(rows, x[[0, 0, 2]])
    sampled = expand_rows(x, np.array([5, 5, 5]), 4, np.random.default_rng(0))
    assert sampled.shape == (4, 2)


def test_chunk_sequences_cuts_windows_in_order():
    enc = EncodedWindows(np.array([2, 3, 4, 5, 6, 7, 8, 9], dtype=np.int32), np.array([3, 0, 5]))
    codes, lengths, owner = chunk_sequences(enc, 2)
    np.testing.assert_array_equal(owner, [0, 0, 2, 2, 2])
    np.testing.assert_array_equal(lengths, [2, 1, 2, 2, 1])
    np.testing.assert_array_equal(codes, [[2, 3], [4, 0], [5, 6], [7, 8], [9, 0]])


# ---------------------------------------------------------------- isolation forest
def test_array_isolation_forest_matches_scikit_learn():
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(size=(300, 4)), rng.normal(6, 1, size=(5, 4))]).astype(np.float32)
    ours = ArrayIsolationForest.fit(x, n_estimators=40, max_samples=64, random_state=3)
    ref = IsolationForest(n_estimators=40, max_samples=64, random_state=3).fit(x)
    np.testing.assert_allclose(ours.score(x), -ref.score_samples(x), rtol=1e-12)
    assert ours.score(x[-5:]).min() > np.median(ours.score(x[:300]))


def test_array_isolation_forest_round_trip_and_checks():
    x = np.random.default_rng(1).normal(size=(50, 3))
    forest = ArrayIsolationForest.fit(x, n_estimators=10, max_samples=32, random_state=0)
    again = ArrayIsolationForest.from_arrays(forest.to_arrays(), forest.n_samples)
    np.testing.assert_array_equal(again.score(x), forest.score(x))
    with pytest.raises(LogsieveError, match="lacks"):
        ArrayIsolationForest.from_arrays({}, 32)
    arrays = forest.to_arrays(prefix="")
    arrays["threshold"] = arrays["threshold"][:-1]
    with pytest.raises(LogsieveError, match="inconsistent"):
        ArrayIsolationForest(arrays, 32)
    with pytest.raises(LogsieveError, match="non-empty"):
        ArrayIsolationForest.fit(np.zeros((0, 2)))


# ---------------------------------------------------------------- count features
def test_count_features_events_and_words():
    win = _windows([["E1", "E2", "E2"], ["E1", "E3"]])
    ev = CountFeatures("events", "minmax").fit(win)
    assert ev.feature_names_ == ["<oov>", "E1", "E2", "E3"]  # most frequent first, ties by id
    x = ev.transform(win)
    assert x.min() >= 0 and x.max() <= 1
    new = ev.transform(_windows([["E9", "E9"]]))
    assert new[0, 0] == 2.0  # unseen events: constant 0 in training, range 1

    words = CountFeatures("words", "minmax").fit(
        win, {"E1": "open file <*>", "E2": "close file <*>"}
    )
    names = words.feature_names_
    assert {"open", "close", "file", "<E3>"} <= set(names)  # E3 has no template: a pseudo-word
    x = words.transform(win)
    # "file" occurs 3 times in window 0 and twice in window 1 -> scaled to 1 and 0
    assert x[0, names.index("file")] == 1.0 and x[1, names.index("file")] == 0.0
    doc, arrays = words.to_state()
    again = CountFeatures.from_state(doc, arrays)
    np.testing.assert_array_equal(again.transform(win), x)
    with pytest.raises(LogsieveError, match="features"):
        CountFeatures("chars")


# ---------------------------------------------------------------- ae / iforest_ae
@pytest.fixture(scope="module")
def ae(train):
    return Autoencoder(**Autoencoder._test_params()).fit(train, templates=TEMPLATES)


def test_ae_unseen_event_raises_score_and_is_explained(ae, train):
    normal = train.filter(pl.col("label") == 0).head(20)
    odd = normal.with_columns(pl.col("event_ids").list.concat(pl.lit(["E77", "E77"])))
    base = ae.decision_function(normal)
    assert (ae.decision_function(odd) > base).all()
    top = ae.explain(odd.head(1), top=2)[0]["features"]
    assert top[0]["feature"] == "<oov>" and top[0]["error"] > top[1]["error"]
    assert ae.explain(normal.head(1))[0]["features"][0]["template"] in TEMPLATES.values()


def test_ae_words_features_use_templates(train, test):
    windows = train.drop("messages")
    det = Autoencoder(**Autoencoder._test_params(), features="words").fit(windows, templates=WORDY)
    assert "succeeded" in det.features_.feature_names_
    assert np.isfinite(det.decision_function(test)).all()


def test_ae_bad_params():
    with pytest.raises(LogsieveError, match="features"):
        Autoencoder(features="bytes").fit(make_windows(n_normal=20, n_anomalous=0))
    with pytest.raises(LogsieveError, match="latent_dim"):
        Autoencoder(latent_dim=0).fit(make_windows(n_normal=20, n_anomalous=0))


def test_iforest_ae_screens_training_windows(train, test, tmp_path):
    params = IsolationForestAE._test_params()
    keep_all = IsolationForestAE(**params, if_contamination=0.0).fit(train)
    assert keep_all.n_screened_ == 0
    screened = IsolationForestAE(**params, if_contamination=0.2).fit(train)
    assert 0 < screened.n_screened_ <= 0.3 * screened.n_train_windows_
    entry = screened.explain(test.head(3))[0]
    assert 0 < entry["isolation_score"] <= 1 and isinstance(entry["isolated"], bool)
    screened.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    assert again.n_screened_ == screened.n_screened_
    assert again.explain(test.head(3))[0]["isolation_score"] == entry["isolation_score"]
    with pytest.raises(LogsieveError, match="if_contamination"):
        IsolationForestAE(if_contamination=0.7).fit(train)


# ---------------------------------------------------------------- lstm_ae
def test_lstm_ae_chunks_long_windows_and_explains_positions(train, test):
    params = {**LSTMAutoencoder._test_params(), "max_len": 4, "epochs": 30}
    mean = LSTMAutoencoder(**params).fit(train)
    worst = LSTMAutoencoder(**params, reduce="max").fit(train)
    s_mean, s_max = mean.decision_function(test), worst.decision_function(test)
    assert np.isfinite(s_mean).all() and (s_max >= s_mean - 1e-9).all()
    unseen = test.filter(pl.col("event_ids").list.contains("E99")).head(1)
    pos = mean.explain(unseen, top=1)[0]["positions"][0]
    ids = unseen["event_ids"][0].to_list()
    assert pos["event_id"] == ids[pos["position"]] == "E99" and pos["unseen"]
    assert 0 < pos["probability"] < 1


def test_lstm_ae_empty_window_scores_zero(train):
    det = LSTMAutoencoder(**{**LSTMAutoencoder._test_params(), "epochs": 2}).fit(train)
    scores = det.decision_function(_windows([[], ["E1", "E2"]]))
    assert scores[0] == 0.0 and scores[1] > 0


# ---------------------------------------------------------------- farzad
def test_farzad_forest_splits_training_windows(train, test, tmp_path):
    det = FarzadGulliver(**{**FarzadGulliver._test_params(), "if_contamination": 0.2}).fit(
        train, templates=TEMPLATES
    )
    assert det.n_positive_ + det.n_negative_ == det.n_train_windows_
    assert 0 < det.n_negative_ <= 0.3 * det.n_train_windows_
    assert {h["stage"] for h in det.history_} == {"extractor", "detector"}
    entry = det.explain(test.head(2))[0]
    assert isinstance(entry["predicted_positive"], bool) and entry["features"]
    det.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    np.testing.assert_array_equal(again.decision_function(test), det.decision_function(test))
    assert again.positive_cut_ == det.positive_cut_


def test_farzad_default_word_features(train, test):
    det = FarzadGulliver(**{**FarzadGulliver._test_params(), "features": "words"}).fit(
        train.drop("messages"), templates=WORDY
    )
    assert det.features == "words" and "verification" in det.features_.feature_names_
    scores = det.decision_function(test)
    labels = test["label"].to_numpy()
    assert scores[labels == 1].mean() > scores[labels == 0].mean()


def test_farzad_include_anomalies_trains_on_everything(train):
    det = FarzadGulliver(
        **{**FarzadGulliver._test_params(), "include_anomalies": True, "valid_fraction": 0.0}
    ).fit(train)
    assert det.n_train_windows_ == train.height


# ---------------------------------------------------------------- bursic
def test_lines_are_cleaned_and_deduplicated():
    col = pl.Series(
        "m",
        [
            ["Receiving blk_123 from 10.0.0.12", "step 1 done"],
            ["Receiving blk_98765 from 10.0.0.77"],
        ],
    )
    lines = _lines_from(col, True)
    assert lines.texts.to_list() == ["Receiving blk_0 from 0.0.0.0", "step 1 done"]
    np.testing.assert_array_equal(lines.counts, [2, 1])
    np.testing.assert_array_equal(lines.encoded.codes, [1, 2, 1])
    assert lines.raw[0] == "Receiving blk_123 from 10.0.0.12"


@pytest.fixture(scope="module")
def bursic(train):
    return Bursic(**Bursic._test_params()).fit(train, templates=TEMPLATES)


def test_bursic_reads_messages_and_explains_lines(bursic, test):
    assert bursic.text_source_ == "messages"
    first_word = test["messages"][0][0].split()[0]
    assert first_word in bursic.words_
    scores = bursic.decision_function(test)
    labels = test["label"].to_numpy()
    assert scores[labels == 1].mean() > scores[labels == 0].mean()
    entry = bursic.explain(test.head(1), top=2)[0]
    line = entry["lines"][0]
    assert line["text"] in test["messages"][0].to_list()
    assert line["line_id"] == test["line_ids"][0][line["position"]]


def test_bursic_scores_depend_on_text_not_event_ids(bursic, test):
    one = test.head(1)
    n = one["event_ids"].list.len()[0]
    other_ids = one.with_columns(pl.Series("event_ids", [["E9"] * n]))
    assert bursic.decision_function(other_ids)[0] == bursic.decision_function(one)[0]
    weird = one.with_columns(
        pl.col("messages").list.eval(pl.lit("kernel panic at cpu 3") + pl.element())
    )
    assert bursic.decision_function(weird)[0] > bursic.decision_function(one)[0]


def test_bursic_needs_messages_when_asked(train, caplog):
    with pytest.raises(LogsieveError, match="attach_messages"):
        Bursic(**Bursic._test_params(), text="messages").fit(train.drop("messages"))
    with caplog.at_level(logging.WARNING):
        det = Bursic(**{**Bursic._test_params(), "epochs": 2, "text_epochs": 2}).fit(
            train.drop("messages"), templates=TEMPLATES
        )
    assert det.text_source_ == "templates" and "template text" in caplog.text


def test_bursic_line_weight_adds_line_loss(train, test):
    params = {**Bursic._test_params(), "epochs": 5, "text_epochs": 5}
    plain = Bursic(**params, line_weight=0.0).fit(train)
    weighted = Bursic(**params, line_weight=1.0).fit(train)
    assert (weighted.decision_function(test) > plain.decision_function(test)).all()


def test_bursic_with_attach_messages(tmp_path):
    events = pl.DataFrame(
        {
            "line_id": [1, 2, 3, 4],
            "content": [
                "open file 1234",
                "close file 1234",
                "open file 99",
                "disk failure sector 77",
            ],
        }
    )
    windows = pl.DataFrame(
        {
            "window_id": ["a", "b"],
            "event_ids": [["E1", "E2"], ["E1", "E3"]],
            "line_ids": [[1, 2], [3, 4]],
            "label": [0, 0],
        },
        schema={
            "window_id": pl.String,
            "event_ids": pl.List(pl.String),
            "line_ids": pl.List(pl.Int64),
            "label": pl.Int8,
        },
    )
    windows = attach_messages(windows, events)
    det = Bursic(
        **{**Bursic._test_params(), "epochs": 3, "text_epochs": 3, "valid_fraction": 0.0}
    ).fit(windows)
    assert det.decision_function(windows).shape == (2,)
    assert det.explain(windows)[1]["lines"][0]["text"] in ("open file 99", "disk failure sector 77")
