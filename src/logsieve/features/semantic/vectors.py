"""Event id -> vector tables: build them from templates, cache embeddings, import logdeep's.

:class:`EventVectors` is what a detector stores with its model; :func:`embed_events`
embeds each template once, :class:`EmbeddingCache` avoids embedding a text twice.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve.errors import InputError, LogsieveError
from logsieve.features.semantic.base import TextEmbedder, _as_series, _distinct
from logsieve.features.sequence import UNK, EventVocab
from logsieve.schema import EVENT_ID, TEMPLATE, UNSEEN_EVENT_ID, UNSEEN_TEMPLATE

logger = logging.getLogger(__name__)

_UNKNOWN = ("zero", "mean")


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
            raise LogsieveError(
                f"event vectors: {len(ids)} event ids but a matrix of shape {vec.shape}"
            )
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
        """Vectors of ``event_ids``, ``(len, dim)``; ids with no vector get the ``unknown`` row."""
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
            raise LogsieveError(
                f"saved event vectors: dim {vec.shape[1]} differs from the saved {doc['dim']}"
            )
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
        ids = [str(e) for e in templates]
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
