"""Event-id sequences as integer arrays: vocabulary, encoding, next-event pairs.

Everything here is vectorized over a whole windows table: list columns are exploded
once with Polars and handled as one flat ``int32`` array plus per-window lengths
(a CSR layout); no Python loop runs per window.

Index conventions of :class:`EventVocab` (shared by every sequence model):

- ``0`` (:data:`PAD`) is padding. In next-event histories it also stands for
  "before the start of the window".
- ``1`` (:data:`UNK`) is any event id not seen when the vocabulary was fitted (OOV).
- ``2 ..`` are the event ids of the training windows, most frequent first
  (ties broken by id), so the encoding is deterministic.

Next-event pairs (DeepLog, LogAnomaly): for a window ``k_0 .. k_{n-1}`` and history
size ``h``, position ``t`` is the pair ``(k_{t-h} .. k_{t-1}) -> k_t``. Histories never
cross a window boundary: positions ``t < h`` have their history left-padded with
:data:`PAD`. With ``first_position=0`` every key of every window is predicted, the
first one from an all-padding history (the Thijsvanede/DeepLog convention, whose
context is filled with a ``NO_EVENT`` marker); windows shorter than ``h + 1`` are
therefore padded, not dropped. ``first_position=h`` gives the strict paper
windows (only full histories), where windows of ``h`` keys or fewer yield no pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.schema import EVENT_IDS

PAD = 0
UNK = 1
N_SPECIAL = 2

__all__ = [
    "PAD",
    "UNK",
    "N_SPECIAL",
    "EncodedWindows",
    "EventVocab",
    "Pairs",
    "check_windows",
    "distinct_windows",
    "event_id_series",
    "next_event_pairs",
    "count_pairs",
    "unique_rows",
    "pad_sequences",
    "append_marker",
]


def check_windows(windows: object, what: str = "windows") -> pl.DataFrame:
    """Return ``windows`` if it is a Polars DataFrame with a list[str] ``event_ids`` column.

    Raises :class:`LogsieveError` with a one-line message otherwise. Integer event
    lists are accepted and cast to strings (``5`` stays ``"5"``; use the ``E`` ids of
    the parsed-log namespace for consistency).
    """
    if not isinstance(windows, pl.DataFrame):
        raise LogsieveError(
            f"{what} must be a Polars DataFrame (a windows table), not {type(windows).__name__}"
        )
    if EVENT_IDS not in windows.columns:
        raise LogsieveError(
            f"{what} has no {EVENT_IDS!r} column (columns: {', '.join(windows.columns)})"
        )
    dtype = windows.schema[EVENT_IDS]
    if not isinstance(dtype, pl.List):
        raise LogsieveError(f"{what}.{EVENT_IDS} must be a list column, not {dtype}")
    if dtype.inner != pl.String:
        if dtype.inner.is_integer():
            return windows.with_columns(pl.col(EVENT_IDS).cast(pl.List(pl.String)))
        raise LogsieveError(f"{what}.{EVENT_IDS} must hold strings, not {dtype.inner}")
    return windows


def event_id_series(windows: pl.DataFrame | pl.Series) -> pl.Series:
    """The ``event_ids`` list column (nulls become empty lists)."""
    s = windows if isinstance(windows, pl.Series) else windows.get_column(EVENT_IDS)
    if s.null_count():
        s = s.fill_null(pl.lit([], dtype=pl.List(pl.String)))
    return s


@dataclass(frozen=True)
class EncodedWindows:
    """Windows as one flat code array plus lengths (CSR layout).

    Attributes
    ----------
    codes : ndarray of int32, shape (n_events,)
        Vocabulary indices of every event of every window, window after window.
    lengths : ndarray of int64, shape (n_windows,)
    """

    codes: np.ndarray
    lengths: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        """Start of each window in :attr:`codes`, shape (n_windows,)."""
        out = np.zeros(len(self.lengths), dtype=np.int64)
        if len(self.lengths) > 1:
            np.cumsum(self.lengths[:-1], out=out[1:])
        return out

    @property
    def owner(self) -> np.ndarray:
        """Window index of every event, shape (n_events,)."""
        return np.repeat(np.arange(len(self.lengths), dtype=np.int64), self.lengths)

    def __len__(self) -> int:
        return len(self.lengths)


class EventVocab:
    """Mapping event id <-> integer index, with padding (0) and unknown (1).

    Build it with :meth:`fit` on training windows only; everything else seen later
    encodes to :data:`UNK`.

    Parameters
    ----------
    tokens
        Event ids in index order; ``tokens[i]`` gets index ``i + 2``.
    """

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self.tokens: tuple[str, ...] = tuple(tokens)
        self._index = {t: i + N_SPECIAL for i, t in enumerate(self.tokens)}
        if len(self._index) != len(self.tokens):
            raise LogsieveError("event vocabulary holds duplicate event ids")

    @classmethod
    def fit(cls, windows: pl.DataFrame | pl.Series, min_count: int = 1) -> EventVocab:
        """Vocabulary of the event ids in ``windows`` seen at least ``min_count`` times."""
        flat = event_id_series(windows).explode().drop_nulls()
        counts = flat.value_counts(name="n").filter(pl.col("n") >= min_count)
        counts = counts.sort(["n", flat.name], descending=[True, False])
        return cls(counts.get_column(flat.name).to_list())

    def __len__(self) -> int:
        """Size including the two special indices."""
        return len(self.tokens) + N_SPECIAL

    @property
    def n_keys(self) -> int:
        """Number of real event ids (without PAD and UNK)."""
        return len(self.tokens)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._index

    def index(self, event_id: str) -> int:
        """Index of one event id (UNK when unseen)."""
        return self._index.get(event_id, UNK)

    def decode(self, codes: Iterable[int]) -> list[str | None]:
        """Event ids of ``codes``; PAD and UNK decode to None."""
        return [self.tokens[c - N_SPECIAL] if c >= N_SPECIAL else None for c in codes]

    def token(self, code: int) -> str | None:
        """Event id of one index (None for PAD/UNK)."""
        return self.tokens[code - N_SPECIAL] if code >= N_SPECIAL else None

    def encode(self, windows: pl.DataFrame | pl.Series) -> EncodedWindows:
        """Encode every window to the flat CSR form (vectorized; OOV -> UNK)."""
        s = event_id_series(windows)
        lengths = s.list.len().fill_null(0).to_numpy().astype(np.int64, copy=False)
        flat = s.explode().drop_nulls()
        if len(flat) != int(lengths.sum()):
            raise LogsieveError("event_ids lists must not contain null entries")
        if len(flat) == 0:
            codes = np.zeros(0, dtype=np.int32)
        else:
            mapping = pl.DataFrame(
                {
                    "token": list(self.tokens),
                    "code": np.arange(N_SPECIAL, len(self), dtype=np.int32),
                },
                schema={"token": pl.String, "code": pl.Int32},
            )
            codes = (
                pl.DataFrame({"token": flat})
                .join(mapping, on="token", how="left", maintain_order="left")
                .get_column("code")
                .fill_null(UNK)
                .to_numpy()
                .astype(np.int32, copy=False)
            )
        return EncodedWindows(codes, lengths)

    def to_list(self) -> list[str]:
        """JSON-able form (the tokens in index order)."""
        return list(self.tokens)

    @classmethod
    def from_list(cls, tokens: Sequence[str]) -> EventVocab:
        return cls(tokens)

    def __repr__(self) -> str:
        return f"EventVocab({self.n_keys} event ids + PAD + UNK)"


def distinct_windows(
    windows: pl.DataFrame, key: str = EVENT_IDS
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Distinct rows of ``windows`` by ``key`` (first occurrence kept, in order).

    Returns
    -------
    distinct : pl.DataFrame
        One row per distinct value of ``key`` (the first window that has it).
    inverse : ndarray of int64, shape (n_windows,)
        ``distinct`` row of every input window, so ``values[inverse]`` maps back.
    counts : ndarray of int64, shape (n_distinct,)
        How many input windows share each distinct row.
    """
    col = windows.get_column(key)
    if col.null_count():
        windows = windows.with_columns(event_id_series(col).alias(key))
    indexed = windows.select(pl.col(key)).with_row_index("_row")
    firsts = indexed.group_by(key, maintain_order=True).agg(
        pl.col("_row").first(), pl.len().alias("_n")
    )
    firsts = firsts.with_row_index("_u")
    inverse = (
        indexed.join(firsts.select(key, "_u"), on=key, how="left", maintain_order="left")
        .get_column("_u")
        .to_numpy()
        .astype(np.int64)
    )
    rows = firsts.get_column("_row").to_numpy()
    counts = firsts.get_column("_n").to_numpy().astype(np.int64)
    return windows[rows], inverse, counts


@dataclass(frozen=True)
class Pairs:
    """Next-event pairs: ``history[i] -> target[i]`` at ``position[i]`` of window ``window[i]``."""

    history: np.ndarray  # int32, (m, h)
    target: np.ndarray  # int32, (m,)
    window: np.ndarray  # int64, (m,)
    position: np.ndarray  # int64, (m,)

    def __len__(self) -> int:
        return len(self.target)


def next_event_pairs(encoded: EncodedWindows, history_size: int, first_position: int = 0) -> Pairs:
    """All next-event pairs of every window (vectorized).

    Position ``t`` of a window (``t >= first_position``) becomes the pair
    ``codes[t-h:t] -> codes[t]``; history slots before the window start hold
    :data:`PAD`. See the module docstring for the padding convention.
    """
    if history_size < 1:
        raise LogsieveError(f"history size must be >= 1, not {history_size}")
    codes = encoded.codes
    offsets = encoded.offsets
    owner = encoded.owner
    position = np.arange(len(codes), dtype=np.int64) - offsets[owner]
    keep = np.flatnonzero(position >= first_position)
    starts = offsets[owner[keep]]
    idx = keep[:, None] - history_size + np.arange(history_size, dtype=np.int64)[None, :]
    inside = idx >= starts[:, None]
    history = np.where(inside, codes[np.maximum(idx, 0)] if len(codes) else PAD, PAD).astype(
        np.int32
    )
    return Pairs(history, codes[keep].astype(np.int32), owner[keep], position[keep])


def unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a 2-D array of non-negative ints, sorted lexicographically.

    Returns ``(unique, inverse)`` like ``np.unique(rows, axis=0, return_inverse=True)``
    but fast: rows are packed into one int64 when their bits fit, else hashed by Polars.
    """
    n, width = rows.shape
    if n == 0:
        return rows.copy(), np.zeros(0, dtype=np.int64)
    top = int(rows.max())
    if rows.min() < 0:
        raise ValueError("unique_rows needs non-negative values")
    bits = max(1, top.bit_length())
    if bits * width <= 63:
        shifts = (bits * np.arange(width - 1, -1, -1)).astype(np.int64)
        packed = (rows.astype(np.int64) << shifts).sum(axis=1)  # first column most significant
        keys, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
        return rows[first], inverse.reshape(-1).astype(np.int64)
    cols = [f"c{i}" for i in range(width)]
    df = pl.DataFrame(rows, schema=cols, orient="row")
    uniq = df.unique().sort(cols).with_row_index("_u")
    inverse = df.join(uniq, on=cols, how="left", maintain_order="left").get_column("_u").to_numpy()
    return uniq.select(cols).to_numpy().astype(rows.dtype, copy=False), inverse.astype(np.int64)


def count_pairs(
    history: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(history, target)`` rows with their (weighted) counts.

    Returns ``(history_u, target_u, counts, inverse)``; ``counts`` is float64 (the sum
    of ``weights``, or the number of occurrences) and ``inverse`` maps every input
    pair to its distinct row. Rows come sorted lexicographically (deterministic).
    """
    if len(target) == 0:
        return history, target, np.zeros(0), np.zeros(0, dtype=np.int64)
    rows = np.column_stack([history, target]).astype(np.int32, copy=False)
    uniq, inverse = unique_rows(rows)
    counts = np.bincount(inverse, weights=weights, minlength=len(uniq)).astype(np.float64)
    return np.ascontiguousarray(uniq[:, :-1]), np.ascontiguousarray(uniq[:, -1]), counts, inverse


def pad_sequences(
    encoded: EncodedWindows, max_len: int | None = None, side: str = "right"
) -> np.ndarray:
    """Windows as a dense ``(n_windows, max_len)`` int32 array filled with PAD.

    Windows longer than ``max_len`` keep their last ``max_len`` events. ``side`` says
    where the padding goes ("right": events first; "left": events last).
    """
    if side not in ("left", "right"):
        raise LogsieveError(f"side must be 'left' or 'right', not {side!r}")
    lengths = encoded.lengths
    n = len(lengths)
    longest = int(lengths.max()) if n else 0
    width = longest if max_len is None else int(max_len)
    out = np.full((n, width), PAD, dtype=np.int32)
    if n == 0 or width == 0:
        return out
    owner = encoded.owner
    pos = np.arange(len(encoded.codes), dtype=np.int64) - encoded.offsets[owner]
    kept = np.minimum(lengths, width)
    drop = lengths - kept  # events cut from the front
    keep = pos >= drop[owner]
    col = pos - drop[owner]
    if side == "left":
        col = col + (width - kept)[owner]
    out[owner[keep], col[keep]] = encoded.codes[keep]
    return out


def append_marker(encoded: EncodedWindows, code: int) -> EncodedWindows:
    """A copy of ``encoded`` with ``code`` appended to every window (e.g. an end marker)."""
    ends = np.cumsum(encoded.lengths)
    codes = np.insert(encoded.codes, ends, np.int32(code)).astype(np.int32, copy=False)
    return EncodedWindows(codes, encoded.lengths + 1)
