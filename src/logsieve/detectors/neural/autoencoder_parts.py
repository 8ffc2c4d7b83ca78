"""Shared parts of the autoencoder detectors (``ae``, ``iforest_ae``, ``lstm_ae``, ``farzad``,
``bursic``): count-vector features, the dense autoencoder network, sequence chunking and
weighted-sample helpers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from logsieve.detectors.neural.trainer import Batch
from logsieve.errors import LogsieveError
from logsieve.features.counts import OOV_NAME, count_matrix
from logsieve.features.http import HTTP, HttpScaler
from logsieve.features.sequence import (
    PAD,
    EncodedWindows,
    EventVocab,
    distinct_windows,
)
from logsieve.features.text import tokenize_series

logger = logging.getLogger(__name__)

__all__ = [
    "FEATURE_KINDS",
    "SCALES",
    "CountFeatures",
    "DenseAE",
    "chunk_sequences",
    "dense_loss",
    "distinct_for_features",
    "score_distinct_for_features",
    "expand_rows",
    "weighted_quantile",
]

FEATURE_KINDS = ("events", "words", "http", "events+http", "words+http")
SCALES = ("log1p", "minmax")
_KEY = "__feature_key"


def distinct_for_features(
    windows: pl.DataFrame, kind: str
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """:func:`~logsieve.features.sequence.distinct_windows` by what ``kind`` reads: the
    event ids, plus the ``http`` vector for the HTTP kinds (two windows with the same
    requests but other statuses or timing are not the same input)."""
    if not kind.endswith("http"):
        return distinct_windows(windows)
    keyed = windows.with_columns(pl.struct(pl.col("event_ids"), pl.col(HTTP)).alias(_KEY))
    distinct, inverse, counts = distinct_windows(keyed, _KEY)
    return distinct.drop(_KEY), inverse, counts


def score_distinct_for_features(
    score: Callable[[pl.DataFrame], np.ndarray], windows: pl.DataFrame, kind: str
) -> np.ndarray:
    """``score`` of every window, computed once per distinct input of ``kind`` (see
    :func:`distinct_for_features`): what the base class does by ``event_ids`` alone."""
    if windows.height == 0:
        return np.zeros(0, dtype=np.float64)
    distinct, inverse, _ = distinct_for_features(windows, kind)
    return np.asarray(score(distinct), dtype=np.float64)[inverse]


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight share reaches ``q`` (like ``method="higher"``)."""
    order = np.argsort(values, kind="mergesort")
    cum = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    if cum[-1] <= 0:
        return float(values[order[-1]])
    k = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(values[order[min(k, len(order) - 1)]])


def expand_rows(
    x: np.ndarray, weights: np.ndarray | None, cap: int, rng: np.random.Generator
) -> np.ndarray:
    """Rows of ``x`` repeated by their integer ``weights``.

    When the weights are not integers or add up to more than ``cap``, a weighted sample
    of ``cap`` rows (with replacement) instead.
    """
    if weights is None:
        return x
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if np.allclose(w, np.round(w)) and total <= cap:
        return np.repeat(x, np.round(w).astype(np.int64), axis=0)
    idx = rng.choice(len(x), size=int(cap), replace=True, p=w / total)
    return x[np.sort(idx)]


class CountFeatures:
    """Window -> count vector scaled to [0, 1] on the training windows.

    Parameters
    ----------
    kind : {"events", "words", "http", "events+http", "words+http"}
        ``"events"``: how often each event id of the training vocabulary occurs (column
        0 counts unseen ids, see :mod:`logsieve.features.counts`). ``"words"``: how often
        each word of the events' templates occurs (a window's bag of words: the event
        counts times an event x word matrix built from
        :func:`logsieve.features.text.tokenize_series`). An event without a template
        text (or whose template has no word) counts as one pseudo-word ``<E12>``; words
        of unseen events fall in column 0. ``"http"``: the window's HTTP features (the
        ``http`` column of :func:`logsieve.features.http.attach_http`: status mix,
        methods, sizes, URL shape, pace), standardised on the training windows (z-scores,
        not min-max); ``"events+http"`` / ``"words+http"``: both, side by side.
    scale : {"log1p", "minmax"}
        ``"log1p"``: ``log(1 + count)`` before min-max scaling (tames long windows);
        ``"minmax"``: plain counts, min-max scaled.

    Min-max uses the training minimum and range of every column (a constant column
    gets range 1). Values of new windows can fall outside [0, 1], which is what makes
    them stand out.
    """

    def __init__(self, kind: str = "events", scale: str = "log1p") -> None:
        if kind not in FEATURE_KINDS:
            raise LogsieveError(f"features must be one of {', '.join(FEATURE_KINDS)}, not {kind!r}")
        if scale not in SCALES:
            raise LogsieveError(f"scale must be one of {', '.join(SCALES)}, not {scale!r}")
        self.kind = kind
        self.scale = scale
        self.counts = kind.split("+")[0] if kind != "http" else None
        self.http_: HttpScaler | None = None

    @property
    def uses_http(self) -> bool:
        return self.kind.endswith("http")

    def fit(
        self, windows: pl.DataFrame, templates: Mapping[str, str] | None = None
    ) -> CountFeatures:
        """Fit the vocabulary (and word matrix) and the min-max scaling on ``windows``."""
        self.http_ = HttpScaler().fit(windows) if self.uses_http else None
        self.vocab_ = EventVocab.fit(windows)
        self.words_: tuple[str, ...] = ()
        self.word_matrix_: np.ndarray | None = None
        if self.counts is None:
            self.min_ = np.zeros(0, dtype=np.float32)
            self.range_ = np.ones(0, dtype=np.float32)
            return self
        if self.counts == "words":
            self._fit_words(dict(templates or {}))
        x = self._project(count_matrix(windows, self.vocab_))
        lo = x.min(axis=0) if len(x) else np.zeros(x.shape[1], dtype=np.float32)
        hi = x.max(axis=0) if len(x) else np.ones(x.shape[1], dtype=np.float32)
        span = hi - lo
        span[span <= 0] = 1.0
        self.min_ = lo.astype(np.float32)
        self.range_ = span.astype(np.float32)
        return self

    def _fit_words(self, templates: dict[str, str]) -> None:
        events = list(self.vocab_.tokens)
        texts = pl.Series("t", [templates.get(e, "") for e in events], dtype=pl.String)
        tokens = tokenize_series(texts).to_list()
        tokens = [t if t else [f"<{e}>"] for e, t in zip(events, tokens, strict=True)]
        words = sorted({w for ws in tokens for w in ws})
        index = {w: i + 1 for i, w in enumerate(words)}  # column 0: words of unseen events
        mat = np.zeros((len(events) + 1, len(words) + 1), dtype=np.float32)
        mat[0, 0] = 1.0
        rows = np.repeat(np.arange(1, len(events) + 1), [len(t) for t in tokens])
        cols = np.array([index[w] for ws in tokens for w in ws], dtype=np.int64)
        np.add.at(mat, (rows, cols), 1.0)
        self.words_ = tuple(words)
        self.word_matrix_ = mat

    def _project(self, counts: np.ndarray) -> np.ndarray:
        x = counts if self.word_matrix_ is None else counts @ self.word_matrix_
        if self.scale == "log1p":
            x = np.log1p(x)
        return x.astype(np.float32, copy=False)

    def transform(self, windows: pl.DataFrame) -> np.ndarray:
        """Scaled features, float32 of shape ``(n_windows, n_features_)``."""
        parts = []
        if self.counts is not None:
            x = self._project(count_matrix(windows, self.vocab_))
            parts.append((x - self.min_) / self.range_)
        if self.http_ is not None:
            parts.append(self.http_.transform(windows))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    @property
    def n_features_(self) -> int:
        return len(self.feature_names_)

    @property
    def feature_names_(self) -> list[str]:
        """``"<oov>"`` then the event ids (``events``) or the words (``words``), then the
        HTTP feature names (``http:share_4xx`` ...)."""
        names: list[str] = []
        if self.counts is not None:
            names = [OOV_NAME, *(self.words_ if self.counts == "words" else self.vocab_.tokens)]
        if self.http_ is not None:
            names += self.http_.feature_names_
        return names

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        doc = {
            "kind": self.kind,
            "scale": self.scale,
            "vocab": list(self.vocab_.tokens),
            "words": list(self.words_),
        }
        arrays = {"min": self.min_, "range": self.range_}
        if self.word_matrix_ is not None:
            arrays["word_matrix"] = self.word_matrix_
        if self.http_ is not None:
            arrays.update(self.http_.to_arrays())
        return doc, arrays

    @classmethod
    def from_state(cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> CountFeatures:
        self = cls(str(doc["kind"]), str(doc["scale"]))
        self.vocab_ = EventVocab.from_list(list(doc["vocab"]))
        self.words_ = tuple(doc.get("words") or ())
        self.word_matrix_ = (
            np.asarray(arrays["word_matrix"], dtype=np.float32) if "word_matrix" in arrays else None
        )
        self.min_ = np.asarray(arrays["min"], dtype=np.float32)
        self.range_ = np.asarray(arrays["range"], dtype=np.float32)
        self.http_ = HttpScaler.from_arrays(arrays) if self.uses_http else None
        if self.counts is None:
            expected = 0
        else:
            expected = (len(self.words_) if self.counts == "words" else self.vocab_.n_keys) + 1
        if self.min_.shape != (expected,) or self.range_.shape != (expected,):
            raise LogsieveError(
                f"saved count features: {self.min_.shape[0]} columns, expected {expected}"
            )
        return self


class DenseAE(nn.Module):
    """``n_in -> hidden -> latent (tanh) -> hidden -> n_in`` fully connected autoencoder."""

    def __init__(self, n_in: int, hidden_size: int, latent_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(n_in, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, latent_dim),
            nn.Tanh(),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, n_in),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def dense_loss(module: nn.Module, batch: Batch) -> torch.Tensor:
    """Per-example mean squared reconstruction error."""
    x = batch["x"]
    return ((module(x) - x) ** 2).mean(dim=1)


def chunk_sequences(
    encoded: EncodedWindows, max_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows cut into consecutive chunks of at most ``max_len`` codes (vectorized).

    Returns ``(codes, lengths, owner)``: a PAD-filled ``(m, max_len)`` int64 array of
    chunks, their lengths and the window of each chunk. Empty windows give no chunk.
    """
    lengths = encoded.lengths.astype(np.int64)
    n_chunks = -(-lengths // max_len)  # ceil
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), n_chunks)
    m = int(n_chunks.sum())
    out = np.full((m, max_len), PAD, dtype=np.int64)
    if m == 0:
        return out, np.zeros(0, dtype=np.int64), owner
    pos = np.arange(len(encoded.codes), dtype=np.int64) - encoded.offsets[encoded.owner]
    first_chunk = np.concatenate([[0], np.cumsum(n_chunks)[:-1]])
    chunk = first_chunk[encoded.owner] + pos // max_len
    out[chunk, pos % max_len] = encoded.codes
    chunk_len = np.bincount(chunk, minlength=m).astype(np.int64)
    return out, chunk_len, owner
