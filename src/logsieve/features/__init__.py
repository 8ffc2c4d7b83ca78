"""Features built from windows tables: event-id sequences, counts, semantic vectors.

Names are resolved lazily, so importing this package loads nothing heavy:
:mod:`.sequence` needs only NumPy and Polars; :mod:`.semantic` loads its embedding
libraries only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    # sequence.py: vocabulary, encoding, next-event pairs (shared by sequence models)
    "PAD": "sequence",
    "UNK": "sequence",
    "N_SPECIAL": "sequence",
    "EventVocab": "sequence",
    "EncodedWindows": "sequence",
    "Pairs": "sequence",
    "append_marker": "sequence",
    "check_windows": "sequence",
    "count_pairs": "sequence",
    "distinct_windows": "sequence",
    "event_id_series": "sequence",
    "next_event_pairs": "sequence",
    "pad_sequences": "sequence",
    "unique_rows": "sequence",
    # counts.py
    "EventCounter": "counts",
    "count_matrix": "counts",
    # semantic.py / text.py
    "EventVectors": "semantic",
    "create_embedder": "semantic",
    "embed_events": "semantic",
    "list_embedders": "semantic",
    "window_mean_vectors": "semantic",
    "window_semantic_matrix": "semantic",
    "tokenize": "text",
    "tokenize_series": "text",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'logsieve.features' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
