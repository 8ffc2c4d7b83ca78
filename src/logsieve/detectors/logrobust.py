"""LogRobust (Zhang et al., ESEC/FSE 2019): attention Bi-LSTM over semantic event vectors.

Each event is its template's TF-IDF-weighted word-vector average, so events reworded
or unseen in training still get a meaningful vector, which is what makes the model
robust to unstable logs; a supervised attention Bi-LSTM then classifies the window.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import polars as pl
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from logsieve.detectors.base import (
    _templates_dict,
    check_positive_ints,
    explanations_by_row,
    resolve_seed,
)
from logsieve.detectors.neural.robust import NetworkGroup, SupervisedTorchDetector
from logsieve.detectors.neural.semantic_table import NO_EMBEDDER, EventSemantics, encode_codes
from logsieve.detectors.neural.trainer import Batch
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.semantic import (
    list_embedders,
)
from logsieve.features.sequence import (
    PAD,
    UNK,
    EventVocab,
    check_windows,
    distinct_windows,
    event_id_series,
)

logger = logging.getLogger(__name__)

__all__ = ["AttentionBiLSTM", "LogRobust"]

CITATION = (
    "Xu Zhang, Yong Xu, Qingwei Lin, Bo Qiao, Hongyu Zhang, Yingnong Dang, Chunyu Xie, Xinsheng "
    "Yang, Qian Cheng, Ze Li, Junjie Chen, Xiaoting He, Randolph Yao, Jian-Guang Lou, Murali "
    "Chintalapati, Furao Shen, Dongmei Zhang. Robust Log-based Anomaly Detection on Unstable Log "
    "Data. ESEC/FSE 2019. https://doi.org/10.1145/3338906.3338931"
)
DESCRIPTION = (
    "Supervised attention Bi-LSTM over TF-IDF-weighted FastText template vectors; "
    "robust to unseen events"
)


# ====================================================================== network
class AttentionBiLSTM(nn.Module):
    """Bi-LSTM + additive attention + linear layer -> 2 logits (and the attention weights)."""

    def __init__(self, input_dim: int, hidden_size: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_dim,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=float(dropout) if num_layers > 1 else 0.0,
        )
        width = 2 * hidden_size
        self.attention = nn.Linear(width, width)
        self.context = nn.Linear(width, 1, bias=False)
        self.dropout = nn.Dropout(float(dropout))
        self.out = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (batch, L, dim), ``lengths`` (batch,) -> logits (batch, 2), attention (batch, L)"""
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hidden, _ = self.lstm(packed)
        hidden, _ = pad_packed_sequence(hidden, batch_first=True, total_length=x.shape[1])
        energy = self.context(torch.tanh(self.attention(hidden))).squeeze(-1)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        weights = torch.softmax(energy.masked_fill(~mask, float("-inf")), dim=1)
        pooled = (weights.unsqueeze(-1) * hidden).sum(1)
        return self.out(self.dropout(pooled)), weights


# ====================================================================== detector
@register_detector("logrobust")
class LogRobust(SupervisedTorchDetector):
    """LogRobust (Zhang et al., FSE 2019): supervised attention Bi-LSTM on semantic event vectors.

    1. Semantic vectorisation: a template's words (camelCase split, numbers and stop
       words dropped) are averaged with TF-IDF weights over FastText vectors. The paper
       uses 300-d vectors pretrained on Common Crawl; nothing is downloaded here, so
       FastText (100-d, subword n-grams 3..6) is trained on the templates of the
       training events (:class:`~logsieve.detectors.neural.semantic_table.EventSemantics`).
       A reworded template lands near its original through its words and n-grams; call
       :meth:`add_templates` with the templates of new events. The vectors are centred
       and scaled with the training events' mean and spread (averaged word vectors share
       one large common direction, which slows the LSTM down).
    2. Attention Bi-LSTM (1 layer of 64 units per direction; LogADEmpirical uses 2 of
       128): additive attention ``a_t = softmax(v . tanh(W h_t + b))`` weighs the hidden
       states, then a linear layer and softmax over {normal, anomaly}. Padding is
       excluded exactly (packed sequences, masked attention), so a score does not
       depend on the batch.
    3. Supervised cross-entropy (Adam, lr 3e-3) on distinct ``(event_ids, label)`` rows
       weighted by their counts, or a noise-robust variant (``robust=``).

    Score = probability of the anomaly class; ``threshold="auto"`` flags ``score > 0.5``.
    :meth:`explain` gives each position's attention weight with its line id and template.
    Without templates (or ``embedder="none"``) every event id gets a fixed pseudo-random
    vector (no semantics, so no help for unseen events).

    Parameters
    ----------
    embedder : {"fasttext", "word2vec", "template2vec", "sentence", "none"}, default "fasttext"
        Template embedding (fitted on the training events' templates; see above).
        "none": pseudo-random per-event vectors (no semantics).
    embedding_dim : int, default 100
        Word/template vector size (the paper's FastText vectors are 300-d; ignored by
        "sentence", whose size is the encoder's).
    hidden_size : int, default 64
        LSTM units per direction.
    num_layers : int, default 1
        Stacked Bi-LSTM layers.
    dropout : float, default 0.1
        Between LSTM layers and before the output layer.
    max_len : int or None, default 512
        Longer windows keep their last ``max_len`` events (None: no limit).
    robust, forget_rate, selection, ramp_epochs, gce_q, cl_folds
        Noise-robust training (:class:`~logsieve.detectors.neural.robust.SupervisedTorchDetector`).
    ensemble : int, default 1
        Networks averaged (a deep ensemble; see SupervisedTorchDetector). The paper trains one.
    epochs, batch_size, lr, weight_decay, patience, device, num_threads
        Training (:class:`~logsieve.detectors.neural.trainer.TorchDetector`). Defaults: 30 epochs
        over the distinct labelled windows, batch 64, Adam lr 3e-3, early stopping after
        5 epochs without a lower validation loss.
    threshold, contamination, valid_fraction, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`; ``threshold="auto"`` is 0.5.

    Attributes
    ----------
    semantics_ : EventSemantics
        Event vectors (and the fitted embedder for new templates).
    module_ : NetworkGroup
        One :class:`AttentionBiLSTM` (two with ``robust="coteaching"``).
    """

    description = DESCRIPTION
    citation = CITATION
    input_kind = "semantic"

    embedder: str = "fasttext"
    embedding_dim: int = 100
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.1
    max_len: int | None = 512
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    patience: int | None = 5

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        # the contract fixture's templates differ only in a number ("step 3 of task <*>"),
        # which word vectors cannot tell apart: the contract runs on per-event vectors
        return {
            "embedder": "none",
            "embedding_dim": 16,
            "hidden_size": 16,
            "num_layers": 1,
            "epochs": 20,
            "batch_size": 16,
            "lr": 2e-2,
            "patience": None,
            "num_threads": 1,
        }

    # ------------------------------------------------------------------ params
    def _validate_params(self) -> None:
        super()._validate_params()
        if self.embedder != NO_EMBEDDER and self.embedder not in list_embedders():
            raise LogsieveError(
                f"embedder must be one of {', '.join([*list_embedders(), NO_EMBEDDER])}, "
                f"not {self.embedder!r}"
            )
        check_positive_ints(self, "embedding_dim", "hidden_size", "num_layers")
        if self.max_len is not None and (isinstance(self.max_len, bool) or int(self.max_len) < 1):
            raise LogsieveError(f"max_len must be a positive integer or None, not {self.max_len!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise LogsieveError(f"dropout must be in [0, 1), not {self.dropout!r}")

    # ------------------------------------------------------------------ data
    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        train_ids = EventVocab.fit(train).tokens
        if not train_ids:
            raise LogsieveError("LogRobust: the training windows hold no event ids")
        seed = resolve_seed(self.random_state, default=0)
        self.semantics_ = EventSemantics.fit(
            self.templates_,
            train_ids,
            embedder=self.embedder,
            dim=int(self.embedding_dim),
            seed=seed,
            owner="LogRobust",
        )
        arrays = self._training_arrays(train)
        logger.info(
            "LogRobust: %d training rows (%d windows)",
            len(arrays["label"]),
            int(arrays["weight"].sum()),
        )
        return arrays

    def _encode(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        codes, lengths = encode_codes(self.semantics_.vocab, windows, self.max_len)
        return {"codes": codes, "length": lengths}

    def add_templates(self, templates: Mapping[str, str] | pl.DataFrame) -> int:
        """Embed templates of events unknown to the model (new log statements); returns how many.

        Events already known keep their vectors. The templates are also added to
        :attr:`templates_` (used in explanations).
        """
        self._check_fitted()
        added = self.semantics_.add_templates(templates)
        for e, t in _templates_dict(templates).items():
            self.templates_.setdefault(e, t)
        if added:
            logger.info("LogRobust: embedded %d new templates", added)
        return added

    # ------------------------------------------------------------------ network
    @property
    def _input_dim(self) -> int:
        return self.semantics_.dim

    def build_network(self) -> nn.Module:
        return AttentionBiLSTM(
            self._input_dim, int(self.hidden_size), int(self.num_layers), float(self.dropout)
        )

    def _forward(self, net: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        codes = batch["codes"]
        x = self.semantics_.table(codes.device)[codes]
        return net(x, batch["length"])

    def network_logits(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        return self._forward(net, batch)[0]

    # ------------------------------------------------------------------ explanation
    def _attention_step(self, module: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        probs, weights = [], []
        for net in cast(NetworkGroup, module).nets:
            logits, att = self._forward(net, batch)
            probs.append(torch.softmax(logits, dim=1)[:, 1])
            weights.append(att)
        return torch.stack(probs).mean(0).cpu(), torch.stack(weights).mean(0).cpu()

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Why each window was (not) flagged: the attention the model paid to each event.

        One JSON-able dict per window, in order, with ``window_id``, ``score``,
        ``threshold``, ``is_anomaly`` and ``attention``: the ``top`` positions (default
        and 0: 5; negative: every kept position) with the largest
        attention weight, largest first, each with ``position`` (0-based in the window),
        ``line_id`` (from ``line_ids`` when present), ``event_id``, ``template``,
        ``weight`` (the weights of a window sum to 1 over its kept events) and ``known``
        (False when the event has no vector: it contributed a zero vector). With
        co-teaching the weights are the mean of the two networks.
        """
        self._check_fitted()
        windows = check_windows(windows)
        k = 5 if not top else int(top)
        distinct, inverse, _ = distinct_windows(windows)
        arrays = self._encode(distinct)
        out = self._infer(self._attention_step, arrays)
        scores = torch.cat([o[0] for o in out]).numpy().astype(np.float64) if out else np.zeros(0)
        width = arrays["codes"].shape[1]
        att = (
            np.concatenate(
                [np.pad(o[1].numpy(), ((0, 0), (0, width - o[1].shape[1]))) for o in out]
            )
            if out
            else np.zeros((0, width))
        )
        tokens = event_id_series(distinct).to_list()
        details: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for u in range(distinct.height):
            seq = tokens[u]
            kept = int(arrays["length"][u]) if seq else 0
            offset = len(seq) - kept
            w = att[u, :kept]
            order = np.argsort(-w, kind="stable")
            if k > 0:
                order = order[:k]
            for j in order.tolist():
                event = seq[offset + j]
                details[u].append(
                    {
                        "position": offset + j,
                        "event_id": event,
                        "template": self.templates_.get(event),
                        "weight": float(w[j]),
                        "known": int(arrays["codes"][u, j]) not in (PAD, UNK),
                    }
                )
        return explanations_by_row(self, windows, inverse, scores, details, "attention")

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        sem_state, sem_arrays = self.semantics_.to_state()
        state["semantics_"] = sem_state
        arrays.update(sem_arrays)
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.semantics_ = EventSemantics.from_state(state["semantics_"], arrays)
        module_arrays = {k: v for k, v in arrays.items() if not k.startswith("semantics.")}
        super()._set_state(state, module_arrays)
