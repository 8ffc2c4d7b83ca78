"""Event-count vectors of windows (the "quantitative" features of loglizer and LogAnomaly).

A window becomes one row of a ``window x event`` matrix holding how often each event id
occurs in it. The columns are the event ids of the vocabulary fitted on the training
windows, after one out-of-vocabulary column:

- column ``0`` (:data:`OOV_COLUMN`, name ``"<oov>"``) counts every event id the
  vocabulary has not seen;
- column ``j >= 1`` counts ``vocab_.tokens[j - 1]``, i.e. the event with
  :class:`~logsieve.features.sequence.EventVocab` index ``j + 1`` (so ``column = code - 1``).

Optional weighting, all fitted on the training windows only:

- ``tfidf=True``: every column is multiplied by ``idf = log(N / df)`` where ``N`` is the
  number of training windows and ``df`` the number of them that contain the event
  (loglizer's ``FeatureExtractor``). An event that occurs in every training window gets
  weight 0. A column with ``df = 0`` (the OOV column, or an id of a given vocabulary that
  never occurs in training) is treated as ``df = 1``: ``idf = log(N)``, the weight of the
  rarest seen event, instead of loglizer's ``log(N / 1e-8)`` blow-up.
- ``normalize="zero_mean"``: the training column means are subtracted (dense output only).
- ``normalize="l2"``: every row is scaled to unit Euclidean length (empty rows stay 0).

Counting is vectorized: the windows are encoded once by the vocabulary (a Polars join
over the exploded ``event_ids``), and the matrix is built with ``np.bincount`` (dense)
or a COO -> CSR conversion (sparse); no Python loop runs per window.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError, NotFittedError
from logsieve.features.sequence import EventVocab, check_windows

__all__ = ["OOV_COLUMN", "OOV_NAME", "EventCounter", "count_matrix"]

logger = logging.getLogger(__name__)

OOV_COLUMN = 0
OOV_NAME = "<oov>"
_NORMALIZE = (None, "zero_mean", "l2")
KIND = "event_counter"


def count_matrix(windows: pl.DataFrame, vocab: EventVocab, *, sparse: bool = False) -> Any:
    """Raw ``(n_windows, vocab.n_keys + 1)`` float32 counts, OOV in column 0.

    Returns a dense ``numpy`` array, or a ``scipy.sparse.csr_matrix`` when ``sparse``.
    """
    windows = check_windows(windows)
    enc = vocab.encode(windows)
    n, width = len(enc), vocab.n_keys + 1
    cols = enc.codes.astype(np.int64) - 1  # UNK (1) -> 0, token codes 2.. -> 1..
    rows = enc.owner
    if sparse:
        from scipy import sparse as sp

        data = np.ones(len(cols), dtype=np.float32)
        mat = sp.coo_matrix((data, (rows, cols)), shape=(n, width), dtype=np.float32).tocsr()
        mat.sum_duplicates()
        return mat
    flat = np.bincount(rows * width + cols, minlength=n * width)
    return flat.reshape(n, width).astype(np.float32)


class EventCounter:
    """Window x event count matrix with optional TF-IDF and normalisation.

    Parameters
    ----------
    vocab : EventVocab, sequence of event ids, or None
        Fixed columns; None (default) fits an :class:`EventVocab` on the training windows.
    tfidf : bool
        Multiply the counts by ``idf = log(N / df)`` of the training windows.
    normalize : None, "zero_mean" or "l2"
        Subtract the training column means, or scale rows to unit length.
    sparse : bool
        Return ``scipy.sparse.csr_matrix`` instead of a dense array (not with "zero_mean").

    Attributes
    ----------
    vocab_ : EventVocab
    idf_ : ndarray of float32, shape (n_features_,), or None
    mean_ : ndarray of float32, shape (n_features_,), or None
    n_features_ : int
    n_train_windows_ : int
    """

    def __init__(
        self,
        vocab: EventVocab | Sequence[str] | None = None,
        tfidf: bool = False,
        normalize: str | None = None,
        sparse: bool = False,
    ) -> None:
        self.vocab = vocab
        self.tfidf = tfidf
        self.normalize = normalize
        self.sparse = sparse

    # ----------------------------------------------------------------- fitting
    def _validate(self) -> None:
        if self.normalize not in _NORMALIZE:
            raise LogsieveError(
                f"normalize must be one of None, 'zero_mean', 'l2'; not {self.normalize!r}"
            )
        if self.sparse and self.normalize == "zero_mean":
            raise LogsieveError("normalize='zero_mean' makes the matrix dense; use sparse=False")

    def fit(self, windows: pl.DataFrame, y: Any = None) -> Self:
        """Fit the vocabulary (unless given), idf and column means on training windows."""
        self._validate()
        windows = check_windows(windows, "training windows")
        if windows.height == 0:
            raise LogsieveError("cannot fit event counts on zero training windows")
        if self.vocab is None:
            vocab = EventVocab.fit(windows)
        elif isinstance(self.vocab, EventVocab):
            vocab = self.vocab
        else:
            vocab = EventVocab(self.vocab)
        self.vocab_ = vocab
        self.n_features_ = vocab.n_keys + 1
        self.n_train_windows_ = windows.height
        self.idf_ = None
        self.mean_ = None
        raw = count_matrix(windows, vocab, sparse=True)
        if self.tfidf:
            # CSR: one entry per (window, event)
            df = np.bincount(raw.indices, minlength=self.n_features_)
            self.idf_ = np.log(windows.height / np.maximum(df, 1)).astype(np.float32)
        if self.normalize == "zero_mean":
            weighted = raw.multiply(self.idf_[None, :]).tocsr() if self.idf_ is not None else raw
            self.mean_ = np.asarray(weighted.mean(axis=0), dtype=np.float32).reshape(-1)
        logger.debug(
            "fitted event counts: %d windows, %d columns", windows.height, self.n_features_
        )
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "vocab_"):
            raise NotFittedError("EventCounter is not fitted; call fit(training_windows) first")

    @property
    def feature_names_(self) -> list[str]:
        """Column names: ``"<oov>"`` then the vocabulary's event ids."""
        self._check_fitted()
        return [OOV_NAME, *self.vocab_.tokens]

    # -------------------------------------------------------------- transform
    def transform(self, windows: pl.DataFrame) -> Any:
        """The ``(n_windows, n_features_)`` float32 matrix of ``windows`` (dense or CSR)."""
        self._check_fitted()
        self._validate()
        mat = count_matrix(windows, self.vocab_, sparse=self.sparse)
        if self.sparse:
            if self.idf_ is not None:
                mat = mat.multiply(self.idf_[None, :]).tocsr().astype(np.float32)
            if self.normalize == "l2":
                norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).reshape(-1))
                scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
                mat = mat.multiply(scale[:, None].astype(np.float32)).tocsr().astype(np.float32)
            return mat
        if self.idf_ is not None:
            mat *= self.idf_[None, :]
        if self.normalize == "zero_mean":
            if self.mean_ is None:
                raise LogsieveError("EventCounter has no column means: fit it with zero_mean")
            mat -= self.mean_[None, :]
        elif self.normalize == "l2":
            norms = np.linalg.norm(mat, axis=1, keepdims=True)
            np.divide(mat, norms, out=mat, where=norms > 0)
        return mat

    def fit_transform(self, windows: pl.DataFrame, y: Any = None) -> Any:
        """``fit(windows).transform(windows)``."""
        return self.fit(windows, y).transform(windows)

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-able fitted state (parameters and vocabulary); arrays from :meth:`to_arrays`."""
        self._check_fitted()
        return {
            "kind": KIND,
            "params": {
                "tfidf": bool(self.tfidf),
                "normalize": self.normalize,
                "sparse": bool(self.sparse),
            },
            "vocab": self.vocab_.to_list(),
            "n_train_windows": int(self.n_train_windows_),
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Fitted arrays by name (``idf`` and/or ``mean``; may be empty)."""
        self._check_fitted()
        out: dict[str, np.ndarray] = {}
        if self.idf_ is not None:
            out["idf"] = self.idf_
        if self.mean_ is not None:
            out["mean"] = self.mean_
        return out

    @classmethod
    def from_dict(
        cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
    ) -> EventCounter:
        """Rebuild a fitted counter from :meth:`to_dict` and :meth:`to_arrays`."""
        arrays = arrays or {}
        if doc.get("kind") != KIND:
            raise LogsieveError(f"not a saved event counter (kind {doc.get('kind')!r})")
        params = dict(doc["params"])
        vocab = EventVocab.from_list(list(doc["vocab"]))
        self = cls(vocab=vocab, **params)
        self._validate()
        self.vocab_ = vocab
        self.n_features_ = vocab.n_keys + 1
        self.n_train_windows_ = int(doc.get("n_train_windows", 0))
        self.idf_ = None
        self.mean_ = None
        if self.tfidf:
            self.idf_ = _array(arrays, "idf", self.n_features_)
        if self.normalize == "zero_mean":
            self.mean_ = _array(arrays, "mean", self.n_features_)
        return self

    def __repr__(self) -> str:
        fitted = f", {self.n_features_} columns" if hasattr(self, "vocab_") else ""
        return (
            f"EventCounter(tfidf={self.tfidf}, normalize={self.normalize!r}, "
            f"sparse={self.sparse}{fitted})"
        )


def _array(arrays: Mapping[str, np.ndarray], key: str, size: int) -> np.ndarray:
    if key not in arrays:
        raise LogsieveError(f"saved event counter lacks the {key!r} array")
    arr = np.asarray(arrays[key], dtype=np.float32).reshape(-1)
    if arr.shape != (size,):
        raise LogsieveError(
            f"saved event counter: {key!r} has shape {arr.shape}, expected ({size},)"
        )
    return arr
