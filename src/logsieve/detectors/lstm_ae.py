"""LSTM sequence autoencoder over the event ids of a window (``lstm_ae``).

Reconstructing categorical ids with cross-entropy (instead of numeric features with
MSE) is our choice for event ids; the score is the reconstruction negative
log-likelihood of the window's ids.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from logsieve.detectors.autoencoders import ZPETTRY
from logsieve.detectors.base import (
    check_choice,
    check_positive_ints,
    explanations_by_row,
)
from logsieve.detectors.neural.autoencoder_parts import chunk_sequences
from logsieve.detectors.neural.trainer import Batch, TorchDetector
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.sequence import (
    PAD,
    UNK,
    EventVocab,
    check_windows,
    distinct_windows,
    unique_rows,
)

logger = logging.getLogger(__name__)

__all__ = ["LSTMAutoencoder", "SeqAE", "seq_loss", "token_nll"]


class SeqAE(nn.Module):
    """Sequence autoencoder over token codes: LSTM encoder -> latent -> LSTM decoder -> logits.

    The decoder reads the latent vector (projected) at every step, so everything it
    reconstructs must pass through the bottleneck (no teacher forcing).
    """

    def __init__(
        self, n_tokens: int, embedding_dim: int, hidden_size: int, latent_dim: int
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, embedding_dim, padding_idx=PAD)
        self.encoder = nn.LSTM(embedding_dim, hidden_size, batch_first=True)
        self.to_latent = nn.Linear(hidden_size, latent_dim)
        self.from_latent = nn.Linear(latent_dim, hidden_size)
        self.decoder = nn.LSTM(hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, n_tokens)

    def encode(self, codes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.encoder(self.embedding(codes))
        last = hidden[torch.arange(len(codes), device=codes.device), (lengths - 1).clamp_min(0)]
        return torch.tanh(self.to_latent(last))

    def forward(self, codes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        z = self.from_latent(self.encode(codes, lengths))
        steps = z[:, None, :].expand(-1, codes.shape[1], -1)
        hidden, _ = self.decoder(steps)
        return self.out(hidden)


def token_nll(module: nn.Module, batch: Batch) -> torch.Tensor:
    """Per-position negative log-likelihood of the actual codes, 0 on padding: (batch, L)."""
    codes, lengths = batch["codes"], batch["lengths"]
    logits = module(codes, lengths)
    nll = F.cross_entropy(logits.transpose(1, 2), codes, reduction="none")
    mask = torch.arange(codes.shape[1], device=codes.device)[None, :] < lengths[:, None]
    return nll * mask


def seq_loss(module: nn.Module, batch: Batch) -> torch.Tensor:
    """Per-example mean reconstruction NLL over the real positions."""
    return token_nll(module, batch).sum(dim=1) / batch["lengths"].clamp_min(1)


@register_detector("lstm_ae")
class LSTMAutoencoder(TorchDetector):
    """LSTM sequence autoencoder over the event ids of a window.

    An LSTM encoder compresses the (embedded) ids into one latent vector; an LSTM
    decoder fed with that vector at every step reconstructs them (a softmax over the
    vocabulary per position). The score is the reconstruction negative log-likelihood
    of the window's ids (mean over positions, or the worst one).

    Parameters
    ----------
    embedding_dim : int, default 16
    hidden_size : int, default 64
        LSTM units of the encoder and of the decoder.
    latent_dim : int, default 16
        Bottleneck between encoder and decoder (tanh).
    max_len : int, default 50
        Windows longer than this are cut into consecutive chunks of ``max_len`` ids,
        each reconstructed on its own (the window's score pools all its positions).
    reduce : {"mean", "max"}, default "mean"
        Window score: the mean reconstruction NLL over its positions, or the worst one.
    epochs, batch_size, lr, weight_decay, patience, device, num_threads
        Training, over DISTINCT chunks weighted by their counts (defaults: 50 epochs,
        batch 32, Adam lr 0.005, patience 5, one CPU thread).
    threshold, contamination, valid_fraction, include_anomalies, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`.

    Ids never seen in training are encoded as the unknown index, whose embedding and
    output were never trained, so they reconstruct badly and raise the score.
    """

    description = (
        "LSTM sequence autoencoder over event ids; score = reconstruction negative log-likelihood"
    )
    citation = ZPETTRY
    input_kind = "sequence"
    requires_labels = False

    embedding_dim: int = 16
    hidden_size: int = 64
    latent_dim: int = 16
    max_len: int = 50
    reduce: str = "mean"
    epochs: int = 50
    batch_size: int = 32
    lr: float = 5e-3
    patience: int | None = 5
    num_threads: int | None = 1

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {
            "embedding_dim": 8,
            "hidden_size": 16,
            "latent_dim": 8,
            "max_len": 16,
            "epochs": 100,
            "batch_size": 16,
            "lr": 2e-2,
            "patience": 1000,
        }

    def _validate_params(self) -> None:
        super()._validate_params()
        check_positive_ints(self, "embedding_dim", "hidden_size", "latent_dim", "max_len")
        check_choice(self, "reduce", ("mean", "max"))

    def _chunks(self, windows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return chunk_sequences(self.vocab_.encode(windows), int(self.max_len))

    def _chunk_arrays(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        distinct, _, counts = distinct_windows(windows)
        codes, _, owner = self._chunks(distinct)
        uniq, inverse = unique_rows(codes)
        weight = np.bincount(inverse, weights=counts[owner].astype(np.float64), minlength=len(uniq))
        return {
            "codes": uniq.astype(np.int64),
            "lengths": (uniq != PAD).sum(axis=1).astype(np.int64),
            "weight": weight.astype(np.float32),
        }

    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        self.vocab_ = EventVocab.fit(train)
        if self.vocab_.n_keys == 0:
            raise LogsieveError("lstm_ae: the training windows hold no event ids")
        arrays = self._chunk_arrays(train)
        logger.info(
            "LSTMAutoencoder: %d keys, %d distinct training chunks",
            self.vocab_.n_keys,
            len(arrays["codes"]),
        )
        return arrays

    def _prepare(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        return self._chunk_arrays(windows)

    def build_module(self) -> nn.Module:
        return SeqAE(len(self.vocab_), self.embedding_dim, self.hidden_size, self.latent_dim)

    def training_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        return seq_loss(module, batch)

    def _position_nll(
        self, windows: pl.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(codes, lengths, owner, nll) of every chunk of ``windows``; nll is (m, max_len)."""
        codes, lengths, owner = self._chunks(windows)
        if len(codes) == 0:
            return codes, lengths, owner, np.zeros(codes.shape, dtype=np.float64)
        uniq, inverse = unique_rows(codes)
        ulen = (uniq != PAD).sum(axis=1).astype(np.int64)
        parts = self._infer(
            lambda m, b: token_nll(m, b).cpu(), {"codes": uniq.astype(np.int64), "lengths": ulen}
        )
        nll = torch.cat(parts).numpy().astype(np.float64)
        return codes, lengths, owner, nll[inverse]

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        _, lengths, owner, nll = self._position_nll(windows)
        return self._window_scores(lengths, owner, nll, windows.height)

    def _window_scores(
        self, lengths: np.ndarray, owner: np.ndarray, nll: np.ndarray, n: int
    ) -> np.ndarray:
        """Window scores from :meth:`_position_nll` (mean or max over the positions)."""
        scores = np.zeros(n, dtype=np.float64)
        if len(owner) == 0:
            return scores
        if self.reduce == "max":
            np.maximum.at(scores, owner, nll.max(axis=1))
            return scores
        total = np.bincount(owner, weights=nll.sum(axis=1), minlength=n)
        count = np.bincount(owner, weights=lengths.astype(np.float64), minlength=n)
        np.divide(total, count, out=scores, where=count > 0)
        return scores

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Per window: score, threshold, is_anomaly and ``positions``, the ``top`` (default 3)
        worst-reconstructed positions (``position``, ``event_id`` (None when unseen in
        training), ``template``, ``nll``, ``probability`` of the actual id)."""
        self._check_fitted()
        windows = check_windows(windows)
        distinct, inverse, _ = distinct_windows(windows)
        codes, lengths, owner, nll = self._position_nll(distinct)
        scores = self._window_scores(lengths, owner, nll, distinct.height)
        k = int(top) if top is not None else 3
        raw_ids = distinct.get_column("event_ids").to_list()
        # every real position: (nll, position in its window, code), grouped by window
        chunk, slot = np.nonzero(codes != PAD)
        first = np.searchsorted(owner, owner)  # owner is sorted: first chunk of each window
        pos = (chunk - first[chunk]) * int(self.max_len) + slot
        per_window: dict[int, list[tuple[float, int, int]]] = {}
        for w, v, p, c in zip(
            owner[chunk].tolist(),
            nll[chunk, slot].tolist(),
            pos.tolist(),
            codes[chunk, slot].tolist(),
            strict=True,
        ):
            per_window.setdefault(w, []).append((v, p, c))
        details = {}
        for u, entries in per_window.items():
            worst = sorted(entries, key=lambda t: (-t[0], t[1]))[: max(1, k)]
            details[u] = [
                {
                    "position": pos,
                    "event_id": raw_ids[u][pos],
                    "unseen": code == UNK,
                    "template": self.templates_.get(raw_ids[u][pos]),
                    "nll": value,
                    "probability": math.exp(-value),
                }
                for value, pos, code in worst
            ]
        return explanations_by_row(
            self, windows, inverse, scores, details, "positions", line_ids=False
        )

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        state["vocab_"] = self.vocab_.to_list()
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.vocab_ = EventVocab.from_list(list(state["vocab_"]))
        super()._set_state(state, arrays)
