"""Window-level semantic inputs: padded vector sequences and mean vectors per window."""

from __future__ import annotations

import numpy as np
import polars as pl

from logsieve.features.semantic.vectors import EventVectors
from logsieve.features.sequence import (
    PAD,
    UNK,
    EncodedWindows,
    EventVocab,
    check_windows,
    pad_sequences,
)


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
