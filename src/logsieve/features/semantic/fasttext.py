"""FastText (subword) embedder: unseen words get vectors from their character n-grams."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from logsieve.errors import LogsieveError
from logsieve.features.semantic.base import _need
from logsieve.features.semantic.word2vec import Word2VecEmbedder


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
        hashes = [
            np.asarray(ft_ngram_hashes(w, min_n, max_n, bucket), dtype=np.int64) for w in words
        ]
        owner = np.repeat(np.arange(len(words)), [len(h) for h in hashes])
        flat = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.int64)
        pos = np.searchsorted(self.ngram_ids_, flat)
        pos = np.minimum(pos, len(self.ngram_ids_) - 1)
        found = self.ngram_ids_[pos] == flat
        mat = sp.csr_matrix(
            (np.ones(int(found.sum())), (owner[found], pos[found])),
            shape=(len(words), len(self.ngram_ids_)),
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
            raise LogsieveError(
                f"saved fasttext embedder: bad n-gram arrays {ids.shape}/{vec.shape}"
            )
        self.ngram_ids_ = ids
        self.ngram_vectors_ = np.ascontiguousarray(vec, dtype=np.float32)
