"""CNN (Lu et al., DASC'18): kernel sizes, fixed sequence length, embeddings, explanations."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from detector_fixtures import make_windows

from logsieve.detectors.cnn import CNN, parse_kernel_sizes
from logsieve.detectors.registry import load_detector
from logsieve.errors import LogsieveError

PARAMS: dict[str, Any] = dict(embedding_dim=8, num_filters=8, kernel_sizes="2,3", epochs=25, batch_size=8, lr=1e-2,
              patience=None, num_threads=1, valid_fraction=0.0)  # fmt: skip
TEMPLATES = {
    "E1": "Receiving block <*>",
    "E2": "Received block <*> of size <*>",
    "E3": "PacketResponder <*> terminating",
    "E4": "addStoredBlock blockMap updated <*>",
    "E5": "allocateBlock <*>",
    "E6": "Verification succeeded for <*>",
    "E7": "Deleting block <*> file <*>",
    "E8": "ask <*> to delete <*>",
    "E99": "Exception in receiveBlock for block <*>",
}


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, pl.DataFrame]:
    return make_windows(seed=0), make_windows(seed=1, prefix="t")


@pytest.fixture(scope="module")
def fitted(data) -> CNN:
    return CNN(**PARAMS).fit(data[0], templates=TEMPLATES)


def test_parse_kernel_sizes():
    assert parse_kernel_sizes("3,4,5") == (3, 4, 5)
    assert parse_kernel_sizes(" 2, 3 ") == (2, 3)
    assert parse_kernel_sizes([3, 4]) == (3, 4)
    for bad in ("", "3,x", "0,3", [True]):
        with pytest.raises(LogsieveError, match="kernel_sizes"):
            parse_kernel_sizes(bad)


def test_defaults_follow_the_paper():
    det = CNN()
    assert parse_kernel_sizes(det.kernel_sizes) == (3, 4, 5)
    assert det.embedding == "learned" and det.dropout == 0.5
    assert det.requires_labels and det.threshold == "auto"


def test_learns_the_fixture(fitted, data):
    _, test = data
    from logsieve.evaluation.metrics import evaluate

    m = evaluate(
        test.get_column("label").to_numpy(), fitted.predict(test), fitted.decision_function(test)
    )
    assert m["roc_auc"] > 0.9
    assert fitted.threshold_ == 0.5
    assert fitted.seq_len_ == int(data[0].get_column("event_ids").list.len().max())
    assert fitted.module_.nets[0].embedding.padding_idx == 0


def test_short_long_and_empty_windows(fitted):
    w = pl.DataFrame(
        {
            "window_id": ["short", "long", "empty"],
            "event_ids": [["E1"], ["E1", "E2", "E4", "E5"] * 30, []],
        },
        schema={"window_id": pl.String, "event_ids": pl.List(pl.String)},
    )
    s = fitted.decision_function(w)
    assert s.shape == (3,) and np.isfinite(s).all()
    # the score of a window does not depend on what else is in the batch
    np.testing.assert_allclose(fitted.decision_function(w[:1]), s[:1], rtol=1e-6)


def test_explanation_points_at_the_unseen_event(fitted, data):
    _, test = data
    anomalies = test.filter(pl.col("event_ids").list.contains("E99")).head(4)
    out = fitted.explain(anomalies, top=3)
    lines = anomalies.get_column("line_ids").to_list()
    seqs = anomalies.get_column("event_ids").to_list()
    hits = 0
    for e, line_ids, seq in zip(out, lines, seqs, strict=True):
        assert 0 < len(e["positions"]) <= 3
        contribs = [p["contribution"] for p in e["positions"]]
        assert contribs == sorted(contribs, reverse=True) and min(contribs) > 0
        for p in e["positions"]:
            assert p["line_id"] == line_ids[p["position"]]
            assert p["event_id"] == seq[p["position"]]
            assert p["template"] == TEMPLATES[p["event_id"]]
        hits += any(p["event_id"] == "E99" for p in e["positions"])
    assert hits >= 3


def test_semantic_embedding_and_new_templates(data, tmp_path):
    train, test = data
    det = CNN(
        **{**PARAMS, "embedding": "semantic", "embedder": "fasttext", "embedding_dim": 16}
    ).fit(train, templates=TEMPLATES)
    assert det.module_.nets[0].embedding is None
    assert det.add_templates({"E100": "Exception in receiveBlock for the block <*>"}) == 1
    w = test.with_columns(pl.col("event_ids").list.eval(pl.element().replace("E99", "E100")))
    s = det.decision_function(w)
    det.save(tmp_path / "m")
    np.testing.assert_array_equal(load_detector(tmp_path / "m").decision_function(w), s)


def test_learned_embedding_cannot_embed_templates(fitted):
    with pytest.raises(LogsieveError, match="semantic"):
        fitted.add_templates({"E100": "x"})


def test_unk_dropout_trains_the_vector_of_unseen_events(data):
    import torch

    from logsieve.features.sequence import UNK

    train, test = data
    assert CNN().unk_dropout == 0.25  # trained by default; 0 is the paper's behaviour
    plain = CNN(**{**PARAMS, "random_state": 0, "unk_dropout": 0.0}).fit(train)
    worded = CNN(**{**PARAMS, "random_state": 0, "unk_dropout": 0.25}).fit(train)
    # without word dropout no training window holds UNK: its row keeps the initial vector
    untrained = CNN(
        **{**PARAMS, "random_state": 0, "unk_dropout": 0.0, "epochs": 1, "lr": 1e-12}
    ).fit(train)
    unk = lambda det: det.module_.nets[0].embedding.weight[UNK].detach()  # noqa: E731
    torch.testing.assert_close(unk(plain), unk(untrained))
    assert not torch.allclose(unk(worded), unk(untrained))
    # rare events are dropped more often: alpha / (alpha + count)
    rates = worded._unk_rate
    counts = train.get_column("event_ids").explode().value_counts(name="n")
    n = dict(counts.iter_rows())
    rare, common = min(n, key=n.get), max(n, key=n.get)
    assert rates[worded.vocab_.index(rare)] > rates[worded.vocab_.index(common)] > 0
    assert rates[worded.vocab_.index(rare)] == pytest.approx(0.25 / (0.25 + n[rare]))
    unseen = test.with_columns(pl.col("event_ids").list.eval(pl.element().replace("E1", "E_NEW")))
    again = CNN(**{**PARAMS, "random_state": 0, "unk_dropout": 0.25}).fit(train)
    np.testing.assert_array_equal(again.decision_function(unseen), worded.decision_function(unseen))


def test_max_len_fixes_the_width(data):
    det = CNN(**{**PARAMS, "epochs": 1, "max_len": 6}).fit(data[0])
    assert det.seq_len_ == 6
    det2 = CNN(**{**PARAMS, "epochs": 1, "max_len": 1}).fit(data[0])
    assert det2.seq_len_ == 3  # at least the largest kernel


def test_bad_params():
    train = make_windows(n_normal=30, n_anomalous=6, seed=2)
    for bad in ({"embedding": "onehot"}, {"kernel_sizes": "3,0"}, {"num_filters": 0}, {"dropout": -0.1},
                {"embedding": "semantic", "embedder": "glove"}, {"unk_dropout": -0.5}):  # fmt: skip
        with pytest.raises(LogsieveError):
            CNN(**{**PARAMS, **bad}).fit(train)
