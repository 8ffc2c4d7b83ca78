"""LogRobust: semantic event vectors, unseen (reworded) templates, attention explanations."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from detector_fixtures import make_windows

from logsieve.detectors.logrobust import LogRobust
from logsieve.detectors.neural.semantic_table import EventSemantics, id_vectors
from logsieve.detectors.registry import load_detector
from logsieve.errors import LogsieveError

# HDFS-like templates: distinct words per event, one failure event (E99)
TEMPLATES = {
    "E1": "Receiving block <*> src: <*> dest: <*>",
    "E2": "Received block <*> of size <*> from <*>",
    "E3": "PacketResponder <*> for block <*> terminating",
    "E4": "BLOCK* NameSystem.addStoredBlock: blockMap updated: <*> is added to <*> size <*>",
    "E5": "BLOCK* NameSystem.allocateBlock: <*> <*>",
    "E6": "Verification succeeded for <*>",
    "E7": "Deleting block <*> file <*>",
    "E8": "BLOCK* ask <*> to delete <*>",
    "E99": "Exception in receiveBlock for block <*> java.io.IOException: Connection reset by peer",
}
# the failure message after a code change: reworded, never seen in training
REWORDED = {
    "E100": "Exception in receiveBlock for the block <*> java.io.IOException: Connection was reset by peer"
}
UNRELATED = {"E101": "Served block <*> to <*>"}

PARAMS: dict[str, Any] = dict(embedding_dim=16, hidden_size=16, num_layers=1, epochs=30, batch_size=8, lr=2e-2,
              patience=None, num_threads=1, valid_fraction=0.0)  # fmt: skip


def _unseen_only(n_normal: int, n_anomalous: int, seed: int, prefix: str) -> pl.DataFrame:
    """Fixture windows whose only anomaly kind is the failure event E99 inside a normal flow."""
    w = make_windows(n_normal=n_normal, n_anomalous=n_anomalous * 4, seed=seed, prefix=prefix)
    has99 = pl.col("event_ids").list.contains("E99")
    return w.filter((pl.col("label") == 0) | has99)


@pytest.fixture(scope="module")
def fitted() -> LogRobust:
    train = _unseen_only(240, 24, seed=0, prefix="w")
    return LogRobust(**PARAMS).fit(train, templates=TEMPLATES)


@pytest.fixture(scope="module")
def test_windows() -> pl.DataFrame:
    return _unseen_only(120, 12, seed=1, prefix="t")


def _replace(windows: pl.DataFrame, old: str, new: str) -> pl.DataFrame:
    return windows.with_columns(pl.col("event_ids").list.eval(pl.element().replace(old, new)))


def test_separates_the_failure_event(fitted, test_windows):
    scores = fitted.decision_function(test_windows)
    y = test_windows.get_column("label").to_numpy()
    assert scores[y == 1].min() > 0.5 > scores[y == 0].max()
    assert fitted.threshold_ == 0.5 and fitted.threshold_source_ == "model"


def test_reworded_unseen_template_scores_like_its_original(fitted, test_windows, tmp_path):
    anomalies = test_windows.filter(pl.col("label") == 1)
    original = fitted.decision_function(anomalies)
    reworded_windows = _replace(anomalies, "E99", "E100")
    unrelated_windows = _replace(anomalies, "E99", "E101")
    # before its template is known, E100 has no vector at all
    before = fitted.decision_function(reworded_windows)
    assert fitted.add_templates(REWORDED | UNRELATED) == 2
    assert fitted.add_templates(REWORDED) == 0  # already known
    reworded = fitted.decision_function(reworded_windows)
    unrelated = fitted.decision_function(unrelated_windows)
    assert (reworded > 0.5).all()
    np.testing.assert_allclose(reworded, original, atol=0.15)
    assert reworded.mean() > before.mean()
    assert reworded.mean() > unrelated.mean()
    # the new vectors are saved with the model
    fitted.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    np.testing.assert_array_equal(again.decision_function(reworded_windows), reworded)
    assert again.templates_["E100"] == REWORDED["E100"]


def test_fasttext_vector_of_reworded_template_is_close():
    train = _unseen_only(60, 6, seed=2, prefix="s")
    sem = EventSemantics.fit(
        TEMPLATES,
        [f"E{i}" for i in range(1, 9)] + ["E99"],
        embedder="fasttext",
        dim=16,
        seed=0,
        owner="t",
    )
    sem.add_templates(REWORDED | UNRELATED)
    v = dict(zip(sem.vectors.event_ids, sem.vectors.vectors, strict=True))

    def cos(a: str, b: str) -> float:
        x, y = v[a] - sem.center, v[b] - sem.center
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    assert cos("E99", "E100") > 0.8
    assert cos("E99", "E100") > cos("E99", "E101")
    assert train.height > 0


def test_attention_explanation(fitted, test_windows):
    anomalies = test_windows.filter(pl.col("label") == 1).head(4)
    out = fitted.explain(anomalies, top=-1)
    lines = anomalies.get_column("line_ids").to_list()
    seqs = anomalies.get_column("event_ids").to_list()
    for e, line_ids, seq in zip(out, lines, seqs, strict=True):
        att = e["attention"]
        assert len(att) == len(seq)
        assert sum(a["weight"] for a in att) == pytest.approx(1.0, abs=1e-5)
        weights = [a["weight"] for a in att]
        assert weights == sorted(weights, reverse=True)
        for a in att:
            assert a["line_id"] == line_ids[a["position"]]
            assert a["event_id"] == seq[a["position"]]
            assert a["template"] == TEMPLATES[a["event_id"]]
            assert a["known"]
    top2 = fitted.explain(anomalies, top=2)
    assert all(len(e["attention"]) == 2 for e in top2)


def test_scores_do_not_depend_on_batch_padding(fitted, test_windows):
    one = test_windows.head(3)
    long_window = pl.DataFrame(
        {"window_id": ["long"], "event_ids": [["E1", "E2", "E3", "E4", "E5"] * 20], "label": [0]},
        schema={"window_id": pl.String, "event_ids": pl.List(pl.String), "label": pl.Int8},
    )
    alone = fitted.decision_function(one)
    mixed = fitted.decision_function(
        pl.concat([one.select("window_id", "event_ids", "label"), long_window])
    )
    np.testing.assert_allclose(mixed[:3], alone, rtol=1e-5, atol=1e-6)


def test_max_len_keeps_the_last_events_and_explains_their_positions(test_windows):
    train = _unseen_only(60, 6, seed=3, prefix="m")
    det = LogRobust(**{**PARAMS, "epochs": 2, "max_len": 4}).fit(train, templates=TEMPLATES)
    w = test_windows.head(2)
    out = det.explain(w, top=-1)
    for e, seq in zip(out, w.get_column("event_ids").to_list(), strict=True):
        assert sorted(a["position"] for a in e["attention"]) == list(range(len(seq) - 4, len(seq)))


def test_without_templates_uses_id_vectors(caplog):
    train = _unseen_only(60, 6, seed=4, prefix="n")
    det = LogRobust(**{**PARAMS, "epochs": 2}).fit(train)
    assert "no templates" in caplog.text
    assert det.semantics_.mode == "id"
    with pytest.raises(LogsieveError, match="without templates"):
        det.add_templates(REWORDED)
    a = id_vectors(["E1", "E2"], 8)
    b = id_vectors(["E2", "E1"], 8)
    np.testing.assert_array_equal(a, b[::-1])


def test_coteaching_trains_two_networks_and_saves_them(tmp_path, test_windows):
    train = _unseen_only(120, 12, seed=5, prefix="c")
    det = LogRobust(**{**PARAMS, "epochs": 10, "robust": "coteaching", "forget_rate": 0.1}).fit(
        train, templates=TEMPLATES
    )
    assert len(det.module_.nets) == 2
    scores = det.decision_function(test_windows)
    det.save(tmp_path / "m")
    np.testing.assert_array_equal(
        load_detector(tmp_path / "m").decision_function(test_windows), scores
    )


def test_needs_both_labels_and_valid_params():
    train = _unseen_only(30, 3, seed=6, prefix="x").with_columns(
        pl.lit(0, dtype=pl.Int8).alias("label")
    )
    with pytest.raises(LogsieveError, match="supervised"):
        LogRobust(**PARAMS).fit(train, templates=TEMPLATES)
    for bad in ({"embedder": "glove"}, {"hidden_size": 0}, {"max_len": 0}, {"dropout": 1.0}):
        with pytest.raises(LogsieveError):
            LogRobust(**{**PARAMS, **bad}).fit(train, templates=TEMPLATES)
