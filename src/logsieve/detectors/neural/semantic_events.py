"""Semantic event vectors shared by the template-reading detectors (LogAnomaly, PLELog).

:class:`SemanticEventsMixin` gives a detector template vectors for its events: an
embedder (:data:`SEMANTIC_EMBEDDERS`, see :func:`make_embedder`) fitted on the training
events' templates, deterministic id-derived vectors for events without a usable
template, a small id-derived offset separating training events whose templates give
identical vectors, templates unseen in training embedded later
(:meth:`SemanticEventsMixin.add_templates`), and their persistence. The reasons are
given in the docstring of :mod:`logsieve.detectors.loganomaly`.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
import torch

from logsieve.detectors.base import _templates_dict, check_positive_ints, resolve_seed
from logsieve.errors import LogsieveError, NotFittedError
from logsieve.features.semantic import (
    LOG_ANTONYMS,
    LOG_SYNONYMS,
    EventVectors,
    FastTextEmbedder,
    Template2VecEmbedder,
    TextEmbedder,
    Word2VecEmbedder,
    embedder_from_dict,
)
from logsieve.features.sequence import N_SPECIAL, EventVocab
from logsieve.schema import UNSEEN_EVENT_ID, UNSEEN_TEMPLATE

logger = logging.getLogger(__name__)

__all__ = [
    "SEMANTIC_EMBEDDERS",
    "TIE_BREAK",
    "SemanticEventsMixin",
    "id_vectors",
    "make_embedder",
]

#: embedders accepted by the ``embedder`` parameter of the semantic detectors
SEMANTIC_EMBEDDERS = ("template2vec", "word2vec", "fasttext")
#: size of the id-derived offset separating training events with identical vectors
#: (relative to the mean vector norm)
TIE_BREAK = 1.0


def make_embedder(kind: str, dim: int, seed: int) -> TextEmbedder:
    """A new embedder for the semantic detectors (see :data:`SEMANTIC_EMBEDDERS`).

    ``"fasttext"`` is counter-fitted with the same log lexicon as template2vec.
    """
    if kind == "template2vec":
        return Template2VecEmbedder(dim=dim, seed=seed)
    if kind == "word2vec":
        return Word2VecEmbedder(dim=dim, seed=seed)
    if kind == "fasttext":
        return FastTextEmbedder(dim=dim, seed=seed, synonyms=LOG_SYNONYMS, antonyms=LOG_ANTONYMS)
    raise LogsieveError(f"embedder must be one of {', '.join(SEMANTIC_EMBEDDERS)}, not {kind!r}")


def id_vectors(event_ids: tuple[str, ...] | list[str], dim: int, seed: int) -> np.ndarray:
    """Deterministic pseudo-random unit vectors, one per event id, shape ``(n, dim)``."""
    out = np.zeros((len(event_ids), dim), dtype=np.float64)
    for i, e in enumerate(event_ids):  # one small draw per distinct event id (not per line)
        v = np.random.default_rng([zlib.crc32(str(e).encode("utf-8")), int(seed)]).standard_normal(
            dim
        )
        out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
    return out.astype(np.float32)


def _usable_templates(items: Mapping[str, str | None]) -> dict[str, str]:
    return {
        str(e): str(t)
        for e, t in items.items()
        if t and str(e) != UNSEEN_EVENT_ID and str(t) != UNSEEN_TEMPLATE
    }


class SemanticEventsMixin:
    """Semantic event vectors of a detector: fitting, unseen templates, persistence.

    For detectors with the parameters ``embedder``, ``embedding_dim`` and
    ``random_state`` whose fitted ``templates_`` are set before ``_fit``. Fitted state:

    ``vocab_``
        :class:`EventVocab` of the training windows (what the model can predict / count).
    ``embedder_``
        The fitted :class:`TextEmbedder` (None when no template had a usable word).
    ``event_vectors_``
        :class:`EventVectors` of every event with a vector: the training events first,
        then the events added from templates unseen in training.
    ``extra_event_ids_``
        Those added events, in order. Input codes: the training vocabulary's codes,
        then ``len(vocab_) + i`` for ``extra_event_ids_[i]`` (see :meth:`_input_vocab`).
    """

    def _semantic_seed(self) -> int:
        seed = getattr(self, "_seed_cache", None)
        if seed is None:
            seed = resolve_seed(self.random_state)  # type: ignore[attr-defined]
            self._seed_cache = seed
        return seed

    def _validate_semantic_params(self) -> None:
        if self.embedder not in SEMANTIC_EMBEDDERS:  # type: ignore[attr-defined]
            raise LogsieveError(
                f"embedder must be one of {', '.join(SEMANTIC_EMBEDDERS)}, not {self.embedder!r}"  # type: ignore[attr-defined]
            )
        check_positive_ints(self, "embedding_dim")

    def _fit_semantics(self, train: pl.DataFrame) -> None:
        """Fit the vocabulary, the embedder (on the training events' templates) and the vectors."""
        self.__dict__.pop("_seed_cache", None)  # a new fit draws its seed anew
        seed = self._semantic_seed()
        vocab = EventVocab.fit(train)
        if vocab.n_keys == 0:
            raise LogsieveError(f"{type(self).__name__}: the training windows hold no event ids")
        dim = int(self.embedding_dim)  # type: ignore[attr-defined]
        templates: dict[str, str] = self.templates_  # type: ignore[attr-defined]
        texts = _usable_templates({e: templates.get(e) for e in vocab.tokens})
        embedder: TextEmbedder | None = None
        matrix = np.zeros((vocab.n_keys, dim), dtype=np.float32)
        if texts:
            candidate = make_embedder(self.embedder, dim, seed)  # type: ignore[attr-defined]
            try:
                candidate.fit(list(texts.values()))
                embedder = candidate
            except LogsieveError as exc:
                logger.warning(
                    "%s: no template vectors (%s); using id vectors", type(self).__name__, exc
                )
        if embedder is not None:
            ids = list(texts)
            vec = embedder.embed([texts[e] for e in ids])
            rows = np.array([vocab.index(e) - N_SPECIAL for e in ids], dtype=np.int64)
            matrix[rows] = vec
        elif not texts:
            logger.warning(
                "%s: no templates given (fit(..., templates=...)); every event gets an id-derived "
                "vector, so the model has no semantic information",
                type(self).__name__,
            )
        matrix = self._separate_vectors(vocab.tokens, matrix, seed)
        self.vocab_ = vocab
        self.embedder_ = embedder
        self.event_vectors_ = EventVectors(vocab.tokens, matrix)
        self.extra_event_ids_: list[str] = []
        self._reset_semantic_caches()
        others = {e: t for e, t in templates.items() if e not in vocab}
        if others:
            self._add_templates(others)

    def _separate_vectors(
        self, tokens: tuple[str, ...], matrix: np.ndarray, seed: int
    ) -> np.ndarray:
        """Give vector-less events id vectors and separate identical vectors (see module docs)."""
        n, dim = matrix.shape
        norms = np.linalg.norm(matrix, axis=1)
        scale = float(norms[norms > 0].mean()) if (norms > 0).any() else 1.0
        rand = id_vectors(tokens, dim, seed) * scale
        zero = norms == 0
        _, inverse, counts = np.unique(matrix, axis=0, return_inverse=True, return_counts=True)
        dup = (counts[inverse.reshape(-1)] > 1) & ~zero
        out = matrix.astype(np.float32).copy()
        out[zero] = rand[zero]
        out[dup] += TIE_BREAK * rand[dup]
        if zero.any() or dup.any():
            logger.info(
                "%s: %d of %d events without a template vector (id vectors), %d with identical "
                "vectors separated",
                type(self).__name__,
                int(zero.sum()),
                n,
                int(dup.sum()),
            )
        return out

    def _reset_semantic_caches(self) -> None:
        self._vocab_cache: tuple[int, EventVocab] | None = None
        self._table_cache: dict[tuple[int, str], torch.Tensor] = {}

    def _add_templates(self, templates: Mapping[str, str] | pl.DataFrame) -> int:
        items = _usable_templates(_templates_dict(templates))
        known = self.templates_  # type: ignore[attr-defined]
        for e, t in items.items():
            known.setdefault(e, t)
        new = [e for e in items if e not in self.event_vectors_ and e not in self.vocab_]
        if not new or self.embedder_ is None:
            return 0
        vec = self.embedder_.embed([items[e] for e in new])
        keep = np.linalg.norm(vec, axis=1) > 0
        ids = tuple(e for e, k in zip(new, keep, strict=True) if k)
        if ids:
            self.event_vectors_ = self.event_vectors_.merge(EventVectors(ids, vec[keep]))
            self.extra_event_ids_ = [*self.extra_event_ids_, *ids]
            self._reset_semantic_caches()
        logger.info(
            "%s: %d new templates embedded (%d without a known word)",
            type(self).__name__,
            len(ids),
            len(new) - len(ids),
        )
        return len(ids)

    def add_templates(self, templates: Mapping[str, str] | pl.DataFrame) -> int:
        """Embed templates of events not seen in training; returns how many got a vector.

        Call it with the parser's templates before scoring logs that contain new
        templates: those events then enter the model with their semantic vector
        instead of the unknown (zero) vector. Templates are also kept for
        explanations. Events of the training vocabulary are never changed.
        """
        if not hasattr(self, "event_vectors_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")
        return self._add_templates(templates)

    def _input_vocab(self) -> EventVocab:
        """Training tokens then the added events: the codes of the model's semantic input."""
        cache = getattr(self, "_vocab_cache", None)
        if cache is None or cache[0] != len(self.extra_event_ids_):
            cache = (
                len(self.extra_event_ids_),
                EventVocab((*self.vocab_.tokens, *self.extra_event_ids_)),
            )
            self._vocab_cache = cache
        return cache[1]

    def _semantic_table(self) -> np.ndarray:
        """``(len(input vocab), dim)`` vectors: PAD and UNK rows zero."""
        return self.event_vectors_.table(self._input_vocab(), unknown="zero")

    def _table_tensor(self, device: torch.device) -> torch.Tensor:
        caches = getattr(self, "_table_cache", None)
        if caches is None:
            self._table_cache = caches = {}
        key = (len(self.extra_event_ids_), str(device))
        t = caches.get(key)
        if t is None:
            t = torch.from_numpy(self._semantic_table()).to(device)
            caches[key] = t
        return t

    @property
    def semantic_dim_(self) -> int:
        return int(self.event_vectors_.dim)

    # ---- persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()  # type: ignore[misc]
        state["vocab_"] = self.vocab_.to_list()
        state["extra_event_ids_"] = list(self.extra_event_ids_)
        state["event_vector_ids_"] = list(self.event_vectors_.event_ids)
        arrays["event_vectors"] = self.event_vectors_.vectors
        if self.embedder_ is not None:
            state["embedder_"] = self.embedder_.to_dict()
            for k, v in self.embedder_.to_arrays().items():
                arrays[f"embedder.{k}"] = v
        else:
            state["embedder_"] = None
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.vocab_ = EventVocab.from_list(list(state["vocab_"]))
        self.extra_event_ids_ = [str(e) for e in state.get("extra_event_ids_") or []]
        self.event_vectors_ = EventVectors(
            tuple(state["event_vector_ids_"]), np.asarray(arrays["event_vectors"])
        )
        doc = state.get("embedder_")
        prefix = "embedder."
        emb_arrays = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        self.embedder_ = embedder_from_dict(doc, emb_arrays) if doc else None
        self._reset_semantic_caches()
        super()._set_state(state, arrays)  # type: ignore[misc]
