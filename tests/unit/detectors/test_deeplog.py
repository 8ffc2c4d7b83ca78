"""DeepLog: the top-g rule, unseen keys, explanations, online update, the parameter-value
model, workflows, persistence failures, sequence features and the CLI functions."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch
from detector_fixtures import TEMPLATES, make_windows
from torch import nn

from logsieve.detectors.deeplog import END_OF_WINDOW, DeepLog
from logsieve.detectors.deeplog_params import ParameterValueModel
from logsieve.detectors.deeplog_workflow import END, START, Workflow, build_workflow, separate_tasks
from logsieve.detectors.registry import load_detector
from logsieve.errors import LogsieveError, NotFittedError
from logsieve.features.sequence import (
    PAD,
    UNK,
    EventVocab,
    append_marker,
    count_pairs,
    distinct_windows,
    next_event_pairs,
    pad_sequences,
)

TINY: dict[str, Any] = dict(
    history_size=4,
    hidden_size=16,
    num_layers=1,
    epochs=30,
    batch_size=64,
    lr=5e-2,
    num_candidates=2,
)


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
        schema_overrides={"label": pl.Int8, "line_ids": pl.List(pl.Int64)},
    )


@pytest.fixture(scope="module")
def fixture_model() -> DeepLog:
    return DeepLog(**TINY).fit(make_windows(seed=0), templates=TEMPLATES)


# ----------------------------------------------------------------- sequence features
def test_vocab_fit_encode_unknown_and_padding():
    w = windows(["E2", "E1", "E2"], ["E3"], [])
    vocab = EventVocab.fit(w)
    assert vocab.tokens == ("E2", "E1", "E3")  # most frequent first, ties by id
    assert len(vocab) == 5 and vocab.n_keys == 3
    enc = vocab.encode(windows(["E1", "E9"], [], ["E3"]))
    np.testing.assert_array_equal(enc.codes, [3, UNK, 4])
    np.testing.assert_array_equal(enc.lengths, [2, 0, 1])
    assert vocab.decode([PAD, UNK, 2]) == [None, None, "E2"]
    assert EventVocab.from_list(vocab.to_list()).tokens == vocab.tokens


def test_next_event_pairs_left_padding_and_strict_mode():
    enc = EventVocab(["A", "B", "C"]).encode(windows(["A", "B", "C"], ["C"]))
    pairs = next_event_pairs(enc, 2)
    np.testing.assert_array_equal(pairs.history, [[PAD, PAD], [PAD, 2], [2, 3], [PAD, PAD]])
    np.testing.assert_array_equal(pairs.target, [2, 3, 4, 4])
    np.testing.assert_array_equal(pairs.window, [0, 0, 0, 1])
    np.testing.assert_array_equal(pairs.position, [0, 1, 2, 0])
    strict = next_event_pairs(enc, 2, first_position=2)  # paper windows: full histories only
    np.testing.assert_array_equal(strict.history, [[2, 3]])
    ended = next_event_pairs(append_marker(enc, 9), 1)
    assert ended.target.tolist() == [2, 3, 4, 9, 4, 9]


def test_count_pairs_and_distinct_windows():
    hist = np.array([[1, 2], [1, 2], [3, 4]])
    tgt = np.array([5, 5, 6])
    h, t, c, inv = count_pairs(hist, tgt, np.array([1.0, 2.0, 4.0]))
    assert h.tolist() == [[1, 2], [3, 4]] and t.tolist() == [5, 6] and c.tolist() == [3.0, 4.0]
    assert inv.tolist() == [0, 0, 1]
    w = windows(["A"], ["B"], ["A"])
    distinct, inverse, counts = distinct_windows(w)
    assert distinct.get_column("window_id").to_list() == ["s0", "s1"]
    assert inverse.tolist() == [0, 1, 0] and counts.tolist() == [2, 1]


def test_pad_sequences_keeps_the_last_events():
    enc = EventVocab(["A", "B", "C"]).encode(windows(["A", "B", "C"], ["B"]))
    np.testing.assert_array_equal(pad_sequences(enc, 2), [[3, 4], [3, 0]])
    np.testing.assert_array_equal(pad_sequences(enc, 2, side="left"), [[3, 4], [0, 3]])


# ----------------------------------------------------------------- the top-g rule
class FixedPreference(nn.Module):
    """Ignores the history; prefers keys in a fixed order (known ranks)."""

    logits: torch.Tensor

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits))

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(history.shape[0], -1).clone()


def test_top_g_rule_with_known_ranks():
    det = DeepLog(
        history_size=1, num_candidates=3, session_bounds=False, epochs=1, valid_fraction=0.0
    )
    det.fit(windows(["A", "B", "C", "D"]))
    order = det.vocab_.tokens  # output index i + 2 is order[i]
    preference = {"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0}  # ranks A=0, B=1, C=2, D=3
    det.module_ = FixedPreference([0.0, 0.0] + [preference[t] for t in order])
    test = windows(["A", "B", "C"], ["A", "D"], ["D", "A"], ["B"], ["A", "Z"])
    scores = det.decision_function(test)
    # positions >= h=1 are predicted: max ranks 2, 3, 0, none, unseen
    assert scores.tolist() == [2.0, 3.0, 0.0, 0.0, float(det.oov_rank_)]
    assert det.threshold_ == 2.5  # g - 0.5
    assert det.predict(test).tolist() == [0, 1, 0, 0, 1]
    det.num_candidates = 4
    det.threshold_ = det._natural_threshold()
    assert det.predict(test).tolist() == [0, 0, 0, 0, 1]  # D is now inside the top 4; Z never is


def test_learns_a_deterministic_workflow():
    train = windows(*[["A", "B", "C", "D"]] * 20)
    det = DeepLog(
        history_size=3,
        hidden_size=16,
        num_layers=1,
        epochs=60,
        lr=5e-2,
        num_candidates=1,
        valid_fraction=0.0,
    )
    det.fit(train)
    scores = det.decision_function(
        windows(["A", "B", "C", "D"], ["A", "C", "B", "D"], ["A", "B", "C"])
    )
    assert scores[0] == 0.0  # every key is the top-1 prediction, and so is the end
    assert scores[1] > 0.5 and scores[2] > 0.5  # swapped keys; a window that stops early
    assert det.predict(windows(["A", "B", "C", "D"], ["A", "C", "B", "D"])).tolist() == [0, 1]


def test_unseen_key_is_anomalous(fixture_model):
    test = windows(["E1", "E2", "E4", "E5", "E77", "E6", "E8"])
    assert fixture_model.decision_function(test)[0] == fixture_model.oov_rank_
    assert fixture_model.predict(test)[0] == 1
    pos = fixture_model.explain(test)[0]["positions"]
    unseen = [p for p in pos if p["unseen"]]
    assert len(unseen) == 1 and unseen[0]["event_id"] == "E77" and unseen[0]["position"] == 4
    assert unseen[0]["probability"] == 0.0 and unseen[0]["rank"] == fixture_model.oov_rank_
    assert unseen[0]["reason"] == "key never seen in training"


def test_explanation_content(fixture_model):
    test = windows(
        ["E1", "E2", "E4", "E5", "E6", "E8"],
        ["E1", "E2", "E4", "E5", "E8"],
        ["E1", "E2", "E4", "E5"],
    )
    out = fixture_model.explain(test)
    assert [e["window_id"] for e in out] == ["s0", "s1", "s2"]
    assert out[0]["is_anomaly"] is False and out[0]["positions"] == []
    swapped = out[1]
    assert swapped["is_anomaly"] is True and swapped["score"] > fixture_model.threshold_
    first = swapped["positions"][0]
    assert first["position"] == 4 and first["event_id"] == "E8"  # E6 was skipped
    assert first["template"] == TEMPLATES["E8"]
    assert first["line_id"] == 101 + 4  # line_ids of window s1 start at 101
    assert first["rank"] >= fixture_model.num_candidates
    assert len(first["expected"]) == fixture_model.num_candidates
    assert {x["event_id"] for x in first["expected"]} == {"E4", "E6"}  # loop again, or leave it
    probs = [x["probability"] for x in first["expected"]]
    assert probs == sorted(probs, reverse=True) and all(0 < p <= 1 for p in probs)
    assert all(
        x["template"] == TEMPLATES.get(x["event_id"])
        for x in first["expected"]
        if x["event_id"] != END_OF_WINDOW
    )
    assert first["reason"] == "not among the 2 most probable keys"
    truncated = out[2]["positions"]
    assert truncated[-1]["event_id"] == END_OF_WINDOW and truncated[-1]["line_id"] is None
    assert fixture_model.min_length_ == 6  # E1 E2 E4 E5 E6 E8
    assert truncated[-1]["rank"] == fixture_model.oov_rank_
    assert truncated[-1]["reason"].startswith("window shorter than every training window")
    assert fixture_model.explain(test, top=1)[1]["positions"][0]["expected"].__len__() == 1
    json.dumps(out)  # JSON-able


def test_online_update_lowers_the_score_of_a_false_positive():
    det = DeepLog(**TINY).fit(make_windows(seed=0))
    marked = windows(["E1", "E2", "E8"])  # skips the loop and E6: never seen in training
    before = det.decision_function(marked)[0]
    assert before > det.threshold_
    assert det.update(marked, epochs=15) is det
    after = det.decision_function(marked)[0]
    assert after < before
    assert det.min_length_ == 3  # the marked length is normal from now on
    assert det.history_[-1]["update"] is True


def test_update_requires_fit():
    with pytest.raises(NotFittedError):
        DeepLog().update(windows(["A"]))


# ----------------------------------------------------------------- persistence failures
def test_tampered_and_truncated_weights_give_clear_errors(fixture_model, tmp_path):
    d = fixture_model.save(tmp_path / "m")
    weights = d / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(LogsieveError, match="SHA-256 does not match"):
        load_detector(d)
    weights.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(LogsieveError, match="truncated"):
        load_detector(d)


def test_invalid_weights_with_matching_hash_and_bad_manifests(fixture_model, tmp_path):
    from logsieve.detectors.persistence import file_sha256

    d = fixture_model.save(tmp_path / "m")
    weights = d / "weights.safetensors"
    weights.write_bytes(b"\x00" * 64)
    doc = json.loads((d / "model.json").read_text())
    doc["weights"].update(sha256=file_sha256(weights), bytes=64)
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(LogsieveError, match="not a valid safetensors file"):
        load_detector(d)
    doc["format_version"] = 99
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(LogsieveError, match="newer"):
        load_detector(d)
    (d / "model.json").write_text("{not json")
    with pytest.raises(LogsieveError, match="invalid JSON"):
        load_detector(d)
    with pytest.raises(LogsieveError, match="no model.json"):
        load_detector(tmp_path)


def test_weights_of_another_shape_are_refused(fixture_model, tmp_path):
    d = fixture_model.save(tmp_path / "m")
    doc = json.loads((d / "model.json").read_text())
    doc["params"]["hidden_size"] = 8
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(LogsieveError, match="do not match"):
        load_detector(d)


# ----------------------------------------------------------------- parameter values
def _param_events(n: int, seed: int, outlier_at: int | None = None) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    size = 100.0 + 20.0 * np.sin(t / 3.0) + rng.normal(0, 1.0, n)  # E1: a smooth periodic value
    dur = np.column_stack([5 + rng.normal(0, 0.2, n), 50 + rng.normal(0, 1.0, n)])  # E2: two values
    if outlier_at is not None:
        size[outlier_at] = 400.0
    rows = []
    for i in range(n):
        rows.append(("E1", [float(size[i])]))
        rows.append(("E2", dur[i].tolist()))
        rows.append(("E3", []))  # a key without parameters is ignored
    return pl.DataFrame(
        {
            "line_id": np.arange(1, len(rows) + 1),
            "event_id": [r[0] for r in rows],
            "values": [r[1] for r in rows],
        },
        schema_overrides={"values": pl.List(pl.Float64)},
    )


@pytest.fixture(scope="module")
def param_model() -> ParameterValueModel:
    return ParameterValueModel(
        history_size=3, hidden_size=16, num_layers=1, epochs=40, min_samples=20
    ).fit(_param_events(160, seed=0))


def test_parameter_model_flags_an_outlier_value(param_model):
    events = _param_events(60, seed=1, outlier_at=30)
    scored = param_model.score_events(events)
    assert scored.columns == ["line_id", "event_id", "param_mse", "param_score", "param_anomaly"]
    outlier_row = 30 * 3  # E1 of step 30
    assert scored["param_anomaly"][outlier_row] is True
    e1 = scored.filter(pl.col("event_id") == "E1")
    assert int(e1["param_anomaly"].sum()) <= 4  # the outlier (and the prediction right after it)
    assert e1["param_score"].arg_max() == 30
    assert (
        scored.filter(pl.col("event_id") == "E3")["param_score"].is_null().all()
        or np.isnan(scored.filter(pl.col("event_id") == "E3")["param_score"].to_numpy()).all()
    )
    assert set(param_model.models_) == {"E1", "E2"}
    assert param_model.predict(events)[outlier_row] == 1


def test_parameter_model_save_load(param_model, tmp_path):
    events = _param_events(40, seed=2, outlier_at=20)
    param_model.save(tmp_path / "p")
    again = ParameterValueModel.load(tmp_path / "p")
    np.testing.assert_allclose(
        again.decision_function(events),
        param_model.decision_function(events),
        equal_nan=True,
        rtol=1e-6,
    )


def test_parameter_model_input_errors():
    model = ParameterValueModel(min_samples=5)
    with pytest.raises(LogsieveError, match="values"):
        model.fit(pl.DataFrame({"event_id": ["E1"]}))
    bad = pl.DataFrame({"event_id": ["E1", "E1"], "values": [[1.0], [1.0, 2.0]]})
    with pytest.raises(LogsieveError, match="different lengths"):
        model.fit(bad)
    with pytest.raises(NotFittedError):
        model.score_events(bad)


# ----------------------------------------------------------------- workflows
def test_workflow_from_known_sequences():
    seqs = windows(
        ["A", "B", "C", "E"], ["A", "C", "B", "E"], ["A", "B", "C", "E"], ["A", "D", "D", "E"]
    )
    wf = build_workflow(seqs, templates={"A": "open <*>"})
    assert wf.edges[(START, "A")] == {"count": 4.0, "probability": 1.0}
    assert wf.edges[("A", "B")]["count"] == 2.0 and wf.edges[("A", "B")]["probability"] == 0.5
    assert wf.edges[("E", END)]["probability"] == 1.0
    assert wf.divergence_points() == ["A", "B", "C", "D"]
    assert wf.concurrent_pairs() == [["B", "C"]]  # seen in both orders
    assert ["D"] in wf.loops() and ["B", "C"] in wf.loops()
    assert wf.check(["A", "B", "C", "E"]) is None
    div = wf.check(["A", "E"])
    assert div["position"] == 1 and div["previous"] == "A" and div["event_id"] == "E"
    assert [x["event_id"] for x in div["expected"]] == ["B", "C", "D"]
    early = wf.check(["A", "B"])
    assert early["position"] == 2 and early["event_id"] == END
    doc = json.loads(json.dumps(wf.to_dict()))
    assert {"source": "A", "target": "B", "count": 2.0, "probability": 0.5} in doc["edges"]
    assert {"id": "A", "template": "open <*>"} in doc["nodes"]
    assert Workflow.from_dict(doc).edges == wf.edges
    assert wf.check_windows(windows(["A", "E"], ["A", "B", "C", "E"], ["A", "E"]))[1] is None


def test_task_separation_of_interleaved_tasks():
    seqs = windows(["A", "x", "B", "y", "C"], ["x", "A", "y", "B", "C"], ["A", "B", "x", "C", "y"])
    assert separate_tasks(seqs, distance=2, threshold=0.9) == [["A", "B", "C"], ["x", "y"]]
    wf = build_workflow(seqs, separate=True, distance=2, task_threshold=0.9)
    assert wf.tasks == [["A", "B", "C"], ["x", "y"]]
    assert wf.edges[("START:1", "x")]["count"] == 3.0 and ("x", "y") in wf.edges
    assert wf.check(["x", "A", "B", "y", "C"]) is None  # each task conforms on its own
    div = wf.check(["A", "C", "x", "y"])
    assert div["task"] == 0 and div["event_id"] == "C" and div["previous"] == "A"


def test_workflow_from_the_model():
    train = windows(*[["A", "B", "C"]] * 10, *[["A", "C"]] * 10)
    det = DeepLog(
        history_size=2, hidden_size=16, num_layers=1, epochs=60, lr=5e-2, valid_fraction=0.0
    ).fit(train)
    wf = det.workflow(train, min_probability=0.2)
    assert (START, "A") in wf.edges and ("A", "B") in wf.edges and ("A", "C") in wf.edges
    assert ("C", END) in wf.edges and ("B", "C") in wf.edges
    assert wf.divergence_points() == ["A"]
    assert wf.edges[("A", "B")]["count"] == 10.0
    assert 0.2 <= wf.edges[("A", "B")]["probability"] <= 0.8


# ----------------------------------------------------------------- CLI functions
# ----------------------------------------------------------------- the shared training loop
def test_fit_leaves_global_torch_state_alone():
    rng_before = torch.get_rng_state().clone()
    threads_before = torch.get_num_threads()
    DeepLog(**{**TINY, "epochs": 2, "num_threads": 1}).fit(make_windows(seed=0))
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads_before


def test_weighted_distinct_examples_equal_repeated_examples():
    from logsieve.detectors.neural.trainer import _evaluate

    torch.manual_seed(0)
    module = nn.Linear(3, 2)

    def step(m, batch):
        return nn.functional.cross_entropy(m(batch["x"]), batch["y"], reduction="none")

    x = torch.randn(2, 3)
    repeated = {"x": torch.cat([x[:1], x[:1], x[:1], x[1:]]), "y": torch.tensor([0, 0, 0, 1])}
    weighted = {"x": x, "y": torch.tensor([0, 1]), "weight": torch.tensor([3.0, 1.0])}
    a = _evaluate(module, step, repeated, batch_size=1, device=torch.device("cpu"))
    b = _evaluate(module, step, weighted, batch_size=1, device=torch.device("cpu"))
    assert a == pytest.approx(b, rel=1e-6)


def test_early_stopping_restores_the_best_epoch():
    from logsieve.detectors.neural.trainer import torch_session, train_module

    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    valid = {"x": x[:16], "y": 1 - y[:16]}  # labels flipped: validation loss rises as training fits

    def step(m, batch):
        return nn.functional.cross_entropy(m(batch["x"]), batch["y"], reduction="none")

    with torch_session(0, "cpu", 1) as (device, gen):
        module = nn.Linear(4, 2)
        reports = train_module(
            module, step, {"x": x, "y": y}, valid=valid, epochs=50, batch_size=16, lr=0.1,
            patience=2, device=device, generator=gen,
        )  # fmt: skip
    assert reports[-1].stopped and len(reports) < 50
    best = min(r.valid_loss for r in reports)
    assert reports[-1].best_epoch == next(r.epoch for r in reports if r.valid_loss == best)
    from logsieve.detectors.neural.trainer import _evaluate, _to_tensors

    assert _evaluate(module, step, _to_tensors(valid), 16, torch.device("cpu")) == pytest.approx(
        best, rel=1e-5
    )


def test_device_validation():
    from logsieve.detectors.neural.trainer import resolve_device

    assert resolve_device("auto").type in ("cpu", "cuda")
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(LogsieveError, match="CUDA is not available"):
            DeepLog(device="cuda").fit(make_windows(seed=0))
    with pytest.raises(LogsieveError, match="unknown device"):
        resolve_device("tpu9")
