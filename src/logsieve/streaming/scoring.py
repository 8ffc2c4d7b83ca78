"""Scoring windows as they grow: incremental next-event ranks, batch scoring at close.

Next-event models (DeepLog, LogAnomaly, the next-log Transformer:
:class:`~logsieve.detectors.neural.next_event.NextEventMixin`) score a window by the largest
rank of its ``(history, next event)`` pairs. Each pair depends only on the ``h`` events
before it, so it is scored the moment its line arrives: :class:`NextEventScorer` queues the
pairs of a micro-batch, ranks the distinct ones it has not seen before in one forward pass
and memoises ``(history, target) -> rank`` (HDFS histories repeat heavily: after warm-up
nearly every pair is a dictionary hit). The end-of-window pair (``session_bounds``) is
ranked when the window closes, with DeepLog's short-window rule. The pairs are those of the
detector's own ``_pairs`` (the input/target codes of each event id are read from it), so
the final score of a window is the batch score.

Other models score a window when it closes, through :meth:`Pipeline.detect` itself.

Feedback: DeepLog's taught pairs reach the streaming ranks through the detector's own
``adjust_pair_ranks``; the windows an operator labelled (``known_windows_``) clamp the
score of a closed window (:func:`clamp_known`), and :class:`KnownPrefixes` says whether a
window so far may still become a marked-normal one (its line alert is held until not).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import torch

from logsieve.detectors.neural.next_event import END_OF_WINDOW, NextEventMixin
from logsieve.errors import LogsieveError
from logsieve.pipeline import Pipeline
from logsieve.schema import EVENT_IDS, LINE_IDS, WINDOW_ID
from logsieve.streaming.windows import OpenWindow, Segment, windows_frame

__all__ = ["MEMO_LIMIT", "KnownPrefixes", "NextEventScorer", "clamp_known", "is_next_event"]

MEMO_LIMIT = 2_000_000
"""Memoised pairs kept; the memo is cleared when it grows past this (bounded memory)."""

PAD = 0
_EMPTY_I = np.zeros(0, dtype=np.int64)


def _int_base(digits: int) -> int:
    """The largest b with b ** digits < 2 ** 63 (0 when b < 2)."""
    b = int(2 ** (63 / digits)) + 1
    while b > 1 and b**digits >= 2**63:
        b -= 1
    return b if b >= 2 else 0


def is_next_event(pipe: Pipeline) -> bool:
    det = pipe.detector
    return isinstance(det, NextEventMixin) and hasattr(det, "history_size")


class NextEventScorer:
    """Ranks of next-event pairs as lines arrive (see the module docstring)."""

    def __init__(self, pipe: Pipeline) -> None:
        det: Any = pipe.detector
        if not is_next_event(pipe):
            raise LogsieveError(f"{pipe.name} is not a next-event model")
        self.det: Any = det
        self.h = int(det.history_size)
        self.bounds = bool(det.session_bounds)
        self.threshold = float(det.threshold_)
        self.min_length = int(getattr(det, "min_length_", 0) or 0) if self.bounds else 0
        self.oov = float(det.oov_rank_)
        self.codes: dict[str, tuple[int, int]] = {}
        self.end_target = -1
        self.memo: dict[Any, float] = {}  # (history, target) (tuples, or int64 bytes) -> rank
        self.int_memo: dict[int, float] = {}  # the same pairs keyed by one integer (_ranks)
        # the largest base whose h + 1 digits fit in an int64 (0: none does)
        self.base = _int_base(self.h + 1)
        self.pending: list[tuple[OpenWindow, int, tuple[tuple[int, ...], int]]] = []
        self.hits = 0
        self.misses = 0

    # ------------------------------------------------------------------ codes
    def _code(self, eid: str) -> tuple[int, int]:
        """(input code, target code) of an event id, read from the detector's own pairs."""
        got = self.codes.get(eid)
        if got is not None:
            return got
        h = self.h
        frame = pl.DataFrame({WINDOW_ID: ["x"], EVENT_IDS: [[eid] * (h + 1)]},
                             schema={WINDOW_ID: pl.String, EVENT_IDS: pl.List(pl.String)})
        pairs = self.det._pairs(frame)
        if self.bounds:
            got = (int(pairs.history[1][-1]), int(pairs.target[0]))
            self.end_target = int(pairs.target[-1])
        else:
            got = (int(pairs.history[0][-1]), int(pairs.target[0]))
        self.codes[eid] = got
        return got

    def encode(self, w: OpenWindow) -> None:
        """Recompute a window's input codes (after a restart or a model reload)."""
        w.codes = array("q", [self._code(e)[0] for e in w.eids])

    def code_arrays(self, uniq: Sequence[str], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(input codes, target codes) of a column of event ids given as its distinct ids
        and each row's index into them (one lookup per distinct id)."""
        got = [self._code(e) for e in uniq]
        table = np.array(got, dtype=np.int64).reshape(len(got), 2)
        return table[idx, 0], table[idx, 1]

    # ------------------------------------------------------------------ vectorised
    def rank_segments(
        self, segs: Sequence[Segment], inp: np.ndarray, tgt: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Append each segment's input codes to its window and rank its new pairs, all at
        once: ``(segment index, position, rank)`` per pair, in segment then position order.
        ``inp`` / ``tgt``: the batch rows' input and target codes (:meth:`code_arrays`)."""
        h = self.h
        if not segs:
            return _EMPTY_I, _EMPTY_I, np.zeros(0)
        rows = np.concatenate([r for _, _, r in segs])
        lens = np.fromiter((len(r) for _, _, r in segs), np.int64, len(segs))
        pos0 = np.fromiter((p for _, p, _ in segs), np.int64, len(segs))
        new = inp[rows]
        ends = np.cumsum(lens)
        # each segment laid out as [h codes before it (PAD-filled), its new codes]
        pad = np.full(h, PAD, dtype=np.int64).tobytes()
        new_b = new.tobytes()
        parts = []
        a = 0
        for (w, p, _), e in zip(segs, ends.tolist(), strict=True):
            codes = w.codes
            t = codes[p - h : p].tobytes() if p >= h else pad[: (h - p) * 8] + codes.tobytes()
            parts.append(t)
            codes.frombytes(new_b[a * 8 : e * 8])
            a = e
        tails = np.frombuffer(b"".join(parts), dtype=np.int64).reshape(len(segs), h)
        seg = np.repeat(np.arange(len(segs)), lens)
        within = np.arange(len(rows)) - np.repeat(ends - lens, lens)
        flat = np.empty(len(segs) * h + len(rows), dtype=np.int64)
        base = np.arange(len(segs)) * h + (ends - lens)  # where each segment's tail starts
        flat[(base[:, None] + np.arange(h)).ravel()] = tails.ravel()
        at = base[seg] + h + within
        flat[at] = new
        pos = pos0[seg] + within
        keep = np.ones(len(rows), bool) if self.bounds else pos >= h
        hist = np.lib.stride_tricks.sliding_window_view(flat, h)[at[keep] - h]
        tgt_k = tgt[rows][keep]
        ranks = self.det.adjust_pair_ranks(hist, tgt_k, self._ranks(hist, tgt_k))
        return seg[keep], pos[keep], ranks

    def rank_ends(self, windows: Sequence[OpenWindow]) -> np.ndarray:
        """The end-of-window pair's rank of each closed window (``session_bounds``; else
        zeros), with DeepLog's short-window rule."""
        h = self.h
        out = np.zeros(len(windows))
        if not self.bounds or not windows:
            return out
        if self.end_target < 0:
            self._code(next((w.eids[0] for w in windows if w.eids), ""))
        hist = np.full((len(windows), h), PAD, dtype=np.int64)
        for j, w in enumerate(windows):
            t = w.codes[-h:] if h else w.codes[:0]
            if len(t):
                hist[j, h - len(t) :] = np.frombuffer(t, dtype=np.int64)
        tgt = np.full(len(windows), self.end_target, dtype=np.int64)
        out = self._ranks(hist, tgt)
        short = np.fromiter((len(w.codes) < self.min_length for w in windows), bool, len(windows))
        out[short] = self.oov
        return self.det.adjust_pair_ranks(hist, tgt, out)

    def _ranks(self, hist: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        """Ranks of pairs: distinct ones looked up in the memo, the misses ranked in one
        forward pass. Pairs are told apart by one integer each (the codes as digits in
        base :attr:`base`: one sort of int64, not of rows); the misses also go into
        :attr:`memo`, keyed as the detector's own memo is (int64 history + target bytes),
        so explaining an alerted window reuses them. Codes too big for the integer key
        (a very large vocabulary) take the bytes keys directly."""
        if not len(tgt):
            return np.zeros(0)
        mat = np.ascontiguousarray(np.concatenate([hist, tgt[:, None]], axis=1), np.int64)
        if not self.base or mat.min() < 0 or mat.max() >= self.base:
            return self._ranks_bytes(mat)
        packed = mat[:, 0].copy()
        for c in range(1, mat.shape[1]):
            packed *= self.base
            packed += mat[:, c]
        uniq, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
        memo = self.int_memo
        got = np.fromiter((memo.get(k, math.nan) for k in uniq.tolist()), np.float64, len(uniq))
        todo = np.flatnonzero(np.isnan(got))
        self.hits += len(tgt) - len(todo)
        if len(todo):
            self.misses += len(todo)
            if len(memo) + len(todo) > MEMO_LIMIT:
                memo.clear()
                self.memo.clear()
            u = mat[first[todo]]
            got[todo] = self._infer(u)
            ranks = got[todo].tolist()
            memo.update(zip(uniq[todo].tolist(), ranks, strict=True))
            self.memo.update(zip((r.tobytes() for r in u), ranks, strict=True))
        return got[inverse.ravel()]

    def _ranks_bytes(self, mat: np.ndarray) -> np.ndarray:
        rowv = mat.view(np.dtype((np.void, mat.shape[1] * 8))).ravel()
        uniq, inverse = np.unique(rowv, return_inverse=True)
        keys = [u.tobytes() for u in uniq]
        memo = self.memo
        got = np.fromiter((memo.get(k, math.nan) for k in keys), np.float64, len(keys))
        todo = np.flatnonzero(np.isnan(got))
        self.hits += len(mat) - len(todo)
        if len(todo):
            self.misses += len(todo)
            if len(memo) + len(todo) > MEMO_LIMIT:
                memo.clear()
                self.int_memo.clear()
            got[todo] = self._infer(uniq[todo].view(np.int64).reshape(len(todo), self.h + 1))
            memo.update(zip((keys[i] for i in todo), got[todo].tolist(), strict=True))
        return got[inverse.ravel()]

    def _infer(self, rows: np.ndarray) -> np.ndarray:
        """Ranks of (history..., target) code rows: one forward pass (per distinct history,
        when the model ranks as :class:`NextEventMixin` does)."""
        hist, tgt = np.ascontiguousarray(rows[:, :-1]), np.ascontiguousarray(rows[:, -1])
        if type(self.det)._rank_step is NextEventMixin._rank_step:
            return self.det.ranks_by_history(hist, tgt).astype(np.float64)
        out = self.det._infer(self.det._rank_step, {"history": hist, "target": tgt})
        return torch.cat(out).numpy().astype(np.float64)

    def share_memo(self) -> None:
        """Let the detector's explanations reuse the memoised ranks."""
        self.det._rank_memo = self.memo

    def _history(self, codes: Sequence[int], pos: int) -> tuple[int, ...]:
        h = self.h
        if pos >= h:
            return tuple(codes[pos - h : pos])
        return (PAD,) * (h - pos) + tuple(codes[:pos])

    # ------------------------------------------------------------------ queueing
    def push(self, w: OpenWindow, pos: int) -> None:
        """The event at ``pos`` of ``w`` has just been appended."""
        inp, tgt = self._code(w.eids[pos])
        codes = w.codes
        codes.append(inp)
        if not self.bounds and pos < self.h:
            return
        self.pending.append((w, pos, (self._history(codes, pos), tgt)))

    def push_end(self, w: OpenWindow) -> None:
        """``w`` has closed: its end-of-window pair (with ``session_bounds``)."""
        if not self.bounds:
            return
        if self.end_target < 0 and w.eids:
            self._code(w.eids[0])
        pos = len(w.codes)
        self.pending.append((w, -1 - pos, (self._history(w.codes, pos), self.end_target)))

    def flush(self) -> list[tuple[OpenWindow, int, float]]:
        """Rank the queued pairs: ``(window, position, rank)`` in queue order; a position
        below 0 is the end pair (``-1 - position``)."""
        pending, self.pending = self.pending, []
        if not pending:
            return []
        memo = self.memo
        missing: dict[tuple[tuple[int, ...], int], None] = {}
        for _, _, key in pending:
            if key not in memo:
                missing[key] = None
        if missing:
            self.misses += len(missing)
            if len(memo) + len(missing) > MEMO_LIMIT:
                memo.clear()
            keys = list(missing)
            hist = np.array([k[0] for k in keys], dtype=np.int64).reshape(len(keys), self.h)
            tgt = np.array([k[1] for k in keys], dtype=np.int64)
            out = self.det._infer(self.det._rank_step, {"history": hist, "target": tgt})
            ranks = torch.cat(out).numpy().astype(np.float64)
            memo.update(zip(keys, ranks.tolist(), strict=True))
        self.hits += len(pending) - len(missing)
        ranks = np.array([memo[key] for _, _, key in pending], dtype=np.float64)
        for i, (_, pos, _) in enumerate(pending):
            if pos < 0 and -1 - pos < self.min_length:
                ranks[i] = self.oov  # ends earlier than every training window (DeepLog)
        hist = np.array([k[0] for _, _, k in pending], dtype=np.int64).reshape(-1, self.h)
        tgt = np.array([k[1] for _, _, k in pending], dtype=np.int64)
        ranks = self.det.adjust_pair_ranks(hist, tgt, ranks)
        return [(w, pos, r) for (w, pos, _), r in zip(pending, ranks.tolist(), strict=True)]


class KnownPrefixes:
    """The event sequences of a detector's marked-normal windows as a trie: whether a
    window's events so far are a prefix of one of them. Built once per model version;
    ``None`` (:meth:`of`) when there is nothing to hold for."""

    def __init__(self, sequences: Sequence[Sequence[str]]) -> None:
        self.root: dict[str, Any] = {}
        for seq in sequences:
            node = self.root
            for e in seq:
                node = node.setdefault(e, {})

    @classmethod
    def of(cls, det: Any) -> KnownPrefixes | None:
        known = getattr(det, "known_windows_", None)
        # a key with values or messages never matches a watch window (event ids only)
        if not known or tuple(known.columns) != (EVENT_IDS,):
            return None
        seqs = [e["key"][EVENT_IDS] for e in known.entries if int(e["label"]) == 0]
        return cls(seqs) if seqs else None

    def walk(self, node: dict[str, Any] | None, events: Sequence[str]) -> dict[str, Any] | None:
        """The trie node after ``events`` from ``node`` (``None``: the root), or ``None``
        when they leave every known sequence."""
        node = self.root if node is None else node
        for e in events:
            node = node.get(e)
            if node is None:
                return None
        return node


def clamp_known(det: Any, windows: Sequence[OpenWindow], scores: np.ndarray) -> np.ndarray:
    """Scores of closed windows with the detector's labelled windows clamped to their side
    of the threshold (as ``decision_function`` does in batch)."""
    known = getattr(det, "known_windows_", None)
    if not known or not len(windows):
        return scores
    # only a window as long as a labelled one can equal it: the others skip the frame
    lengths = {len(e["key"].get(EVENT_IDS) or ()) for e in known.entries}
    at = [i for i, w in enumerate(windows) if len(w.eids) in lengths]
    if not at:
        return scores
    out = np.array(scores, dtype=np.float64, copy=True)
    frame = windows_frame([windows[i] for i in at])
    out[at] = known.apply(out[at], frame, float(det.threshold_))
    return out


def prefix_frame(items: list[tuple[OpenWindow, int]]) -> pl.DataFrame:
    """Windows table of each window's events up to and including ``position``."""
    return pl.DataFrame(
        {
            WINDOW_ID: [w.wid for w, _ in items],
            EVENT_IDS: [w.eids[: p + 1] for w, p in items],
            LINE_IDS: [w.line_ids[: p + 1] for w, p in items],
        },
        schema={WINDOW_ID: pl.String, EVENT_IDS: pl.List(pl.String), LINE_IDS: pl.List(pl.Int64)},
    )


def line_explanations(pipe: Pipeline, items: list[tuple[OpenWindow, int, float]]) -> list[Any]:
    """Explanations of windows alerted at a line: the detector's explanation of the window
    so far, without the end-of-window position (the window has not ended)."""
    if not items:
        return []
    frame = prefix_frame([(w, p) for w, p, _ in items])
    out = []
    for exp, (_, _, rank) in zip(pipe.explain(frame), items, strict=True):
        if isinstance(exp, dict):
            exp = dict(exp)
            if isinstance(exp.get("positions"), list):
                exp["positions"] = [
                    p for p in exp["positions"] if p.get("event_id") != END_OF_WINDOW
                ]
            exp["score"] = rank
            exp["is_anomaly"] = True
        out.append(exp)
    return out
