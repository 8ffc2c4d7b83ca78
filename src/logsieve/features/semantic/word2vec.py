"""Word2vec embedders trained on the training texts, with TF-IDF-weighted text vectors.

:class:`Word2VecEmbedder` holds the training, IDF weighting, embedding and persistence
that :class:`~.fasttext.FastTextEmbedder` extends; :class:`Template2VecEmbedder` adds the
default log-domain lexicon (LogAnomaly's template2vec, approximated offline).
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.features.semantic.base import TextEmbedder, _check_kind, _need, _pairs
from logsieve.features.semantic.lexicon import LOG_ANTONYMS, LOG_SYNONYMS, counter_fit
from logsieve.features.text import STOPWORDS, tokenize_series

logger = logging.getLogger(__name__)


def _stable_hash(text: str) -> int:
    """Process-independent string hash for gensim (Python's ``hash`` is salted)."""
    return zlib.crc32(text.encode("utf-8"))


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
        return tokenize_series(
            texts, min_len=self.min_len, stopwords=STOPWORDS if self.stopwords else None
        )

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
            raise LogsieveError(
                "no word tokens in the training texts (nothing to train word vectors on)"
            )
        try:
            words, vectors = self._train(sentences, n_tokens)
        except RuntimeError as exc:  # gensim: empty vocabulary after min_count
            raise LogsieveError(f"cannot train word vectors: {exc} (lower min_count?)") from exc
        if not words:
            raise LogsieveError(
                f"no word occurs min_count={self.min_count} times in the training texts"
            )
        syn, ant = _pairs(self.synonyms, "synonyms"), _pairs(self.antonyms, "antonyms")
        if syn or ant:
            vectors = counter_fit(words, vectors, synonyms=syn, antonyms=ant)
        # document frequency of every model word over the distinct training token lists
        n_docs = len(tokens)
        flat = (
            pl.DataFrame({"doc": np.arange(n_docs), "word": tokens})
            .explode("word")
            .drop_nulls()
            .unique()
        )
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
            "trained %s: %d texts, %d tokens, %d words, dim %d",
            self.kind,
            n_docs,
            n_tokens,
            len(words),
            self.dim_,
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
            weights = np.concatenate(
                [weights, np.where(oov_ok, self.unseen_idf_, 0.0).astype(np.float32)]
            )
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
    def from_dict(
        cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
    ) -> Self:
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


class Template2VecEmbedder(Word2VecEmbedder):
    """Offline approximation of LogAnomaly's template2vec (see :mod:`logsieve.features.semantic`).

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
