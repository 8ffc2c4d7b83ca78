"""LogAnomaly (Meng et al., IJCAI 2019): sequential AND quantitative next-event model.

LogAnomaly predicts the next event of a window from two views of the ``h`` previous
events and flags an event that is not among the ``g`` most probable predictions (the
top-g rule of DeepLog):

- sequential pattern: an LSTM reads the *semantic vectors* of the ``h`` previous
  events' templates (template2vec), so that events with similar meaning look alike to
  the model and a new template can be represented without retraining;
- quantitative pattern: a second LSTM reads *count vectors* of the same history (how
  often each event occurred), which captures invariants such as "one close per open";
- the last hidden states of both LSTMs are concatenated and a linear layer gives the
  logits of the next event (plus, with ``session_bounds``, an end-of-window marker).

Defaults and where they come from
---------------------------------
- ``history_size=10``: the sliding-window length of logdeep's ``demo/loganomaly.py``
  (the re-implementation PLELog's authors used for their baselines; LogADEmpirical's
  current ``config/loganomaly.yaml`` uses 20);
- ``num_layers=2``, ``hidden_size=128`` (per LSTM), ``dropout=0.1``, Adam ``lr=1e-3``,
  20 epochs: LogADEmpirical's ``config/loganomaly.yaml`` (its batch size is 512; ours
  is 256 because we train on distinct weighted pairs, i.e. fewer examples per epoch);
- ``num_candidates=9`` (``g``): LogADEmpirical's ``topk`` (DeepLog's ``g``);
- ``embedding_dim=100``: the dimension of the template vectors.

Deviations from the paper (and why)
-----------------------------------
- template2vec: the paper trains dLCE word vectors with WordNet synonym/antonym
  constraints. Here :class:`~logsieve.features.semantic.Template2VecEmbedder` trains
  word2vec on the training templates and counter-fits it with a hand-written
  log-domain lexicon (nothing is downloaded); a template vector is the TF-IDF-weighted
  mean of its word vectors. ``embedder="fasttext"`` does the same with FastText
  (subword) vectors, ``"word2vec"`` without lexical constraints. LogADEmpirical used
  300-d pretrained vectors; ours are trained on the templates of one log only (tens to
  hundreds of texts), where 100 dimensions are plenty.
- quantitative input: at history step ``j`` the quantitative LSTM reads the counts of
  the events ``0..j`` of the history, so its last input is the count vector of the
  whole history (the paper's count vector). logdeep instead feeds the count vector as a
  sequence of ``n_events`` scalars.
- templates unseen at training time: the paper matches a new template to the most
  similar known one. Here any template passed to :meth:`LogAnomaly.fit` (``templates=``)
  or later to :meth:`LogAnomaly.add_templates` is embedded with the fitted embedder, so
  an unseen event still gets a semantic vector in the *history* (Template2Vec/word2vec
  need at least one known word; ``embedder="fasttext"`` also covers unknown words
  through character n-grams). As the *predicted* event an unseen event is always an
  anomaly (the output layer only knows training events), unless ``match_unseen`` is
  set: then an unseen event whose vector has a cosine similarity of at least
  ``match_unseen`` with a training event is treated as that event everywhere (the
  paper's approximate template matching).
- events without a usable vector (no template given, or a template without any word
  the embedder knows) get a deterministic pseudo-random vector derived from their id,
  and training events whose templates give *identical* vectors (e.g. templates that
  differ only in numbers, which the tokenizer drops) get a small id-derived offset, so
  that distinct events never collapse into one input. The quantitative LSTM and the
  output layer work on event ids anyway.

Scores, threshold and explanations follow DeepLog exactly: a window's score is the
largest 0-based rank of an actual event among the predictions (unseen events get rank
``max(n_outputs, g)``), so ``threshold="auto"`` (``g - 0.5``) is the top-g rule.
Training uses each distinct ``(history, next event)`` pair once, weighted by its
count; scoring computes each distinct window, and each distinct pair, once.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from logsieve.detectors.base import check_positive_ints
from logsieve.detectors.deeplog import DeepLog
from logsieve.detectors.neural.next_event import END_OF_WINDOW, NextEventMixin
from logsieve.detectors.neural.semantic_events import (
    SEMANTIC_EMBEDDERS,
    TIE_BREAK,
    SemanticEventsMixin,
    id_vectors,
    make_embedder,
)
from logsieve.detectors.neural.trainer import Batch, TorchDetector
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.sequence import (
    N_SPECIAL,
    PAD,
    UNK,
    EncodedWindows,
    Pairs,
    append_marker,
    next_event_pairs,
)

logger = logging.getLogger(__name__)

__all__ = [
    "SEMANTIC_EMBEDDERS",
    "TIE_BREAK",
    "LogAnomaly",
    "SemanticEventsMixin",
    "SemanticQuantLSTM",
    "id_vectors",
    "make_embedder",
]

CITATION = (
    "Weibin Meng, Ying Liu, Yichen Zhu, Shenglin Zhang, Dan Pei, Yuqing Liu, Yihao Chen, Ruizhi "
    "Zhang, Shimin Tao, Pei Sun, Rong Zhou. LogAnomaly: Unsupervised Detection of Sequential and "
    "Quantitative Anomalies in Unstructured Logs. IJCAI 2019. "
    "https://doi.org/10.24963/ijcai.2019/658"
)


class SemanticQuantLSTM(nn.Module):
    """Two stacked LSTMs (semantic vectors, count vectors) -> logits of the next event."""

    def __init__(
        self,
        semantic_dim: int,
        n_counts: int,
        n_outputs: int,
        hidden_size: int,
        num_layers: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        drop = float(dropout) if num_layers > 1 else 0.0
        self.semantic = nn.LSTM(
            semantic_dim, hidden_size, num_layers, batch_first=True, dropout=drop
        )
        self.quantitative = nn.LSTM(
            n_counts, hidden_size, num_layers, batch_first=True, dropout=drop
        )
        self.out = nn.Linear(2 * hidden_size, n_outputs)

    def forward(self, semantic: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        a, _ = self.semantic(semantic)
        b, _ = self.quantitative(counts)
        return self.out(torch.cat([a[:, -1], b[:, -1]], dim=1))


@register_detector("loganomaly")
class LogAnomaly(SemanticEventsMixin, NextEventMixin, TorchDetector):
    """LogAnomaly: semantic + quantitative LSTMs, top-g next-event rule (Meng et al., IJCAI 2019).

    Parameters
    ----------
    history_size : int, default 10
        ``h``: events of history.
    hidden_size : int, default 128
        Units per layer of each LSTM.
    num_layers : int, default 2
    num_candidates : int, default 9
        ``g``: an event is normal when among the ``g`` most probable predictions.
    dropout : float, default 0.1
        Between stacked LSTM layers.
    embedder : {"template2vec", "word2vec", "fasttext"}, default "template2vec"
        Word vectors behind the template vectors (see the module docstring).
    embedding_dim : int, default 100
        Dimension of the template vectors.
    match_unseen : float or None, default None
        None: an event unseen in training is an anomaly wherever it is predicted. A
        cosine similarity in (0, 1]: an unseen event whose template vector is at least
        that similar to a training event's is treated as that event (the paper's
        matching of new templates); needs the new templates (``templates=`` at fit or
        :meth:`add_templates`).
    session_bounds : bool, default True
        As in :class:`~logsieve.detectors.deeplog.DeepLog`: every event is predicted
        (the first ones from a padded history) plus an end-of-window marker; False
        predicts only positions with a full history (stream windows).
    epochs, batch_size, lr, weight_decay, patience, device, num_threads
        Training (see :class:`~logsieve.detectors.neural.trainer.TorchDetector`); defaults
        here 20 epochs (LogADEmpirical's ``max_epoch``), batch 256, Adam lr 1e-3.
    threshold, contamination, valid_fraction, include_anomalies, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`; ``"auto"`` = top-g.

    Attributes
    ----------
    vocab_, embedder_, event_vectors_, extra_event_ids_
        See :class:`SemanticEventsMixin`.
    module_ : SemanticQuantLSTM
    """

    description = (
        "semantic (template2vec) and quantitative (count) LSTMs predict the next event; top-g rule"
    )
    citation = CITATION
    input_kind = "semantic"
    requires_labels = False
    score_batch_size: ClassVar[int] = 2048

    history_size: int = 10
    hidden_size: int = 128
    num_layers: int = 2
    num_candidates: int = 9
    dropout: float = 0.1
    embedder: str = "template2vec"
    embedding_dim: int = 100
    match_unseen: float | None = None
    session_bounds: bool = True
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    num_threads: int | None = 1

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {**DeepLog._test_params(), "embedding_dim": 8}

    # ------------------------------------------------------------------ params
    def _validate_params(self) -> None:
        super()._validate_params()
        check_positive_ints(self, "history_size", "hidden_size", "num_layers", "num_candidates")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise LogsieveError(f"dropout must be in [0, 1), not {self.dropout!r}")
        if self.match_unseen is not None and not 0.0 < float(self.match_unseen) <= 1.0:
            raise LogsieveError(
                f"match_unseen must be None or in (0, 1], not {self.match_unseen!r}"
            )
        self._validate_semantic_params()

    # ------------------------------------------------------------------ encoding
    @property
    def oov_rank_(self) -> int:
        """Rank given to an event the model cannot predict: always outside the top-g.

        ``max(n_outputs_, g)``: unlike :class:`~logsieve.detectors.deeplog.DeepLog`'s,
        it counts the two special indices too (kept, so that scores do not change).
        """
        return max(self.n_outputs_, int(self.num_candidates))

    def _match_codes(self) -> np.ndarray:
        """Input code -> code used by the model (unseen events matched to training events)."""
        vocab = self._input_vocab()
        codes = np.arange(len(vocab), dtype=np.int32)
        n_extra = len(self.extra_event_ids_)
        if self.match_unseen is None or n_extra == 0:
            return codes
        table = self._semantic_table()
        n = len(self.vocab_)
        known = table[N_SPECIAL:n]
        extra = table[n:]
        kn = known / np.maximum(np.linalg.norm(known, axis=1, keepdims=True), 1e-12)
        ex = extra / np.maximum(np.linalg.norm(extra, axis=1, keepdims=True), 1e-12)
        sim = ex @ kn.T
        best = sim.argmax(axis=1)
        ok = sim[np.arange(n_extra), best] >= float(self.match_unseen)
        codes[n:] = np.where(ok, best + N_SPECIAL, codes[n:])
        return codes

    def _encode(self, windows: pl.DataFrame) -> EncodedWindows:
        enc = self._input_vocab().encode(windows)
        if self.match_unseen is not None and self.extra_event_ids_:
            enc = EncodedWindows(self._match_codes()[enc.codes], enc.lengths)
        return enc

    def _pairs(self, windows: pl.DataFrame) -> Pairs:
        """Next-event pairs: histories in input codes, targets in output indices (UNK: unknown)."""
        enc = self._encode(windows)
        marker = len(self._input_vocab())
        if self.session_bounds:
            pairs = next_event_pairs(append_marker(enc, marker), self.history_size, 0)
        else:
            pairs = next_event_pairs(enc, self.history_size, self.history_size)
        n = len(self.vocab_)
        t = pairs.target
        target = np.where(t == marker, self._end_code, np.where(t >= n, UNK, t)).astype(np.int32)
        return Pairs(pairs.history, target, pairs.window, pairs.position)

    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        self._fit_semantics(train)
        arrays = self._pair_arrays(train)
        logger.info(
            "LogAnomaly: %d events, %d distinct training pairs (%d in all), vectors of dim %d",
            self.vocab_.n_keys,
            len(arrays["target"]),
            int(arrays["weight"].sum()),
            self.semantic_dim_,
        )
        return arrays

    # ------------------------------------------------------------------ network
    def build_module(self) -> nn.Module:
        return SemanticQuantLSTM(
            self.semantic_dim_,
            len(self.vocab_),
            self.n_outputs_,
            self.hidden_size,
            self.num_layers,
            self.dropout,
        )

    def _inputs(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Semantic vectors and cumulative count vectors of a batch of histories."""
        table = self._table_tensor(history.device)
        semantic = table[history]
        n = len(self.vocab_)
        ids = torch.where(history >= n, torch.full_like(history, UNK), history)
        counts = F.one_hot(ids, n).to(semantic.dtype).cumsum(dim=1)
        counts[..., PAD] = 0.0
        return semantic, counts

    def _logits(self, module: nn.Module, history: torch.Tensor) -> torch.Tensor:
        return module(*self._inputs(history))

    def training_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(
            self._logits(module, batch["history"]), batch["target"], reduction="none"
        )

    # ------------------------------------------------------------------ explanation
    def _position_notes(
        self, actual: str, position: int, target: int, unseen: bool
    ) -> dict[str, Any]:
        predicted_as = self._key_name(target) if not unseen else None
        matched = predicted_as if predicted_as not in (None, actual, END_OF_WINDOW) else None
        return {"matched_event_id": matched}

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Why each window was (not) flagged, one JSON-able dict per window, in order.

        Same layout as :meth:`DeepLog.explain <logsieve.detectors.deeplog.DeepLog.explain>`:
        ``window_id``, ``score``, ``threshold``, ``is_anomaly`` and ``positions`` (every
        position whose rank is above the threshold) with ``position``, ``line_id``,
        ``event_id``, ``template``, ``rank``, ``probability`` of the actual event,
        ``unseen``, ``matched_event_id`` (the training event an unseen event was matched
        to with ``match_unseen``, else None) and ``expected``: the ``top`` (default
        ``g``) most probable events with ``event_id``, ``template``, ``probability``.
        """
        return self._explain_positions(windows, top)
