"""LogAnomaly: top-g rule, semantic and quantitative inputs, unseen templates, explanations."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
import torch
from detector_fixtures import make_windows

from logsieve.detectors.loganomaly import (
    TIE_BREAK,
    LogAnomaly,
    SemanticQuantLSTM,
    id_vectors,
    make_embedder,
)
from logsieve.detectors.registry import create_detector, load_detector
from logsieve.errors import LogsieveError, NotFittedError
from logsieve.features.semantic import FastTextEmbedder, Template2VecEmbedder
from logsieve.features.sequence import PAD, UNK

TINY: dict[str, Any] = dict(
    history_size=4,
    hidden_size=16,
    num_layers=1,
    epochs=30,
    batch_size=64,
    lr=5e-2,
    num_candidates=2,
    embedding_dim=8,
)

# templates with distinct words (the fixture's differ only in their number)
WORDS = ("open", "read", "check", "write", "flush", "close", "report", "finish")
RICH = {f"E{i}": f"{w} file <*> done" for i, w in enumerate(WORDS, start=1)} | {
    "E99": "unexpected failure <*>"
}


def windows(*seqs: list[str], label: int | None = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "window_id": [f"s{i}" for i in range(len(seqs))],
            "event_ids": [list(s) for s in seqs],
            "line_ids": [
                list(range(100 * i + 1, 100 * i + 1 + len(s))) for i, s in enumerate(seqs)
            ],
            "label": [label] * len(seqs),
        },
        schema_overrides={
            "label": pl.Int8,
            "line_ids": pl.List(pl.Int64),
            "event_ids": pl.List(pl.String),
        },
    )


@pytest.fixture(scope="module")
def train() -> pl.DataFrame:
    return make_windows(seed=0)


@pytest.fixture(scope="module")
def fitted(train) -> LogAnomaly:
    return LogAnomaly(**TINY).fit(train, templates=RICH)


def test_registered_with_semantic_input():
    det = create_detector("loganomaly")
    assert isinstance(det, LogAnomaly)
    assert det.input_kind == "semantic" and not det.requires_labels
    # the documented paper / LogADEmpirical defaults
    assert (det.history_size, det.num_layers, det.hidden_size, det.num_candidates) == (
        10,
        2,
        128,
        9,
    )
    assert det.embedder == "template2vec"


def test_top_g_rule_is_the_natural_threshold(fitted, train):
    assert fitted.threshold_ == pytest.approx(TINY["num_candidates"] - 0.5)
    assert fitted.threshold_source_ == "model"
    test = make_windows(seed=1, prefix="t")
    scores = fitted.decision_function(test)
    # scores are ranks: integers, and a window is flagged iff some rank >= g
    np.testing.assert_array_equal(scores, np.round(scores))
    np.testing.assert_array_equal(
        fitted.predict(test), (scores >= TINY["num_candidates"]).astype(np.int8)
    )
    y = test.get_column("label").to_numpy()
    pred = fitted.predict(test)
    assert pred[y == 1].mean() > 0.9 and pred[y == 0].mean() < 0.1


def test_unseen_event_is_an_anomaly_with_oov_rank(fitted):
    w = windows(["E1", "E2", "E4", "E5", "E6", "E8"], ["E1", "E2", "E4", "E77", "E6", "E8"])
    scores = fitted.decision_function(w)
    assert scores[1] == fitted.oov_rank_ >= fitted.num_candidates
    assert scores[0] < fitted.threshold_


def test_semantic_vectors_come_from_the_training_templates(fitted):
    assert isinstance(fitted.embedder_, Template2VecEmbedder)
    table = fitted._semantic_table()
    assert table.shape == (len(fitted._input_vocab()), TINY["embedding_dim"])
    assert not table[PAD].any() and not table[UNK].any()
    # each training event's row is its template's embedding
    code = fitted.vocab_.index("E3")
    np.testing.assert_allclose(table[code], fitted.embedder_.embed([RICH["E3"]])[0], rtol=1e-5)


def test_templates_not_in_training_are_embedded_as_extra_events(train):
    extra = dict(RICH, E50="read file <*> done again")
    det = LogAnomaly(**TINY).fit(train, templates=extra)
    assert "E50" in det.extra_event_ids_ and "E50" not in det.vocab_
    vocab = det._input_vocab()
    assert vocab.index("E50") == len(det.vocab_) + det.extra_event_ids_.index("E50")
    row = det._semantic_table()[vocab.index("E50")]
    assert np.linalg.norm(row) > 0
    # as a prediction target it is still unseen (an anomaly)
    w = windows(["E1", "E2", "E50", "E4", "E5", "E6", "E8"])
    assert det.decision_function(w)[0] == det.oov_rank_


def test_add_templates_after_fit_and_counts(fitted):
    det = LogAnomaly(**TINY).fit(make_windows(seed=0), templates=RICH)
    with pytest.raises(NotFittedError):
        LogAnomaly(**TINY).add_templates({"E60": "x"})
    assert det.add_templates({"E60": "open file <*> again", "E61": "<*> <*>", "E1": "ignored"}) == 1
    assert det.extra_event_ids_ == ["E60"]
    assert det.templates_["E60"] == "open file <*> again"
    assert det.templates_["E1"] == RICH["E1"]  # training templates are never replaced
    assert det.add_templates({"E60": "open file <*> again"}) == 0  # nothing new


def test_match_unseen_maps_similar_templates(train):
    # E50's words are those of E2: with matching it is predicted as E2, not flagged as unseen
    templates = dict(RICH, E50="read file <*> done")
    det = LogAnomaly(**TINY, match_unseen=0.99).fit(train, templates=templates)
    normal = ["E1", "E2", "E4", "E5", "E6", "E8"]
    swapped = ["E1", "E50", "E4", "E5", "E6", "E8"]
    scores = det.decision_function(windows(normal, swapped))
    assert scores[1] == scores[0] < det.threshold_
    plain = LogAnomaly(**TINY).fit(train, templates=templates)
    assert plain.decision_function(windows(swapped))[0] == plain.oov_rank_
    strict = LogAnomaly(**{**TINY, "num_candidates": 1}, match_unseen=0.99).fit(
        train, templates=templates
    )
    (expl,) = strict.explain(windows(["E1", "E50", "E50", "E4"]))
    matched = [p for p in expl["positions"] if p["event_id"] == "E50"]
    assert matched and all(p["matched_event_id"] == "E2" and not p["unseen"] for p in matched)


def test_quantitative_input_is_cumulative_counts(fitted):
    e1, e2 = fitted.vocab_.index("E1"), fitted.vocab_.index("E2")
    hist = torch.tensor([[PAD, e1, e2, e1], [e1, e1, e1, UNK]])
    semantic, counts = fitted._inputs(hist)
    assert semantic.shape == (2, 4, TINY["embedding_dim"])
    assert counts.shape == (2, 4, len(fitted.vocab_))
    assert counts[0, -1, e1] == 2 and counts[0, -1, e2] == 1 and counts[0, :, PAD].sum() == 0
    assert counts[0, 1, e1] == 1 and counts[0, 1, e2] == 0
    assert counts[1, -1, e1] == 3 and counts[1, -1, UNK] == 1
    # E99 (only in anomalous windows) is no training event and its words are unknown to
    # the word2vec model: no vector. E50's words are known: it counts in the UNK column
    # and keeps its own semantic vector.
    assert fitted.extra_event_ids_ == []
    det = LogAnomaly(**TINY).fit(
        make_windows(seed=0), templates=dict(RICH, E50="read file <*> again")
    )
    assert det.extra_event_ids_ == ["E50"]
    e1 = det.vocab_.index("E1")
    extra = det._input_vocab().index("E50")
    semantic, counts = det._inputs(torch.tensor([[e1, e1, e1, extra]]))
    assert counts[0, -1, UNK] == 1 and counts[0, -1, e1] == 3
    np.testing.assert_allclose(
        semantic[0, -1].numpy(), det.embedder_.embed(["read file <*> again"])[0], rtol=1e-5
    )


def test_quantitative_lstm_sees_counts_that_order_alone_cannot_give():
    module = SemanticQuantLSTM(
        semantic_dim=3, n_counts=5, n_outputs=6, hidden_size=4, num_layers=2, dropout=0.1
    )
    out = module(torch.zeros(7, 4, 3), torch.zeros(7, 4, 5))
    assert out.shape == (7, 6)


def test_explanations_name_position_event_template_and_expected(fitted):
    w = windows(["E1", "E2", "E4", "E99", "E6", "E8"], ["E1", "E2", "E4", "E5", "E6", "E8"])
    out = fitted.explain(w)
    assert [e["window_id"] for e in out] == ["s0", "s1"]
    first = out[0]
    assert first["is_anomaly"] and first["score"] == fitted.oov_rank_
    pos = next(p for p in first["positions"] if p["event_id"] == "E99")
    assert pos["position"] == 3 and pos["line_id"] == 4
    assert pos["unseen"] and pos["probability"] == 0.0 and pos["template"] == RICH["E99"]
    assert len(pos["expected"]) == TINY["num_candidates"]
    probs = [e["probability"] for e in pos["expected"]]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    assert pos["expected"][0]["template"] == RICH[pos["expected"][0]["event_id"]]
    assert out[1]["positions"] == [] and not out[1]["is_anomaly"]
    assert len(fitted.explain(w, top=1)[0]["positions"][0]["expected"]) == 1


def test_without_templates_events_get_distinct_id_vectors(train, caplog):
    det = LogAnomaly(**TINY).fit(train)
    assert "no templates given" in caplog.text
    assert det.embedder_ is None
    table = det._semantic_table()[2:]
    assert len(np.unique(table.round(6), axis=0)) == len(table)


def test_identical_template_vectors_are_separated(train):
    # templates that differ only in a number, which the tokenizer drops
    same = {f"E{i}": f"step {i} of task <*>" for i in range(1, 9)}
    det = LogAnomaly(**TINY).fit(train, templates=same)
    raw = det.embedder_.embed([same["E1"], same["E2"]])
    np.testing.assert_array_equal(raw[0], raw[1])
    table = det._semantic_table()
    a, b = table[det.vocab_.index("E1")], table[det.vocab_.index("E2")]
    assert not np.allclose(a, b)
    # the shared semantic part is kept, plus an id-derived offset of TIE_BREAK * mean norm
    assert np.linalg.norm(a - raw[0]) == pytest.approx(TIE_BREAK * np.linalg.norm(raw[0]), rel=0.3)


def test_id_vectors_are_deterministic_unit_vectors():
    a = id_vectors(["E1", "E2"], 16, seed=3)
    np.testing.assert_array_equal(a, id_vectors(["E1", "E2"], 16, seed=3))
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(a, id_vectors(["E1", "E2"], 16, seed=4))


def test_fasttext_embedder_gives_vectors_to_unknown_words(train):
    assert isinstance(make_embedder("fasttext", 8, 0), FastTextEmbedder)
    det = LogAnomaly(**{**TINY, "embedder": "fasttext"}).fit(train, templates=RICH)
    # "reopened" is no training word: FastText builds it from character n-grams
    assert det.add_templates({"E70": "reopened"}) == 1
    w2v = LogAnomaly(**{**TINY, "embedder": "word2vec"}).fit(train, templates=RICH)
    assert w2v.add_templates({"E70": "reopened"}) == 0


def test_save_load_keeps_extra_events_and_embedder(fitted, tmp_path):
    det = LogAnomaly(**TINY).fit(
        make_windows(seed=0), templates=dict(RICH, E50="read file <*> twice")
    )
    det.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    assert again.extra_event_ids_ == det.extra_event_ids_
    w = windows(["E1", "E50", "E4", "E5"], ["E1", "E2", "E4", "E5", "E6", "E8"])
    np.testing.assert_array_equal(again.decision_function(w), det.decision_function(w))
    np.testing.assert_array_equal(again._semantic_table(), det._semantic_table())
    # the restored embedder still embeds new templates the same way
    assert (
        again.add_templates({"E80": "flush file <*>"})
        == det.add_templates({"E80": "flush file <*>"})
        == 1
    )
    np.testing.assert_allclose(again._semantic_table(), det._semantic_table(), rtol=1e-6)


def test_stream_windows_score_only_full_histories(train):
    det = LogAnomaly(**{**TINY, "session_bounds": False}).fit(train, templates=RICH)
    assert det.n_outputs_ == len(det.vocab_)
    short = windows(["E99", "E1", "E2"])  # no position with a full history of 4
    assert det.decision_function(short)[0] == 0.0


def test_bad_params_are_clear_errors(train):
    with pytest.raises(LogsieveError, match="embedder"):
        LogAnomaly(embedder="glove").fit(train)
    with pytest.raises(LogsieveError, match="match_unseen"):
        LogAnomaly(match_unseen=1.5).fit(train)
    with pytest.raises(LogsieveError, match="history_size"):
        LogAnomaly(history_size=0).fit(train)
    with pytest.raises(LogsieveError, match="no event ids"):
        LogAnomaly(**TINY, valid_fraction=0.0).fit(windows([], []))
