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
import math
import zlib
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from logsieve.detectors.base import _window_ids
from logsieve.detectors.deeplog import END_OF_WINDOW
from logsieve.detectors.registry import register_detector
from logsieve.detectors.trainer import Batch, TorchDetector
from logsieve.errors import LogsieveError, NotFittedError
from logsieve.features.semantic import (
    LOG_ANTONYMS,
    LOG_SYNONYMS,
    EventVectors,
    FastTextEmbedder,
    Template2VecEmbedder,
    TextEmbedder,
    Word2VecEmbedder,
    embedder_from_dict,
)
from logsieve.features.sequence import (
    N_SPECIAL,
    PAD,
    UNK,
    EncodedWindows,
    EventVocab,
    Pairs,
    append_marker,
    check_windows,
    count_pairs,
    distinct_windows,
    event_id_series,
    next_event_pairs,
)
from logsieve.schema import LINE_IDS, UNSEEN_EVENT_ID, UNSEEN_TEMPLATE

logger = logging.getLogger(__name__)

__all__ = ["SEMANTIC_EMBEDDERS", "LogAnomaly", "SemanticEventsMixin", "SemanticQuantLSTM", "make_embedder"]

CITATION = (
    "Weibin Meng, Ying Liu, Yichen Zhu, Shenglin Zhang, Dan Pei, Yuqing Liu, Yihao Chen, Ruizhi Zhang, "
    "Shimin Tao, Pei Sun, Rong Zhou. LogAnomaly: Unsupervised Detection of Sequential and Quantitative "
    "Anomalies in Unstructured Logs. IJCAI 2019. https://doi.org/10.24963/ijcai.2019/658"
)

#: embedders accepted by the ``embedder`` parameter of the semantic detectors
SEMANTIC_EMBEDDERS = ("template2vec", "word2vec", "fasttext")
#: size of the id-derived offset separating training events with identical vectors
#: (relative to the mean vector norm)
TIE_BREAK = 1.0


def make_embedder(kind: str, dim: int, seed: int) -> TextEmbedder:
    """A new embedder for the semantic detectors (see :data:`SEMANTIC_EMBEDDERS`).

    ``"fasttext"`` is counter-fitted with the same log lexicon as template2vec.
    """
    if kind == "template2vec":
        return Template2VecEmbedder(dim=dim, seed=seed)
    if kind == "word2vec":
        return Word2VecEmbedder(dim=dim, seed=seed)
    if kind == "fasttext":
        return FastTextEmbedder(dim=dim, seed=seed, synonyms=LOG_SYNONYMS, antonyms=LOG_ANTONYMS)
    raise LogsieveError(f"embedder must be one of {', '.join(SEMANTIC_EMBEDDERS)}, not {kind!r}")


def id_vectors(event_ids: tuple[str, ...] | list[str], dim: int, seed: int) -> np.ndarray:
    """Deterministic pseudo-random unit vectors, one per event id, shape ``(n, dim)``."""
    out = np.zeros((len(event_ids), dim), dtype=np.float64)
    for i, e in enumerate(event_ids):  # one small draw per distinct event id (not per line)
        v = np.random.default_rng([zlib.crc32(str(e).encode("utf-8")), int(seed)]).standard_normal(dim)
        out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
    return out.astype(np.float32)


def _usable_templates(items: Mapping[str, str | None]) -> dict[str, str]:
    return {
        str(e): str(t)
        for e, t in items.items()
        if t and str(e) != UNSEEN_EVENT_ID and str(t) != UNSEEN_TEMPLATE
    }


class SemanticEventsMixin:
    """Semantic event vectors of a detector: fitting, unseen templates, persistence.

    For detectors with the parameters ``embedder``, ``embedding_dim`` and
    ``random_state`` whose fitted ``templates_`` are set before ``_fit``. Fitted state:

    ``vocab_``
        :class:`EventVocab` of the training windows (what the model can predict / count).
    ``embedder_``
        The fitted :class:`TextEmbedder` (None when no template had a usable word).
    ``event_vectors_``
        :class:`EventVectors` of every event with a vector: the training events first,
        then the events added from templates unseen in training.
    ``extra_event_ids_``
        Those added events, in order. Input codes: the training vocabulary's codes,
        then ``len(vocab_) + i`` for ``extra_event_ids_[i]`` (see :meth:`_input_vocab`).
    """

    def _semantic_seed(self) -> int:
        seed = getattr(self, "_seed_cache", None)
        if seed is None:
            rs = self.random_state  # type: ignore[attr-defined]
            seed = int(rs) if rs is not None else int(np.random.SeedSequence().generate_state(1)[0])
            self._seed_cache = seed
        return seed

    def _validate_semantic_params(self) -> None:
        if self.embedder not in SEMANTIC_EMBEDDERS:  # type: ignore[attr-defined]
            raise LogsieveError(
                f"embedder must be one of {', '.join(SEMANTIC_EMBEDDERS)}, not {self.embedder!r}"  # type: ignore[attr-defined]
            )
        dim = self.embedding_dim  # type: ignore[attr-defined]
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise LogsieveError(f"embedding_dim must be a positive integer, not {dim!r}")

    def _fit_semantics(self, train: pl.DataFrame) -> None:
        """Fit the vocabulary, the embedder (on the training events' templates) and the vectors."""
        self._seed_cache = None
        seed = self._semantic_seed()
        vocab = EventVocab.fit(train)
        if vocab.n_keys == 0:
            raise LogsieveError(f"{type(self).__name__}: the training windows hold no event ids")
        dim = int(self.embedding_dim)  # type: ignore[attr-defined]
        templates: dict[str, str] = self.templates_  # type: ignore[attr-defined]
        texts = _usable_templates({e: templates.get(e) for e in vocab.tokens})
        embedder: TextEmbedder | None = None
        matrix = np.zeros((vocab.n_keys, dim), dtype=np.float32)
        if texts:
            candidate = make_embedder(self.embedder, dim, seed)  # type: ignore[attr-defined]
            try:
                candidate.fit(list(texts.values()))
                embedder = candidate
            except LogsieveError as exc:
                logger.warning("%s: no template vectors (%s); using id vectors", type(self).__name__, exc)
        if embedder is not None:
            ids = list(texts)
            vec = embedder.embed([texts[e] for e in ids])
            rows = np.array([vocab.index(e) - N_SPECIAL for e in ids], dtype=np.int64)
            matrix[rows] = vec
        elif not texts:
            logger.warning(
                "%s: no templates given (fit(..., templates=...)); every event gets an id-derived vector, "
                "so the model has no semantic information",
                type(self).__name__,
            )
        matrix = self._separate_vectors(vocab.tokens, matrix, seed)
        self.vocab_ = vocab
        self.embedder_ = embedder
        self.event_vectors_ = EventVectors(vocab.tokens, matrix)
        self.extra_event_ids_: list[str] = []
        self._reset_semantic_caches()
        others = {e: t for e, t in templates.items() if e not in vocab}
        if others:
            self._add_templates(others)

    def _separate_vectors(self, tokens: tuple[str, ...], matrix: np.ndarray, seed: int) -> np.ndarray:
        """Give vector-less events id vectors and separate identical vectors (see module docs)."""
        n, dim = matrix.shape
        norms = np.linalg.norm(matrix, axis=1)
        scale = float(norms[norms > 0].mean()) if (norms > 0).any() else 1.0
        rand = id_vectors(tokens, dim, seed) * scale
        zero = norms == 0
        _, inverse, counts = np.unique(matrix, axis=0, return_inverse=True, return_counts=True)
        dup = (counts[inverse.reshape(-1)] > 1) & ~zero
        out = matrix.astype(np.float32).copy()
        out[zero] = rand[zero]
        out[dup] += TIE_BREAK * rand[dup]
        if zero.any() or dup.any():
            logger.info(
                "%s: %d of %d events without a template vector (id vectors), %d with identical vectors separated",
                type(self).__name__,
                int(zero.sum()),
                n,
                int(dup.sum()),
            )
        return out

    def _reset_semantic_caches(self) -> None:
        self._vocab_cache: tuple[int, EventVocab] | None = None
        self._table_cache: dict[tuple[int, str], torch.Tensor] = {}

    def _add_templates(self, templates: Mapping[str, str] | pl.DataFrame) -> int:
        from logsieve.detectors.base import _templates_dict

        items = _usable_templates(_templates_dict(templates))
        known = self.templates_  # type: ignore[attr-defined]
        for e, t in items.items():
            known.setdefault(e, t)
        new = [e for e in items if e not in self.event_vectors_ and e not in self.vocab_]
        if not new or self.embedder_ is None:
            return 0
        vec = self.embedder_.embed([items[e] for e in new])
        keep = np.linalg.norm(vec, axis=1) > 0
        ids = tuple(e for e, k in zip(new, keep, strict=True) if k)
        if ids:
            self.event_vectors_ = self.event_vectors_.merge(EventVectors(ids, vec[keep]))
            self.extra_event_ids_ = [*self.extra_event_ids_, *ids]
            self._reset_semantic_caches()
        logger.info("%s: %d new templates embedded (%d without a known word)", type(self).__name__, len(ids), len(new) - len(ids))
        return len(ids)

    def add_templates(self, templates: Mapping[str, str] | pl.DataFrame) -> int:
        """Embed templates of events not seen in training; returns how many got a vector.

        Call it with the parser's templates before scoring logs that contain new
        templates: those events then enter the model with their semantic vector
        instead of the unknown (zero) vector. Templates are also kept for
        explanations. Events of the training vocabulary are never changed.
        """
        if not hasattr(self, "event_vectors_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")
        return self._add_templates(templates)

    def _input_vocab(self) -> EventVocab:
        """Training tokens then the added events: the codes of the model's semantic input."""
        cache = getattr(self, "_vocab_cache", None)
        if cache is None or cache[0] != len(self.extra_event_ids_):
            cache = (len(self.extra_event_ids_), EventVocab((*self.vocab_.tokens, *self.extra_event_ids_)))
            self._vocab_cache = cache
        return cache[1]

    def _semantic_table(self) -> np.ndarray:
        """``(len(input vocab), dim)`` vectors: PAD and UNK rows zero."""
        return self.event_vectors_.table(self._input_vocab(), unknown="zero")

    def _table_tensor(self, device: torch.device) -> torch.Tensor:
        caches = getattr(self, "_table_cache", None)
        if caches is None:
            self._table_cache = caches = {}
        key = (len(self.extra_event_ids_), str(device))
        t = caches.get(key)
        if t is None:
            t = torch.from_numpy(self._semantic_table()).to(device)
            caches[key] = t
        return t

    @property
    def semantic_dim_(self) -> int:
        return int(self.event_vectors_.dim)

    # ---- persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()  # type: ignore[misc]
        state["vocab_"] = self.vocab_.to_list()
        state["extra_event_ids_"] = list(self.extra_event_ids_)
        state["event_vector_ids_"] = list(self.event_vectors_.event_ids)
        arrays["event_vectors"] = self.event_vectors_.vectors
        if self.embedder_ is not None:
            state["embedder_"] = self.embedder_.to_dict()
            for k, v in self.embedder_.to_arrays().items():
                arrays[f"embedder.{k}"] = v
        else:
            state["embedder_"] = None
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.vocab_ = EventVocab.from_list(list(state["vocab_"]))
        self.extra_event_ids_ = [str(e) for e in state.get("extra_event_ids_") or []]
        self.event_vectors_ = EventVectors(tuple(state["event_vector_ids_"]), np.asarray(arrays["event_vectors"]))
        doc = state.get("embedder_")
        prefix = "embedder."
        emb_arrays = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        self.embedder_ = embedder_from_dict(doc, emb_arrays) if doc else None
        self._reset_semantic_caches()
        super()._set_state(state, arrays)  # type: ignore[misc]


class SemanticQuantLSTM(nn.Module):
    """Two stacked LSTMs (semantic vectors, count vectors) -> logits of the next event."""

    def __init__(
        self, semantic_dim: int, n_counts: int, n_outputs: int, hidden_size: int, num_layers: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        drop = float(dropout) if num_layers > 1 else 0.0
        self.semantic = nn.LSTM(semantic_dim, hidden_size, num_layers, batch_first=True, dropout=drop)
        self.quantitative = nn.LSTM(n_counts, hidden_size, num_layers, batch_first=True, dropout=drop)
        self.out = nn.Linear(2 * hidden_size, n_outputs)

    def forward(self, semantic: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        a, _ = self.semantic(semantic)
        b, _ = self.quantitative(counts)
        return self.out(torch.cat([a[:, -1], b[:, -1]], dim=1))


@register_detector("loganomaly")
class LogAnomaly(SemanticEventsMixin, TorchDetector):
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
        Training (see :class:`~logsieve.detectors.trainer.TorchDetector`); defaults
        here 20 epochs (LogADEmpirical's ``max_epoch``), batch 256, Adam lr 1e-3.
    threshold, contamination, valid_fraction, include_anomalies, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`; ``"auto"`` = top-g.

    Attributes
    ----------
    vocab_, embedder_, event_vectors_, extra_event_ids_
        See :class:`SemanticEventsMixin`.
    module_ : SemanticQuantLSTM
    """

    description = "semantic (template2vec) and quantitative (count) LSTMs predict the next event; top-g rule"
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
        return {
            "history_size": 4,
            "hidden_size": 16,
            "num_layers": 1,
            "epochs": 30,
            "batch_size": 64,
            "num_candidates": 2,
            "lr": 5e-2,
            "embedding_dim": 8,
        }

    # ------------------------------------------------------------------ params
    def _validate_params(self) -> None:
        super()._validate_params()
        for key in ("history_size", "hidden_size", "num_layers", "num_candidates"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise LogsieveError(f"{key} must be a positive integer, not {value!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise LogsieveError(f"dropout must be in [0, 1), not {self.dropout!r}")
        if self.match_unseen is not None and not 0.0 < float(self.match_unseen) <= 1.0:
            raise LogsieveError(f"match_unseen must be None or in (0, 1], not {self.match_unseen!r}")
        self._validate_semantic_params()

    # ------------------------------------------------------------------ encoding
    @property
    def _end_output(self) -> int:
        """Output index of the end-of-window marker (only with ``session_bounds``)."""
        return len(self.vocab_)

    @property
    def n_outputs_(self) -> int:
        return len(self.vocab_) + (1 if self.session_bounds else 0)

    @property
    def oov_rank_(self) -> int:
        """Rank given to an event the model cannot predict: always outside the top-g."""
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
        """Next-event pairs; histories in input codes, targets in output indices (UNK = unpredictable)."""
        enc = self._encode(windows)
        marker = len(self._input_vocab())
        if self.session_bounds:
            pairs = next_event_pairs(append_marker(enc, marker), self.history_size, 0)
        else:
            pairs = next_event_pairs(enc, self.history_size, self.history_size)
        n = len(self.vocab_)
        t = pairs.target
        target = np.where(t == marker, self._end_output, np.where(t >= n, UNK, t)).astype(np.int32)
        return Pairs(pairs.history, target, pairs.window, pairs.position)

    def _pair_arrays(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        distinct, _, counts = distinct_windows(windows)
        pairs = self._pairs(distinct)
        known = pairs.target != UNK  # an unseen event cannot be a training target
        hist, target, weight, _ = count_pairs(
            pairs.history[known], pairs.target[known], counts[pairs.window[known]].astype(np.float64)
        )
        return {"history": hist.astype(np.int64), "target": target.astype(np.int64), "weight": weight.astype(np.float32)}

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

    def _prepare(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        return self._pair_arrays(windows)

    # ------------------------------------------------------------------ network
    def build_module(self) -> nn.Module:
        return SemanticQuantLSTM(
            self.semantic_dim_, len(self.vocab_), self.n_outputs_, self.hidden_size, self.num_layers, self.dropout
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
        return F.cross_entropy(self._logits(module, batch["history"]), batch["target"], reduction="none")

    def _natural_threshold(self) -> float:
        return self.num_candidates - 0.5

    # ------------------------------------------------------------------ scoring
    def _masked_logits(self, module: nn.Module, history: torch.Tensor) -> torch.Tensor:
        logits = self._logits(module, history)
        logits[:, :N_SPECIAL] = -math.inf  # padding / unknown are never predictions
        return logits

    def _rank_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        logits = self._masked_logits(module, batch["history"])
        target = batch["target"]
        known = target >= N_SPECIAL
        actual = logits.gather(1, target.clamp_min(N_SPECIAL)[:, None])
        rank = (logits > actual).sum(1)
        return torch.where(known, rank, torch.full_like(rank, self.oov_rank_)).cpu()

    def _pair_ranks(self, windows: pl.DataFrame) -> tuple[Pairs, np.ndarray]:
        """Pairs of ``windows`` and the rank of each (computed once per distinct pair)."""
        pairs = self._pairs(windows)
        hist_u, target_u, _, inverse = count_pairs(pairs.history, pairs.target)
        if len(target_u) == 0:
            return pairs, np.zeros(0, dtype=np.float64)
        chunks = self._infer(self._rank_step, {"history": hist_u.astype(np.int64), "target": target_u.astype(np.int64)})
        ranks = torch.cat(chunks).numpy().astype(np.float64)
        return pairs, ranks[inverse]

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        pairs, ranks = self._pair_ranks(windows)
        scores = np.zeros(windows.height, dtype=np.float64)
        if len(ranks):
            np.maximum.at(scores, pairs.window, ranks)
        return scores

    # ------------------------------------------------------------------ explanation
    def _output_name(self, code: int) -> str | None:
        if self.session_bounds and code == self._end_output:
            return END_OF_WINDOW
        return self.vocab_.token(code)

    def _template(self, event_id: str | None) -> str | None:
        if event_id is None:
            return None
        if event_id == END_OF_WINDOW:
            return "<end of window>"
        return self.templates_.get(event_id)

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
        self._check_fitted()
        windows = check_windows(windows)
        k = max(1, min(int(top) if top is not None else int(self.num_candidates), self.n_outputs_ - N_SPECIAL))
        distinct, inverse, _ = distinct_windows(windows)
        pairs, ranks = self._pair_ranks(distinct)
        scores = np.zeros(distinct.height)
        if len(ranks):
            np.maximum.at(scores, pairs.window, ranks)
        details = self._position_details(distinct, pairs, ranks, k)
        return _assemble(windows, inverse, scores, details, self.threshold_)

    def _position_details(
        self, distinct: pl.DataFrame, pairs: Pairs, ranks: np.ndarray, k: int
    ) -> dict[int, list[dict[str, Any]]]:
        flagged = np.flatnonzero(ranks > self.threshold_)
        details: dict[int, list[dict[str, Any]]] = defaultdict(list)
        if not len(flagged):
            return details
        hist = pairs.history[flagged].astype(np.int64)
        tgt = pairs.target[flagged].astype(np.int64)

        def top_step(module: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            prob = torch.softmax(self._masked_logits(module, batch["history"]), dim=1)
            p_actual = prob.gather(1, batch["target"][:, None])[:, 0]
            values, idx = prob.topk(k, dim=1)
            return p_actual.cpu(), values.cpu(), idx.cpu()

        out = self._infer(top_step, {"history": hist, "target": tgt})
        p_actual = torch.cat([o[0] for o in out]).numpy()
        top_p = torch.cat([o[1] for o in out]).numpy()
        top_i = torch.cat([o[2] for o in out]).numpy()
        tokens = event_id_series(distinct).to_list()
        for j, i in enumerate(flagged):
            w, pos = int(pairs.window[i]), int(pairs.position[i])
            unseen = int(tgt[j]) == UNK
            actual = tokens[w][pos] if pos < len(tokens[w]) else END_OF_WINDOW
            predicted_as = self._output_name(int(tgt[j])) if not unseen else None
            matched = predicted_as if predicted_as not in (None, actual, END_OF_WINDOW) else None
            details[w].append(
                {
                    "position": pos,
                    "event_id": actual,
                    "template": self._template(actual),
                    "rank": int(ranks[i]),
                    "probability": 0.0 if unseen else float(p_actual[j]),
                    "unseen": unseen,
                    "matched_event_id": matched,
                    "expected": [
                        {
                            "event_id": self._output_name(int(c)),
                            "template": self._template(self._output_name(int(c))),
                            "probability": float(p),
                        }
                        for c, p in zip(top_i[j], top_p[j], strict=True)
                    ],
                }
            )
        return details


def _assemble(
    windows: pl.DataFrame,
    inverse: np.ndarray,
    scores: np.ndarray,
    details: Mapping[int, list[dict[str, Any]]],
    threshold: float,
    key: str = "positions",
) -> list[dict[str, Any]]:
    """Per-window explanation dicts from per-distinct-window position details.

    Adds ``line_id`` to every position from the window's ``line_ids`` (None when absent).
    """
    ids = _window_ids(windows)
    line_ids = windows.get_column(LINE_IDS).to_list() if LINE_IDS in windows.columns else None
    result = []
    for row, u in enumerate(inverse):
        positions = [dict(d) for d in details.get(int(u), [])]
        lines = line_ids[row] if line_ids is not None else None
        for d in positions:
            pos = d["position"]
            d["line_id"] = int(lines[pos]) if lines is not None and pos < len(lines) else None
        score = float(scores[u])
        result.append(
            {
                "window_id": ids[row],
                "score": score,
                "threshold": threshold,
                "is_anomaly": bool(score > threshold),
                key: positions,
            }
        )
    return result
