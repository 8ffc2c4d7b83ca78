"""Embedders by name: create a new one, or rebuild a saved one from its ``kind``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from logsieve.errors import LogsieveError
from logsieve.features.semantic.base import TextEmbedder
from logsieve.features.semantic.fasttext import FastTextEmbedder
from logsieve.features.semantic.sentence import SentenceEmbedder
from logsieve.features.semantic.word2vec import Template2VecEmbedder, Word2VecEmbedder

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
        raise LogsieveError(
            f"unknown embedder {name!r}; choose one of {', '.join(list_embedders())}"
        )
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
