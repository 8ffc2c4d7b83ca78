"""What the next-event detectors with DeepLog's top-g rule have in common.

:class:`~logsieve.detectors.deeplog.DeepLog`,
:class:`~logsieve.detectors.loganomaly.LogAnomaly` and
:class:`~logsieve.detectors.transformer_nextlog.NextLogTransformer` predict every event of a
window from the events before it and score a window by the largest 0-based rank of an
actual event among the predictions. :class:`NextEventMixin` holds the parts that are
the same in the three: training pairs, ranks, window scores, the top-g threshold and
the explanation of the flagged positions.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from logsieve.detectors.base import explanations_by_row
from logsieve.detectors.neural.trainer import Batch
from logsieve.features.sequence import (
    N_SPECIAL,
    UNK,
    Pairs,
    check_windows,
    count_pairs,
    distinct_windows,
    event_id_series,
)

__all__ = ["END_OF_WINDOW", "NextEventMixin", "max_per_window"]

#: event id shown in explanations and workflows for "the window ended here"
END_OF_WINDOW = "<end>"


def max_per_window(pairs: Pairs, ranks: np.ndarray, n_windows: int) -> np.ndarray:
    """Largest rank of each window's pairs (0 for a window without pairs), float64."""
    scores = np.zeros(n_windows, dtype=np.float64)
    if len(ranks):
        np.maximum.at(scores, pairs.window, ranks)
    return scores


class NextEventMixin:
    """Shared logic of the top-g next-event detectors (mixed into a ``TorchDetector``).

    The detector provides the parameters ``history_size``, ``num_candidates`` and
    ``session_bounds``, the fitted ``vocab_`` (the events the output layer knows; output
    ``len(vocab_)`` is the end-of-window marker with ``session_bounds``) and
    :meth:`_pairs` (next-event pairs, targets as output indices, UNK for an event the
    model cannot predict). Hooks: :meth:`_logits` (the network's next-event logits),
    :meth:`_explain_logits` (the same plus extra per-prediction tensors for
    explanations), :meth:`_position_notes` and :meth:`_position_context`
    (model-specific fields of an explained position).
    """

    # ------------------------------------------------------------------ data
    @property
    def n_outputs_(self) -> int:
        """Size of the output layer: the vocabulary (PAD and UNK included), then the end
        marker with ``session_bounds``."""
        return len(self.vocab_) + (1 if self.session_bounds else 0)  # type: ignore[attr-defined]

    @property
    def oov_rank_(self) -> int:
        """Rank given to an event the model cannot predict: always outside the top-g."""
        g = int(self.num_candidates)  # type: ignore[attr-defined]
        return max(self.n_outputs_ - N_SPECIAL, g)

    @property
    def _end_code(self) -> int:
        """Output index of the end-of-window marker (only with ``session_bounds``)."""
        return len(self.vocab_)  # type: ignore[attr-defined]

    def _pairs(self, windows: pl.DataFrame) -> Pairs:
        """Next-event pairs of ``windows`` (each detector builds its own)."""
        raise NotImplementedError

    def _pair_arrays(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        """Distinct (history, next event) pairs of ``windows`` weighted by their counts."""
        distinct, _, counts = distinct_windows(windows)
        pairs = self._pairs(distinct)
        known = pairs.target != UNK  # an unseen event cannot be a training target
        hist, target, weight, _ = count_pairs(
            pairs.history[known],
            pairs.target[known],
            counts[pairs.window[known]].astype(np.float64),
        )
        return {
            "history": hist.astype(np.int64),
            "target": target.astype(np.int64),
            "weight": weight.astype(np.float32),
        }

    def _prepare(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        return self._pair_arrays(windows)

    def _natural_threshold(self) -> float:
        return int(self.num_candidates) - 0.5  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ scoring
    def _logits(self, module: nn.Module, history: torch.Tensor) -> torch.Tensor:
        """Next-event logits of a batch of histories."""
        return module(history)

    @staticmethod
    def _mask(logits: torch.Tensor) -> torch.Tensor:
        logits[:, :N_SPECIAL] = -math.inf  # padding / unknown are never predictions
        return logits

    def _masked_logits(self, module: nn.Module, history: torch.Tensor) -> torch.Tensor:
        return self._mask(self._logits(module, history))

    def _rank_of(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Rank of each target among its row of (masked) logits; unknown targets get the
        out-of-vocabulary rank."""
        known = target >= N_SPECIAL
        actual = logits.gather(1, target.clamp_min(N_SPECIAL)[:, None])
        rank = (logits > actual).sum(1)
        return torch.where(known, rank, torch.full_like(rank, self.oov_rank_))

    def _rank_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        return self._rank_of(self._masked_logits(module, batch["history"]),
                             batch["target"]).cpu()  # fmt: skip

    def _logits_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        return self._masked_logits(module, batch["history"]).cpu()

    def ranks_by_history(self, history: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Ranks of ``(history, target)`` code rows (``history``: (m, h) int64), the
        network run once per distinct history (several next events often follow one
        history: the streaming scorer's new pairs)."""
        hist_u, inverse = np.unique(history, axis=0, return_inverse=True)
        logits = torch.cat(self._infer(self._logits_step, {"history": hist_u}))  # type: ignore[attr-defined]
        rows = torch.from_numpy(np.ascontiguousarray(inverse.reshape(-1), dtype=np.int64))
        tgt = torch.from_numpy(np.ascontiguousarray(target, dtype=np.int64))
        return self._rank_of(logits[rows], tgt).numpy()

    @contextlib.contextmanager
    def reusing_scores(self) -> Iterator[None]:
        """Remember the rank of every (history, next event) pair ranked in this block, so
        explaining windows just scored runs the network only for the flagged positions."""
        self._rank_memo: dict[bytes, float] | None = {}
        try:
            yield
        finally:
            self._rank_memo = None

    def _pair_ranks(self, windows: pl.DataFrame) -> tuple[Pairs, np.ndarray]:
        """Pairs of ``windows`` and the rank of each (computed once per distinct pair)."""
        pairs = self._pairs(windows)
        hist_u, target_u, _, inverse = count_pairs(pairs.history, pairs.target)
        if len(target_u) == 0:
            return pairs, np.zeros(0, dtype=np.float64)
        hist_u, target_u = hist_u.astype(np.int64), target_u.astype(np.int64)
        memo = getattr(self, "_rank_memo", None)
        if memo is None:
            return pairs, self._ranks(hist_u, target_u)[inverse]
        keys = [h.tobytes() + t.tobytes() for h, t in zip(hist_u, target_u[:, None], strict=True)]
        known = np.fromiter((memo.get(k, math.nan) for k in keys), np.float64, len(keys))
        todo = np.flatnonzero(np.isnan(known))
        if len(todo):
            known[todo] = self._ranks(hist_u[todo], target_u[todo])
            memo.update(zip((keys[i] for i in todo), known[todo].tolist(), strict=True))
        return pairs, known[inverse]

    def adjust_pair_ranks(
        self, history: np.ndarray, target: np.ndarray, ranks: np.ndarray
    ) -> np.ndarray:
        """Hook: the model's final ranks of pairs given as code rows (``history``: (m, h),
        ``target``: (m,)) and their network ranks; may change ``ranks`` in place. Here:
        unchanged (DeepLog applies its taught pairs)."""
        return ranks

    def _ranks(self, hist: np.ndarray, target: np.ndarray) -> np.ndarray:
        chunks = self._infer(  # type: ignore[attr-defined]
            self._rank_step, {"history": hist, "target": target}
        )
        return torch.cat(chunks).numpy().astype(np.float64)

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        pairs, ranks = self._pair_ranks(windows)
        return max_per_window(pairs, ranks, windows.height)

    # ------------------------------------------------------------------ explanation
    def _template(self, event_id: str | None) -> str | None:
        if event_id is None:
            return None
        if event_id == END_OF_WINDOW:
            return "<end of window>"
        return self.templates_.get(event_id)  # type: ignore[attr-defined]

    def _key_name(self, code: int) -> str | None:
        """Event id of an output index; the end marker is :data:`END_OF_WINDOW`."""
        if self.session_bounds and code == self._end_code:  # type: ignore[attr-defined]
            return END_OF_WINDOW
        return self.vocab_.token(code)  # type: ignore[attr-defined]

    def _explain_logits(
        self, module: nn.Module, history: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Logits and extra per-prediction tensors given to :meth:`_position_context`."""
        return self._logits(module, history), ()

    def _position_notes(
        self, actual: str, position: int, target: int, unseen: bool
    ) -> dict[str, Any]:
        """Model-specific fields of a flagged position, shown before ``expected``."""
        return {}

    def _position_context(
        self, tokens: list[str], position: int, more: list[np.ndarray]
    ) -> dict[str, Any]:
        """Fields shown after ``expected`` (``more``: this prediction's extra arrays)."""
        return {}

    def _explain_positions(
        self, windows: pl.DataFrame, top: int | None, nested: str | None = None
    ) -> list[dict[str, Any]]:
        """The explanations of :meth:`explain`: score and the flagged positions per window.

        Every position whose rank is above the threshold, with ``position``,
        ``event_id``, ``template``, ``rank``, ``probability`` (of the actual event; 0
        when unseen), ``unseen``, the :meth:`_position_notes`, ``expected`` (the ``top``
        most probable events, default ``g``), the :meth:`_position_context` and
        ``line_id``.
        """
        self._check_fitted()  # type: ignore[attr-defined]
        windows = check_windows(windows)
        g = int(self.num_candidates)  # type: ignore[attr-defined]
        # at most the predictable events and the end marker
        k = max(1, min(int(top) if top is not None else g, self.n_outputs_ - N_SPECIAL))
        distinct, inverse, _ = distinct_windows(windows)
        pairs, ranks = self._pair_ranks(distinct)
        scores = max_per_window(pairs, ranks, distinct.height)
        details = self._position_details(distinct, pairs, ranks, k)
        return explanations_by_row(
            self,  # type: ignore[arg-type]
            windows,
            inverse,
            scores,
            details,
            "positions",
            nested=nested,
        )

    def _position_details(
        self, distinct: pl.DataFrame, pairs: Pairs, ranks: np.ndarray, k: int
    ) -> dict[int, list[dict[str, Any]]]:
        """Per distinct window, the positions whose rank is above the threshold."""
        flagged = np.flatnonzero(ranks > self.threshold_)  # type: ignore[attr-defined]
        details: dict[int, list[dict[str, Any]]] = defaultdict(list)
        if not len(flagged):
            return details
        hist = pairs.history[flagged].astype(np.int64)
        tgt = pairs.target[flagged].astype(np.int64)

        def step(module: nn.Module, batch: Batch) -> tuple[torch.Tensor, ...]:
            logits, more = self._explain_logits(module, batch["history"])
            prob = torch.softmax(self._mask(logits), dim=1)
            # an unseen target (UNK) reads any column: its probability is shown as 0
            p_actual = prob.gather(1, batch["target"].clamp_min(N_SPECIAL)[:, None])[:, 0]
            values, idx = prob.topk(k, dim=1)
            return p_actual.cpu(), values.cpu(), idx.cpu(), *(m.cpu() for m in more)

        out = self._infer(step, {"history": hist, "target": tgt})  # type: ignore[attr-defined]
        p_actual, top_p, top_i, *more = (
            torch.cat([o[j] for o in out]).numpy() for j in range(len(out[0]))
        )
        tokens = event_id_series(distinct).to_list()
        for j, i in enumerate(flagged):
            w, pos = int(pairs.window[i]), int(pairs.position[i])
            unseen = int(tgt[j]) == UNK
            actual = tokens[w][pos] if pos < len(tokens[w]) else END_OF_WINDOW
            details[w].append(
                {
                    "position": pos,
                    "event_id": actual,
                    "template": self._template(actual),
                    "rank": int(ranks[i]),
                    "probability": 0.0 if unseen else float(p_actual[j]),
                    "unseen": unseen,
                    **self._position_notes(actual, pos, int(tgt[j]), unseen),
                    "expected": [
                        {
                            "event_id": self._key_name(int(c)),
                            "template": self._template(self._key_name(int(c))),
                            "probability": float(p),
                        }
                        for c, p in zip(top_i[j], top_p[j], strict=True)
                    ],
                    **self._position_context(tokens[w], pos, [m[j] for m in more]),
                }
            )
        return details
