"""Event id -> semantic vector tables of the supervised sequence models (LogRobust, CNN).

:class:`EventSemantics` embeds every template with a text embedder fitted on the
training events' templates, so events unseen in training still get a meaningful vector
(:meth:`~EventSemantics.add_templates`), and keeps the table with the model.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
import torch

from logsieve.detectors.base import (
    _templates_dict,
)
from logsieve.errors import LogsieveError
from logsieve.features.semantic import (
    EventVectors,
    TextEmbedder,
    create_embedder,
    embed_events,
    embedder_from_dict,
)
from logsieve.features.sequence import (
    EventVocab,
    pad_sequences,
)
from logsieve.schema import UNSEEN_EVENT_ID

logger = logging.getLogger(__name__)

__all__ = ["NO_EMBEDDER", "EventSemantics", "encode_codes", "id_vectors"]

#: ``embedder`` value for pseudo-random per-event vectors (no semantics)
NO_EMBEDDER = "none"


def id_vectors(event_ids: Sequence[str], dim: int) -> np.ndarray:
    """Fixed pseudo-random unit-scale vectors, one per event id (seeded by the id's CRC32).

    The vector of an id does not depend on the other ids or their order.
    """
    out = np.zeros((len(event_ids), dim), dtype=np.float32)
    for i, e in enumerate(event_ids):
        rng = np.random.default_rng(zlib.crc32(str(e).encode("utf-8")))
        out[i] = rng.standard_normal(dim) / np.sqrt(dim)
    return out


class EventSemantics:
    """Event id -> vector table of a semantic detector, with the embedder for new templates.

    Used by :class:`LogRobust` and by :class:`~logsieve.detectors.cnn.CNN` with
    ``embedding="semantic"``. Codes follow :class:`~logsieve.features.sequence.EventVocab`
    over the table's event ids: 0 padding (zero vector), 1 no vector (zero vector),
    ``i + 2`` the ``i``-th event of :attr:`vectors`. New events are appended, so codes
    of known events never change. The network sees ``(vector - center) / scale``, with
    the mean and the root-mean-square spread of the training events' vectors.
    """

    def __init__(
        self,
        vectors: EventVectors,
        embedder: TextEmbedder | None,
        mode: str,
        center: np.ndarray | None = None,
        scale: float = 1.0,
    ) -> None:
        self.vectors = vectors
        self.embedder = embedder
        self.mode = mode  # "text" (embedder over templates) or "id" (pseudo-random per id)
        self.center = (
            np.zeros(vectors.dim, dtype=np.float32)
            if center is None
            else np.asarray(center, np.float32)
        )
        self.scale = float(scale)
        self._vocab: EventVocab | None = None
        self._tables: dict[str, torch.Tensor] = {}

    @property
    def dim(self) -> int:
        return self.vectors.dim

    @classmethod
    def fit(
        cls,
        templates: Mapping[str, str],
        train_event_ids: Sequence[str],
        *,
        embedder: str,
        dim: int,
        seed: int,
        owner: str,
    ) -> EventSemantics:
        """Fit the embedder on the templates of the training events and embed every template.

        ``embedder="none"``, or no template for any training event, gives per-id vectors.
        """
        train_ids = [e for e in train_event_ids if e != UNSEEN_EVENT_ID]
        with_text = [e for e in train_ids if e in templates]
        if embedder == NO_EMBEDDER or not with_text:
            if embedder != NO_EMBEDDER:
                logger.warning(
                    "%s: no templates for the training events (pass fit(..., templates=...)); "
                    "using per-event vectors without semantics (unseen events get no vector)",
                    owner,
                )
            ids = tuple(train_ids)
            return cls(EventVectors(ids, id_vectors(ids, dim)), None, "id")
        params: dict[str, Any] = (
            {} if embedder == "sentence" else {"dim": int(dim), "seed": int(seed)}
        )
        emb = create_embedder(embedder, **params)
        emb.fit([templates[e] for e in with_text])
        vectors = embed_events(emb, dict(templates))
        missing = len(train_ids) - len(with_text)
        if missing:
            logger.info("%s: %d training event ids have no template (zero vectors)", owner, missing)
        logger.info(
            "%s: %s vectors for %d events (dim %d)", owner, embedder, vectors.n_events, vectors.dim
        )
        # standardise with the training events' vectors: word-vector averages share a large
        # common direction (cosines of 0.4-0.9 between unrelated HDFS templates), which slows
        # the LSTM down; centring and one global scale keep every distance ratio
        train_vec = vectors.lookup(with_text)
        center = train_vec.mean(axis=0)
        spread = float(np.sqrt(((train_vec - center) ** 2).sum(axis=1).mean() / vectors.dim))
        scale = spread if spread > 1e-8 else 1.0
        return cls(vectors, emb, "text", center, scale)

    def add_templates(self, templates: Mapping[str, str] | pl.DataFrame) -> int:
        """Embed the templates of events without a vector yet; returns how many were added."""
        items = _templates_dict(templates)
        new = {e: t for e, t in items.items() if e not in self.vectors and e != UNSEEN_EVENT_ID}
        if not new:
            return 0
        if self.embedder is None:
            raise LogsieveError(
                "this model was fitted without templates (per-event vectors): it cannot embed new "
                "templates"
            )
        self.vectors = self.vectors.merge(embed_events(self.embedder, new))
        self._vocab = None
        self._tables.clear()
        return len(new)

    @property
    def vocab(self) -> EventVocab:
        if self._vocab is None:
            self._vocab = EventVocab(self.vectors.event_ids)
        return self._vocab

    def table(self, device: torch.device) -> torch.Tensor:
        """``(n_events + 2, dim)`` float32 tensor: PAD and "no vector" rows are zero."""
        key = str(device)
        t = self._tables.get(key)
        if t is None:
            full = np.zeros((self.vectors.n_events + 2, self.dim), dtype=np.float32)
            full[2:] = (self.vectors.vectors - self.center) / self.scale
            t = torch.from_numpy(full).to(device)
            self._tables[key] = t
        return t

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state: dict[str, Any] = {
            "mode": self.mode,
            "event_vectors": self.vectors.to_dict(),
            "scale": self.scale,
        }
        arrays = {"semantics.vectors": self.vectors.vectors, "semantics.center": self.center}
        if self.embedder is not None:
            state["embedder"] = self.embedder.to_dict()
            arrays |= {f"semantics.embedder.{k}": v for k, v in self.embedder.to_arrays().items()}
        return state, arrays

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> EventSemantics:
        vectors = EventVectors.from_dict(
            state["event_vectors"], {"vectors": arrays["semantics.vectors"]}
        )
        embedder = None
        if state.get("embedder") is not None:
            prefix = "semantics.embedder."
            emb_arrays = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            embedder = embedder_from_dict(state["embedder"], emb_arrays)
        center = arrays.get("semantics.center")
        return cls(
            vectors,
            embedder,
            str(state.get("mode", "text")),
            center,
            float(state.get("scale", 1.0)),
        )


def encode_codes(
    vocab: EventVocab, windows: pl.DataFrame, max_len: int | None, width: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded codes ``(n, width)`` and kept lengths (>= 1) of ``windows``.

    Windows longer than ``max_len`` keep their last ``max_len`` events. ``width`` fixes
    the padded width (default: the longest kept window).
    """
    enc = vocab.encode(windows)
    longest = int(enc.lengths.max()) if len(enc) else 0
    kept = longest if max_len is None else min(longest, int(max_len))
    w = max(1, kept if width is None else int(width))
    codes = pad_sequences(enc, max_len=w, side="right").astype(np.int64)
    lengths = np.clip(np.minimum(enc.lengths, w), 1, None).astype(np.int64)
    return codes, lengths
