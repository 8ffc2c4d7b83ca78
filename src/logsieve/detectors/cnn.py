"""CNN log anomaly detection (Lu, Wei, Li, Wang, IEEE DASC 2018).

Lu, Wei, Li, Wang. *Detecting Anomaly in Big Data System Logs Using Convolutional Neural
Network.* IEEE DASC/PiCom/DataCom/CyberSciTech 2018. https://doi.org/10.1109/DASC/PiCom/DataCom/CyberSciTec.2018.00037

The paper's network, as logsieve builds it:

1. **logkey2vec**: every log key (event id) is mapped to a trainable vector by an
   embedding layer learned jointly with the classifier (``embedding="learned"``, the
   default). ``embedding="semantic"`` uses frozen template vectors instead (the same
   TF-IDF-weighted FastText vectors as :class:`~logsieve.detectors.logrobust.LogRobust`;
   LogADEmpirical's re-implementation feeds such semantic vectors), which gives unseen
   events a meaningful vector.
2. **Parallel 1-D convolutions** over the window's sequence of event vectors with
   kernel sizes 3, 4 and 5 (``kernel_sizes="3,4,5"``; ``num_filters`` = 128 each), ReLU,
   and **max-pooling over time** of every filter.
3. **Dropout** (0.5) and a **fully connected** layer -> softmax over {normal, anomaly};
   supervised cross-entropy on the window labels (Adam, lr 1e-3), or a noise-robust
   variant (``robust=``, see :mod:`logsieve.detectors.neural.robust`).

Sequence length: the paper pads the key sequences to one fixed length. Here the length
``seq_len_`` is fixed at fit time to the longest training window (at least the largest
kernel size, at most 512) unless ``max_len`` sets it; shorter windows are padded with a
zero vector at the end, longer ones keep their last ``seq_len_`` events. The padded
width is the same for every window, so a window's score does not depend on its batch.

Events unseen in training (learned embedding): they all share the code UNK. The paper's
training never updates that vector (no training window holds an unseen event), so an
unseen event would get the row's random initial values, and a window's score would
depend on them. logsieve trains it by word dropout (Kiperwasser & Goldberg, TACL 2016;
``unk_dropout=alpha``, their 0.25 by default): while training, each occurrence of an
event seen ``c`` times in the training windows becomes UNK with probability
``alpha / (alpha + c)``, so UNK learns what a rare event looks like. ``unk_dropout=0``
is the paper's behaviour. ``embedding="semantic"`` embeds an unseen event's template
instead.

Score = probability of the anomaly class; ``threshold="auto"`` flags ``score > 0.5``.
:meth:`CNN.explain` attributes the anomaly logit to positions: each filter's pooled
value times its weight towards "anomaly" is spread over the ``k`` events of the
n-gram where its maximum was taken.

Values not given in the paper's abstract are choices of this implementation (and
stated as such): embedding size 128 (``embedding_dim``), 128 filters per kernel size,
batch 64, 30 epochs over the DISTINCT labelled windows (each weighted by its count, the
same objective as one row per window), early stopping on the validation loss, and the
word dropout above.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from logsieve.detectors.base import check_positive_ints, explanations_by_row, resolve_seed
from logsieve.detectors.neural.robust import NetworkGroup, SupervisedTorchDetector
from logsieve.detectors.neural.semantic_table import EventSemantics, encode_codes
from logsieve.detectors.neural.trainer import Batch
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.semantic import list_embedders
from logsieve.features.sequence import (
    PAD,
    UNK,
    EventVocab,
    check_windows,
    distinct_windows,
    event_id_series,
)

logger = logging.getLogger(__name__)

__all__ = ["CNN", "LogKeyCNN", "parse_kernel_sizes"]

CITATION = (
    "Siyang Lu, Xiang Wei, Yandong Li, Liqiang Wang. Detecting Anomaly in Big Data System Logs "
    "Using Convolutional Neural Network. IEEE DASC 2018. "
    "https://doi.org/10.1109/DASC/PiCom/DataCom/CyberSciTec.2018.00037"
)
DESCRIPTION = (
    "Supervised CNN over event embeddings (logkey2vec), parallel 1-D convolutions and max-pooling"
)
MAX_SEQ_LEN = 512


def parse_kernel_sizes(value: str | Sequence[int]) -> tuple[int, ...]:
    """``"3,4,5"`` or ``(3, 4, 5)`` -> ``(3, 4, 5)``; :class:`LogsieveError` on bad values."""
    try:
        items = (
            [p for p in value.replace(" ", "").split(",") if p]
            if isinstance(value, str)
            else list(value)
        )
        sizes = tuple(int(x) for x in items)
    except (TypeError, ValueError) as exc:
        raise LogsieveError(
            f"kernel_sizes must be positive integers like '3,4,5', not {value!r}"
        ) from exc
    if not sizes or any(k < 1 for k in sizes) or any(isinstance(x, bool) for x in items):
        raise LogsieveError(f"kernel_sizes must be positive integers like '3,4,5', not {value!r}")
    return sizes


class LogKeyCNN(nn.Module):
    """Embedding (learned or given) -> parallel Conv1d + ReLU + max-pool -> dropout -> linear."""

    def __init__(
        self,
        input_dim: int,
        kernel_sizes: tuple[int, ...],
        num_filters: int,
        dropout: float,
        n_tokens: int | None = None,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, input_dim, padding_idx=PAD) if n_tokens else None
        self.convs = nn.ModuleList(nn.Conv1d(input_dim, num_filters, k) for k in kernel_sizes)
        self.dropout = nn.Dropout(float(dropout))
        self.out = nn.Linear(num_filters * len(kernel_sizes), 2)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features ``(batch, n_kernels * filters)`` and their argmax positions."""
        if self.embedding is not None:
            x = self.embedding(x)
        x = x.transpose(1, 2)  # (batch, dim, L)
        pooled, where = [], []
        for conv in self.convs:
            values, idx = F.relu(conv(x)).max(dim=2)
            pooled.append(values)
            where.append(idx)
        return torch.cat(pooled, 1), torch.cat(where, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of codes ``(batch, L)`` (learned embedding) or vectors ``(batch, L, dim)``."""
        return self.out(self.dropout(self.features(x)[0]))


@register_detector("cnn")
class CNN(SupervisedTorchDetector):
    """CNN over event sequences (Lu et al., DASC 2018), supervised.

    Parameters
    ----------
    embedding : {"learned", "semantic"}, default "learned"
        "learned": logkey2vec, a trainable embedding per event id (the paper).
        "semantic": frozen template vectors from ``embedder`` (needs ``templates`` in fit).
    embedder : str, default "fasttext"
        Template embedder for ``embedding="semantic"`` (see LogRobust).
    embedding_dim : int, default 128
        Size of the event vectors (learned embedding, or word vectors of the embedder).
    kernel_sizes : str, default "3,4,5"
        Comma-separated 1-D kernel sizes of the parallel convolutions.
    num_filters : int, default 128
        Filters per kernel size.
    dropout : float, default 0.5
    max_len : int or None, default None
        Fixed sequence length; None: the longest training window (between the largest
        kernel size and 512).
    unk_dropout : float, default 0.25
        ``alpha`` of the word dropout that trains the vector of unseen events (learned
        embedding only; Kiperwasser & Goldberg's value). 0: off, as in the paper.
    robust, forget_rate, selection, ramp_epochs, gce_q, cl_folds
        Noise-robust training (:class:`~logsieve.detectors.neural.robust.SupervisedTorchDetector`).
    ensemble : int, default 1
        Networks averaged (a deep ensemble; see SupervisedTorchDetector). The paper trains one.
    epochs, batch_size, lr, weight_decay, patience, device, num_threads
        Training; defaults 30 epochs, batch 64, Adam lr 1e-3, patience 5.
    threshold, contamination, valid_fraction, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`; ``threshold="auto"`` is 0.5.

    Attributes
    ----------
    vocab_ : EventVocab
        Event ids of the training windows (learned embedding).
    semantics_ : EventSemantics
        Event vectors (semantic embedding).
    seq_len_ : int
        Padded sequence length.
    """

    description = DESCRIPTION
    citation = CITATION
    input_kind = "sequence"

    embedding: str = "learned"
    embedder: str = "fasttext"
    embedding_dim: int = 128
    kernel_sizes: str = "3,4,5"
    num_filters: int = 128
    dropout: float = 0.5
    max_len: int | None = None
    unk_dropout: float = 0.25
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    patience: int | None = 5

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {
            "embedding_dim": 8,
            "num_filters": 8,
            "kernel_sizes": "2,3",
            "epochs": 30,
            "batch_size": 8,
            "lr": 1e-2,
            "patience": None,
            "num_threads": 1,
        }

    # ------------------------------------------------------------------ params
    def _validate_params(self) -> None:
        super()._validate_params()
        if self.embedding not in ("learned", "semantic"):
            raise LogsieveError(
                f"embedding must be 'learned' or 'semantic', not {self.embedding!r}"
            )
        if self.embedding == "semantic" and self.embedder not in list_embedders():
            raise LogsieveError(
                f"embedder must be one of {', '.join(list_embedders())}, not {self.embedder!r}"
            )
        parse_kernel_sizes(self.kernel_sizes)
        check_positive_ints(self, "embedding_dim", "num_filters")
        if self.max_len is not None and (isinstance(self.max_len, bool) or int(self.max_len) < 1):
            raise LogsieveError(f"max_len must be a positive integer or None, not {self.max_len!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise LogsieveError(f"dropout must be in [0, 1), not {self.dropout!r}")
        if isinstance(self.unk_dropout, bool) or not float(self.unk_dropout) >= 0.0:
            raise LogsieveError(f"unk_dropout must be a number >= 0, not {self.unk_dropout!r}")

    @property
    def _kernels(self) -> tuple[int, ...]:
        return parse_kernel_sizes(self.kernel_sizes)

    # ------------------------------------------------------------------ data
    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        vocab = EventVocab.fit(train)
        if vocab.n_keys == 0:
            raise LogsieveError("CNN: the training windows hold no event ids")
        self._unk_rate: torch.Tensor | None = None
        if self.embedding == "semantic":
            seed = resolve_seed(self.random_state, default=0)
            self.semantics_ = EventSemantics.fit(
                self.templates_,
                vocab.tokens,
                embedder=self.embedder,
                dim=int(self.embedding_dim),
                seed=seed,
                owner="CNN",
            )
        else:
            self.vocab_ = vocab
            self._unk_rate = self._word_dropout_rates(train)
        longest = int(cast(int, train.get_column("event_ids").list.len().max()) or 0)
        width = int(self.max_len) if self.max_len is not None else min(longest, MAX_SEQ_LEN)
        self.seq_len_ = max(width, max(self._kernels))
        arrays = self._training_arrays(train)
        logger.info(
            "CNN: %d training rows (%d windows), sequence length %d",
            len(arrays["label"]), int(arrays["weight"].sum()), self.seq_len_,
        )  # fmt: skip
        return arrays

    def _word_dropout_rates(self, train: pl.DataFrame) -> torch.Tensor | None:
        """Per-code chance ``alpha / (alpha + count)`` of turning UNK in training (None: off)."""
        alpha = float(self.unk_dropout)
        if alpha <= 0.0:
            return None
        counts = train.get_column("event_ids").explode().drop_nulls().value_counts(name="n")
        rates = np.zeros(len(self.vocab_), dtype=np.float32)  # PAD and UNK stay 0
        for event, n in counts.iter_rows():
            code = self.vocab_.index(event)
            if code not in (PAD, UNK):
                rates[code] = alpha / (alpha + float(n))
        return torch.from_numpy(rates)

    @property
    def _code_vocab(self) -> EventVocab:
        return self.semantics_.vocab if self.embedding == "semantic" else self.vocab_

    def _encode(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        codes, lengths = encode_codes(self._code_vocab, windows, self.seq_len_, width=self.seq_len_)
        return {"codes": codes, "length": lengths}

    def add_templates(self, templates: Mapping[str, str] | pl.DataFrame) -> int:
        """``embedding="semantic"`` only: embed templates of new events; returns how many."""
        self._check_fitted()
        if self.embedding != "semantic":
            raise LogsieveError(
                "add_templates needs a CNN with embedding='semantic' (learned ids cannot embed "
                "text)"
            )
        return self.semantics_.add_templates(templates)

    # ------------------------------------------------------------------ network
    def build_network(self) -> nn.Module:
        if self.embedding == "semantic":
            return LogKeyCNN(
                self.semantics_.dim, self._kernels, int(self.num_filters), float(self.dropout)
            )
        return LogKeyCNN(
            int(self.embedding_dim),
            self._kernels,
            int(self.num_filters),
            float(self.dropout),
            n_tokens=len(self.vocab_),
        )

    def _inputs(self, batch: Batch) -> torch.Tensor:
        codes = batch["codes"]
        if self.embedding == "semantic":
            return self.semantics_.table(codes.device)[codes]
        return codes

    def network_logits(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        rates = getattr(self, "_unk_rate", None)
        if net.training and rates is not None and self.embedding == "learned":
            codes = batch["codes"]
            drop = torch.rand(codes.shape, device=codes.device) < rates.to(codes.device)[codes]
            return net(codes.masked_fill(drop, UNK))
        return net(self._inputs(batch))

    # ------------------------------------------------------------------ explanation
    def _contribution_step(
        self, module: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Anomaly probability and per-position contributions to the anomaly-vs-normal logit."""
        x = self._inputs(batch)
        width = batch["codes"].shape[1]
        probs, contrib = [], []
        for member in cast(NetworkGroup, module).nets:
            net = cast(LogKeyCNN, member)
            feats, where = net.features(x)
            probs.append(torch.softmax(net.out(feats), dim=1)[:, 1])
            w = net.out.weight[1] - net.out.weight[0]  # (n_features,)
            c = feats * w[None, :]
            spans = torch.tensor(
                [k for k in self._kernels for _ in range(int(self.num_filters))], device=c.device
            )
            total = torch.zeros(c.shape[0], width, device=c.device, dtype=c.dtype)
            for k in sorted(set(spans.tolist())):
                sel = spans == k
                for j in range(k):  # spread each filter's share over the k events of its n-gram
                    total.scatter_add_(1, (where[:, sel] + j).clamp_max(width - 1), c[:, sel] / k)
            contrib.append(total)
        return torch.stack(probs).mean(0).cpu(), torch.stack(contrib).mean(0).cpu()

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Why each window was (not) flagged: the events whose n-grams pushed towards "anomaly".

        One JSON-able dict per window, in order, with ``window_id``, ``score``,
        ``threshold``, ``is_anomaly`` and ``positions``: up to ``top`` (default 5; negative:
        all) events with a positive contribution to the anomaly-vs-normal logit, largest
        first, each with ``position`` (0-based in the window), ``line_id``, ``event_id``,
        ``template``, ``contribution`` and ``known`` (False for an event id unseen in
        training).
        """
        self._check_fitted()
        windows = check_windows(windows)
        k = 5 if not top else int(top)
        distinct, inverse, _ = distinct_windows(windows)
        arrays = self._encode(distinct)
        out = self._infer(self._contribution_step, arrays)
        scores = torch.cat([o[0] for o in out]).numpy().astype(np.float64) if out else np.zeros(0)
        contrib = torch.cat([o[1] for o in out]).numpy() if out else np.zeros((0, self.seq_len_))
        tokens = event_id_series(distinct).to_list()
        details: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for u in range(distinct.height):
            seq = tokens[u]
            kept = min(len(seq), self.seq_len_)
            offset = len(seq) - kept
            c = contrib[u, :kept]
            order = [j for j in np.argsort(-c, kind="stable").tolist() if c[j] > 0]
            if k > 0:
                order = order[:k]
            for j in order:
                event = seq[offset + j]
                details[u].append(
                    {
                        "position": offset + j,
                        "event_id": event,
                        "template": self.templates_.get(event),
                        "contribution": float(c[j]),
                        "known": int(arrays["codes"][u, j]) not in (PAD, UNK),
                    }
                )
        return explanations_by_row(self, windows, inverse, scores, details, "positions")

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        state["seq_len_"] = int(self.seq_len_)
        if self.embedding == "semantic":
            sem_state, sem_arrays = self.semantics_.to_state()
            state["semantics_"] = sem_state
            arrays.update(sem_arrays)
        else:
            state["vocab_"] = self.vocab_.to_list()
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.seq_len_ = int(state["seq_len_"])
        if self.embedding == "semantic":
            self.semantics_ = EventSemantics.from_state(state["semantics_"], arrays)
        else:
            self.vocab_ = EventVocab.from_list(list(state["vocab_"]))
        super()._set_state(state, arrays)
