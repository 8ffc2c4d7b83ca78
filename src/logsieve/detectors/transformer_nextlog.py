"""deep-loglizer's Transformer next-event model (Chen et al., arXiv 2107.05908).

Trained on normal windows, it predicts each event from the ``history_size`` before it
and flags a window when an event is outside the top-k predictions (DeepLog's rule).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from logsieve.detectors.base import (
    check_positive_ints,
)
from logsieve.detectors.neural.layers import (
    Encoder,
    attention_rollout,
    check_encoder_params,
    top_positions,
)
from logsieve.detectors.neural.next_event import END_OF_WINDOW, NextEventMixin
from logsieve.detectors.neural.trainer import Batch, TorchDetector
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.sequence import (
    EventVocab,
    Pairs,
    append_marker,
    next_event_pairs,
)

logger = logging.getLogger(__name__)

__all__ = ["END_OF_WINDOW", "START_OF_WINDOW", "NextLogNet", "NextLogTransformer"]

NEXTLOG_CITATION = (
    "Zhuangbin Chen, Jinyang Liu, Wenwei Gu, Yuxin Su, Michael R. Lyu. Experience Report: "
    "Deep Learning-based System Log Analysis for Anomaly Detection. arXiv:2107.05908, 2021 "
    "(deep-loglizer Transformer; after Nedelkoski et al., Self-Attentive "
    "Classification-Based Anomaly Detection in Unstructured Logs, ICDM 2020)"
)
#: event id shown in explanations for "before the window started" (the end: END_OF_WINDOW)
START_OF_WINDOW = "<start>"


class NextLogNet(nn.Module):
    """Event-id history -> embedding, positions, encoder, pooling -> next-event logits."""

    def __init__(
        self,
        n_tokens: int,
        n_outputs: int,
        d_model: int,
        num_heads: int,
        num_layers: int,
        ff_dim: int,
        dropout: float,
        positional: str,
        history_size: int,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, d_model)
        self.encoder = Encoder(
            d_model,
            num_heads,
            num_layers,
            ff_dim,
            dropout=dropout,
            positional=positional,
            max_len=history_size,
        )
        self.pooling = pooling
        self.out = nn.Linear(d_model, n_outputs)

    def forward(
        self, history: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # PAD in a history means "before the start of the window": a real input, not masked
        hidden, weights = self.encoder(self.embedding(history), None, need_weights)
        pooled = hidden.mean(dim=1) if self.pooling == "mean" else hidden[:, -1]
        return self.out(pooled), weights


@register_detector("transformer_nextlog")
class NextLogTransformer(NextEventMixin, TorchDetector):
    """deep-loglizer's Transformer: next-event prediction with the top-k rule (unsupervised).

    deep-loglizer's Transformer (Chen, Liu, Gu, Su, Lyu, "Experience Report: Deep
    Learning-based System Log Analysis for Anomaly Detection", arXiv 2107.05908), the
    ``label_type="next_log"``, ``feature_type="sequentials"`` variant. deep-loglizer
    attributes its Transformer to Logsy (Nedelkoski et al., ICDM 2020), but Logsy
    classifies single messages with a hypersphere loss and auxiliary data; this model
    is deep-loglizer's next-event forecaster, not Logsy. Trained on
    normal windows only, it reads the ``history_size`` previous event ids (learned
    embeddings), encodes them with a Transformer encoder, mean-pools the positions and
    predicts the next event id; a window is anomalous when one of its events is not
    among the ``num_candidates`` most probable predictions (deep-loglizer's top-k rule,
    as DeepLog's top-g). deep-loglizer's settings: sliding windows of 10 events with
    stride 1, top-k 10 on HDFS and 50 on BGL, Adam lr 1e-3, 10 epochs, mean pooling,
    1 block of 4 heads, embedding 16, feed-forward 100.

    Differences: ``d_model=64``, 2 blocks (the task's defaults), ``ff_dim=128``; a
    sinusoidal positional encoding is added (deep-loglizer's model has none, so with
    mean pooling its prediction ignores the order of the history); positions follow
    :class:`~logsieve.detectors.deeplog.DeepLog`'s ``session_bounds`` convention (every
    event is predicted from a padded history, and an end-of-window marker is predicted
    after the last one); top-k is a threshold on the rank (``threshold_ = k - 0.5``),
    chosen up front or on VALIDATION data with ``threshold="best_f1"`` (deep-loglizer
    picks k and the epoch on the test set); training uses distinct weighted
    ``(history, next event)`` pairs.

    Explanations: attention rollout (Abnar & Zuidema, ACL 2020) through the blocks
    gives the share of every input position in the pooled representation; ``explain``
    lists the positions that weighed most with their ``line_id`` (from ``line_ids``), raw
    message or event id and template.

    Parameters
    ----------
    history_size : int, default 10
        Events of history (deep-loglizer's sliding window of 10, stride 1).
    d_model : int, default 64
        Embedding and encoder width (deep-loglizer: 16).
    num_heads : int, default 4
    num_layers : int, default 2
        Encoder blocks (deep-loglizer: 1).
    ff_dim : int, default 128
        Feed-forward width (deep-loglizer's ``hidden_size``: 100).
    dropout : float, default 0.1
    positional : {"sinusoidal", "learned", "none"}, default "sinusoidal"
        "none" is deep-loglizer's model (order-blind under mean pooling).
    pooling : {"mean", "last"}, default "mean"
        Mean over the history positions (deep-loglizer) or the last position's state.
    num_candidates : int, default 10
        ``k``: an event is normal when among the ``k`` most probable (deep-loglizer:
        10 on HDFS, 50 on BGL).
    session_bounds : bool, default True
        As :class:`~logsieve.detectors.deeplog.DeepLog`: predict every event (padded
        histories) and an end-of-window marker; False predicts only positions with a
        full history (stream windows).
    epochs, batch_size, lr, weight_decay, patience, device, num_threads
        Training; defaults 10 epochs, batch 256, Adam lr 1e-3 (deep-loglizer).
    threshold, contamination, valid_fraction, include_anomalies, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`; ``"auto"`` = ``k - 0.5``.

    Attributes
    ----------
    vocab_ : EventVocab
    module_ : NextLogNet
    """

    description = (
        "Transformer next-event model (deep-loglizer): anomalous when a key is outside top-k"
    )
    citation = NEXTLOG_CITATION
    input_kind = "sequence"
    requires_labels = False

    history_size: int = 10
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    ff_dim: int = 128
    dropout: float = 0.1
    positional: str = "sinusoidal"
    pooling: str = "mean"
    num_candidates: int = 10
    session_bounds: bool = True
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {
            "history_size": 4,
            "d_model": 16,
            "num_heads": 2,
            "num_layers": 1,
            "ff_dim": 32,
            "dropout": 0.0,
            "num_candidates": 2,
            "epochs": 30,
            "batch_size": 64,
            "lr": 1e-2,
            "num_threads": 1,
        }

    def _validate_params(self) -> None:
        super()._validate_params()
        check_encoder_params(self)
        check_positive_ints(self, "history_size", "num_candidates")
        if self.pooling not in ("mean", "last"):
            raise LogsieveError(f"pooling must be 'mean' or 'last', not {self.pooling!r}")

    # ------------------------------------------------------------------ data
    def _pairs(self, windows: pl.DataFrame) -> Pairs:
        encoded = self.vocab_.encode(windows)
        if self.session_bounds:
            return next_event_pairs(
                append_marker(encoded, self._end_code), int(self.history_size), 0
            )
        return next_event_pairs(encoded, int(self.history_size), int(self.history_size))

    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        self.vocab_ = EventVocab.fit(train)
        if self.vocab_.n_keys == 0:
            raise LogsieveError("transformer_nextlog: the training windows hold no event ids")
        arrays = self._pair_arrays(train)
        logger.info(
            "transformer_nextlog: %d keys, %d distinct training pairs (%d in all)",
            self.vocab_.n_keys,
            len(arrays["target"]),
            int(arrays["weight"].sum()),
        )
        return arrays

    def build_module(self) -> nn.Module:
        return NextLogNet(
            len(self.vocab_),
            self.n_outputs_,
            int(self.d_model),
            int(self.num_heads),
            int(self.num_layers),
            int(self.ff_dim),
            float(self.dropout),
            str(self.positional),
            int(self.history_size),
            str(self.pooling),
        )

    def training_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        logits, _ = module(batch["history"])
        return F.cross_entropy(logits, batch["target"], reduction="none")

    # ------------------------------------------------------------------ scoring
    def _logits(self, module: nn.Module, history: torch.Tensor) -> torch.Tensor:
        return module(history)[0]

    # ------------------------------------------------------------------ explanation
    def _template(self, event_id: str | None) -> str | None:
        if event_id == START_OF_WINDOW:
            return "<start of window>"
        return super()._template(event_id)

    def _explain_logits(
        self, module: nn.Module, history: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        logits, weights = module(history, need_weights=True)
        return logits, (attention_rollout(weights),)

    def _position_context(
        self, tokens: list[str], position: int, more: list[np.ndarray]
    ) -> dict[str, Any]:
        """The history events that weighed most in the prediction (attention rollout)."""
        share = more[0]
        h = int(self.history_size)
        attention = []
        for slot in top_positions(share, min(5, h)):
            src = position - h + int(slot)
            event = tokens[src] if src >= 0 else START_OF_WINDOW
            attention.append(
                {
                    "position": src if src >= 0 else None,
                    "event_id": event,
                    "template": self._template(event),
                    "weight": float(share[slot]),
                }
            )
        return {"attention": attention}

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Why each window was (not) flagged, one JSON-able dict per window, in order.

        Each dict has ``window_id``, ``score`` (largest rank), ``threshold``,
        ``is_anomaly`` and ``positions``: every prediction whose rank is above the
        threshold, with ``position``, ``line_id``, ``event_id``, ``template``, ``rank``,
        ``probability``, ``unseen``, ``expected`` (the ``top`` most probable events,
        default ``k``) and ``attention``: the history events that weighed most in the
        prediction (attention rollout, largest first, at most 5), each with
        ``position`` (None before the window start), ``line_id``, ``event_id``,
        ``template`` and ``weight``.
        """
        return self._explain_positions(windows, top, nested="attention")

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        state["vocab_"] = self.vocab_.to_list()
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.vocab_ = EventVocab.from_list(list(state["vocab_"]))
        super()._set_state(state, arrays)
