"""Autoencoder detectors over windows, and the pieces the autoencoder family shares.

Three detectors, in the spirit of the HTTP access-log comparison of zpettry's
"AI-Autoencoder-for-HTTP-Log-Anomaly-Detection" (a dense autoencoder, an LSTM
autoencoder and an Isolation Forest, compared side by side; only that repository's
README is public knowledge here, so the designs below are ours and are documented as
such):

``ae`` (:class:`Autoencoder`)
    A dense (fully connected) autoencoder over a count vector of each window
    (:class:`CountFeatures`: event counts, or counts of the words of the events'
    templates; ``log1p`` then min-max scaled to [0, 1] on the training windows). The
    anomaly score is the mean squared reconstruction error of the vector.
``lstm_ae`` (:class:`LSTMAutoencoder`)
    A sequence-to-sequence LSTM autoencoder over the event ids of a window: an LSTM
    encoder compresses the (embedded) ids into one latent vector, an LSTM decoder fed
    with that vector at every step reconstructs the ids (a softmax over the
    vocabulary per position). The score is the reconstruction negative log-likelihood
    of the window's ids (mean over positions, or the worst position). Reconstructing
    categorical ids with cross-entropy, instead of numeric features with MSE, is our
    choice for event ids.
``iforest_ae`` (:class:`IsolationForestAE`)
    The dense autoencoder, then an Isolation Forest over the autoencoder's view of
    each window (its bottleneck code plus the log of its reconstruction error); the
    score is the forest's anomaly score ``2 ** (-E[h(x)] / c(psi))``.

HTTP access logs (the ``weblog`` format) become windows like any log: count windows of
requests (``logsieve group --window N``), time windows, per-client sessions
(:func:`logsieve.compare.client_sessions`), or single requests (``--window 1``: every
request is one window; with the features here its score then depends only on the
request's template, i.e. how unusual the requested URL pattern is).

Shared pieces used by :mod:`.ae_farzad` and :mod:`.ae_bursic`:
:class:`CountFeatures`, :class:`ArrayIsolationForest` (scikit-learn's Isolation Forest,
fitted by scikit-learn and then stored and evaluated as plain arrays, so a model saves
without pickle), :class:`DenseAE`, :func:`chunk_sequences`.

Training uses each distinct window (by ``event_ids``) once, weighted by how often it
occurs, which gives the same objective as training on every window; scoring also runs
once per distinct window.
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

from logsieve.detectors.base import (
    check_choice,
    check_positive_ints,
    explanations_by_row,
    resolve_seed,
)
from logsieve.detectors.classical.iforest import ArrayIsolationForest
from logsieve.detectors.neural.trainer import Batch, TorchDetector
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.counts import OOV_NAME, count_matrix
from logsieve.features.sequence import (
    PAD,
    UNK,
    EncodedWindows,
    EventVocab,
    check_windows,
    distinct_windows,
    unique_rows,
)
from logsieve.features.text import tokenize_series

logger = logging.getLogger(__name__)

__all__ = [
    "Autoencoder",
    "CountFeatures",
    "DenseAE",
    "IsolationForestAE",
    "LSTMAutoencoder",
    "SeqAE",
    "chunk_sequences",
    "expand_rows",
    "weighted_quantile",
]

ZPETTRY = (
    "Zachary Pettry. AI-Autoencoder-for-HTTP-Log-Anomaly-Detection (dense autoencoder, "
    "LSTM autoencoder "
    "and Isolation Forest compared on HTTP access logs). "
    "https://github.com/zpettry/AI-Autoencoder-for-HTTP-Log-Anomaly-Detection"
)
FEATURE_KINDS = ("events", "words")
SCALES = ("log1p", "minmax")


# ====================================================================== helpers
def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight share reaches ``q`` (like ``method="higher"``)."""
    order = np.argsort(values, kind="mergesort")
    cum = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    if cum[-1] <= 0:
        return float(values[order[-1]])
    k = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(values[order[min(k, len(order) - 1)]])


def expand_rows(
    x: np.ndarray, weights: np.ndarray | None, cap: int, rng: np.random.Generator
) -> np.ndarray:
    """Rows of ``x`` repeated by their integer ``weights``.

    When the weights are not integers or add up to more than ``cap``, a weighted sample
    of ``cap`` rows (with replacement) instead.
    """
    if weights is None:
        return x
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if np.allclose(w, np.round(w)) and total <= cap:
        return np.repeat(x, np.round(w).astype(np.int64), axis=0)
    idx = rng.choice(len(x), size=int(cap), replace=True, p=w / total)
    return x[np.sort(idx)]


# ====================================================================== count features
class CountFeatures:
    """Window -> count vector scaled to [0, 1] on the training windows.

    Parameters
    ----------
    kind : {"events", "words"}
        ``"events"``: how often each event id of the training vocabulary occurs (column
        0 counts unseen ids, see :mod:`logsieve.features.counts`). ``"words"``: how often
        each word of the events' templates occurs (a window's bag of words: the event
        counts times an event x word matrix built from
        :func:`logsieve.features.text.tokenize_series`). An event without a template
        text (or whose template has no word) counts as one pseudo-word ``<E12>``; words
        of unseen events fall in column 0.
    scale : {"log1p", "minmax"}
        ``"log1p"``: ``log(1 + count)`` before min-max scaling (tames long windows);
        ``"minmax"``: plain counts, min-max scaled.

    Min-max uses the training minimum and range of every column (a constant column
    gets range 1). Values of new windows can fall outside [0, 1], which is what makes
    them stand out.
    """

    def __init__(self, kind: str = "events", scale: str = "log1p") -> None:
        if kind not in FEATURE_KINDS:
            raise LogsieveError(f"features must be one of {', '.join(FEATURE_KINDS)}, not {kind!r}")
        if scale not in SCALES:
            raise LogsieveError(f"scale must be one of {', '.join(SCALES)}, not {scale!r}")
        self.kind = kind
        self.scale = scale

    def fit(
        self, windows: pl.DataFrame, templates: Mapping[str, str] | None = None
    ) -> CountFeatures:
        """Fit the vocabulary (and word matrix) and the min-max scaling on ``windows``."""
        self.vocab_ = EventVocab.fit(windows)
        if self.kind == "words":
            self._fit_words(dict(templates or {}))
        else:
            self.words_: tuple[str, ...] = ()
            self.word_matrix_ = None
        x = self._project(count_matrix(windows, self.vocab_))
        lo = x.min(axis=0) if len(x) else np.zeros(x.shape[1], dtype=np.float32)
        hi = x.max(axis=0) if len(x) else np.ones(x.shape[1], dtype=np.float32)
        span = hi - lo
        span[span <= 0] = 1.0
        self.min_ = lo.astype(np.float32)
        self.range_ = span.astype(np.float32)
        return self

    def _fit_words(self, templates: dict[str, str]) -> None:
        events = list(self.vocab_.tokens)
        texts = pl.Series("t", [templates.get(e, "") for e in events], dtype=pl.String)
        tokens = tokenize_series(texts).to_list()
        tokens = [t if t else [f"<{e}>"] for e, t in zip(events, tokens, strict=True)]
        words = sorted({w for ws in tokens for w in ws})
        index = {w: i + 1 for i, w in enumerate(words)}  # column 0: words of unseen events
        mat = np.zeros((len(events) + 1, len(words) + 1), dtype=np.float32)
        mat[0, 0] = 1.0
        rows = np.repeat(np.arange(1, len(events) + 1), [len(t) for t in tokens])
        cols = np.array([index[w] for ws in tokens for w in ws], dtype=np.int64)
        np.add.at(mat, (rows, cols), 1.0)
        self.words_ = tuple(words)
        self.word_matrix_ = mat

    def _project(self, counts: np.ndarray) -> np.ndarray:
        x = counts if self.word_matrix_ is None else counts @ self.word_matrix_
        if self.scale == "log1p":
            x = np.log1p(x)
        return x.astype(np.float32, copy=False)

    def transform(self, windows: pl.DataFrame) -> np.ndarray:
        """Scaled features, float32 of shape ``(n_windows, n_features_)``."""
        x = self._project(count_matrix(windows, self.vocab_))
        return (x - self.min_) / self.range_

    @property
    def n_features_(self) -> int:
        return len(self.min_)

    @property
    def feature_names_(self) -> list[str]:
        """``"<oov>"`` then the event ids (``events``) or the words (``words``)."""
        return [OOV_NAME, *(self.words_ if self.kind == "words" else self.vocab_.tokens)]

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        doc = {
            "kind": self.kind,
            "scale": self.scale,
            "vocab": list(self.vocab_.tokens),
            "words": list(self.words_),
        }
        arrays = {"min": self.min_, "range": self.range_}
        if self.word_matrix_ is not None:
            arrays["word_matrix"] = self.word_matrix_
        return doc, arrays

    @classmethod
    def from_state(cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> CountFeatures:
        self = cls(str(doc["kind"]), str(doc["scale"]))
        self.vocab_ = EventVocab.from_list(list(doc["vocab"]))
        self.words_ = tuple(doc.get("words") or ())
        self.word_matrix_ = (
            np.asarray(arrays["word_matrix"], dtype=np.float32) if "word_matrix" in arrays else None
        )
        self.min_ = np.asarray(arrays["min"], dtype=np.float32)
        self.range_ = np.asarray(arrays["range"], dtype=np.float32)
        expected = (len(self.words_) if self.kind == "words" else self.vocab_.n_keys) + 1
        if self.min_.shape != (expected,) or self.range_.shape != (expected,):
            raise LogsieveError(
                f"saved count features: {self.min_.shape[0]} columns, expected {expected}"
            )
        return self


# ====================================================================== networks
class DenseAE(nn.Module):
    """``n_in -> hidden -> latent (tanh) -> hidden -> n_in`` fully connected autoencoder."""

    def __init__(self, n_in: int, hidden_size: int, latent_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(n_in, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, latent_dim),
            nn.Tanh(),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, n_in),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def dense_loss(module: nn.Module, batch: Batch) -> torch.Tensor:
    """Per-example mean squared reconstruction error."""
    x = batch["x"]
    return ((module(x) - x) ** 2).mean(dim=1)


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


def chunk_sequences(
    encoded: EncodedWindows, max_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows cut into consecutive chunks of at most ``max_len`` codes (vectorized).

    Returns ``(codes, lengths, owner)``: a PAD-filled ``(m, max_len)`` int64 array of
    chunks, their lengths and the window of each chunk. Empty windows give no chunk.
    """
    lengths = encoded.lengths.astype(np.int64)
    n_chunks = -(-lengths // max_len)  # ceil
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), n_chunks)
    m = int(n_chunks.sum())
    out = np.full((m, max_len), PAD, dtype=np.int64)
    if m == 0:
        return out, np.zeros(0, dtype=np.int64), owner
    pos = np.arange(len(encoded.codes), dtype=np.int64) - encoded.offsets[encoded.owner]
    first_chunk = np.concatenate([[0], np.cumsum(n_chunks)[:-1]])
    chunk = first_chunk[encoded.owner] + pos // max_len
    out[chunk, pos % max_len] = encoded.codes
    chunk_len = np.bincount(chunk, minlength=m).astype(np.int64)
    return out, chunk_len, owner


# ====================================================================== dense autoencoder
@register_detector("ae")
class Autoencoder(TorchDetector):
    """Dense autoencoder over window count vectors (zpettry-style "NN autoencoder").

    Parameters
    ----------
    features : {"events", "words"}, default "events"
        Count vector of a window: event ids, or words of the events' templates (needs
        ``templates=`` in :meth:`fit`; see :class:`CountFeatures`).
    scale : {"log1p", "minmax"}, default "log1p"
    hidden_size : int, default 64
    latent_dim : int, default 8
        Width of the bottleneck (tanh).
    dropout : float, default 0.0
    epochs, batch_size, lr, weight_decay, patience, device, num_threads
        Training (see :class:`~logsieve.detectors.neural.trainer.TorchDetector`). An epoch is
        one pass over the DISTINCT windows (weighted by their counts), hence the
        defaults of 100 epochs, batch 32, early stopping after 10 epochs without a
        lower validation loss, one CPU thread.
    threshold, contamination, valid_fraction, include_anomalies, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`; ``"auto"`` is the quantile
        rule on normal validation windows.

    The score of a window is the mean squared error between its scaled count vector
    and the reconstruction.
    """

    description = "dense autoencoder over window count vectors; score = reconstruction error"
    citation = ZPETTRY
    input_kind = "counts"
    requires_labels = False

    features: str = "events"
    scale: str = "log1p"
    hidden_size: int = 64
    latent_dim: int = 8
    dropout: float = 0.0
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    patience: int | None = 10
    num_threads: int | None = 1

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {
            "hidden_size": 16,
            "latent_dim": 4,
            "epochs": 60,
            "batch_size": 16,
            "lr": 1e-2,
            "patience": 1000,
        }

    def _validate_params(self) -> None:
        super()._validate_params()
        check_choice(self, "features", FEATURE_KINDS)
        check_choice(self, "scale", SCALES)
        check_positive_ints(self, "hidden_size", "latent_dim")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise LogsieveError(f"dropout must be in [0, 1), not {self.dropout!r}")

    # ---- data
    def _arrays(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        distinct, _, counts = distinct_windows(windows)
        return {"x": self.features_.transform(distinct), "weight": counts.astype(np.float32)}

    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        distinct, _, _ = distinct_windows(train)
        self.features_ = CountFeatures(self.features, self.scale).fit(distinct, self.templates_)
        if self.features == "words" and not self.templates_:
            logger.warning(
                "%s: features='words' without templates: every event counts as one pseudo-word",
                type(self).__name__,
            )
        return self._arrays(train)

    def _prepare(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        return self._arrays(windows)

    def build_module(self) -> nn.Module:
        return DenseAE(
            self.features_.n_features_, self.hidden_size, self.latent_dim, float(self.dropout)
        )

    def training_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        return dense_loss(module, batch)

    # ---- scoring
    def _reconstruct(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reconstruction, latent code) of feature rows."""
        if len(x) == 0:
            return np.zeros_like(x), np.zeros((0, self.latent_dim), dtype=np.float32)

        def step(module: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
            z = module.encode(batch["x"])
            return module.decoder(z).cpu(), z.cpu()

        parts = self._infer(step, {"x": x})
        return torch.cat([p[0] for p in parts]).numpy(), torch.cat([p[1] for p in parts]).numpy()

    def _errors(self, x: np.ndarray) -> np.ndarray:
        recon, _ = self._reconstruct(x)
        return ((recon.astype(np.float64) - x) ** 2).mean(axis=1)

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        return self._errors(self.features_.transform(windows))

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Per window: score, threshold, is_anomaly and ``features``, the ``top`` (default 5)
        vector entries with the largest squared reconstruction error (``feature`` name,
        ``template`` for event features, scaled ``value``, ``reconstructed``, ``error``)."""
        self._check_fitted()
        windows = check_windows(windows)
        distinct, inverse, _ = distinct_windows(windows)
        x = self.features_.transform(distinct)
        recon, _ = self._reconstruct(x)
        err = (recon.astype(np.float64) - x) ** 2
        scores = err.mean(axis=1)  # the scores of the distinct windows, as in _errors
        k = max(1, min(int(top) if top is not None else 5, x.shape[1]))
        best = np.argsort(-err, axis=1, kind="stable")[:, :k]
        names = self.features_.feature_names_
        details = [
            [
                {
                    "feature": names[j],
                    "template": self.templates_.get(names[j])
                    if self.features == "events"
                    else None,
                    "value": float(x[u, j]),
                    "reconstructed": float(recon[u, j]),
                    "error": float(err[u, j]),
                }
                for j in best[u].tolist()
            ]
            for u in range(len(x))
        ]
        return explanations_by_row(
            self, windows, inverse, scores, details, "features", line_ids=False
        )

    # ---- persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        doc, feats = self.features_.to_state()
        state["features_"] = doc
        arrays.update({f"features.{k}": v for k, v in feats.items()})
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        feats = {k[len("features.") :]: v for k, v in arrays.items() if k.startswith("features.")}
        self.features_ = CountFeatures.from_state(state["features_"], feats)
        super()._set_state(state, arrays)


# ====================================================================== IF-screened autoencoder
@register_detector("iforest_ae")
class IsolationForestAE(Autoencoder):
    """Dense autoencoder trained on the windows an Isolation Forest finds ordinary.

    For unlabelled training data, which may hold anomalies (the HTTP-log setting):
    an Isolation Forest (``n_estimators`` trees on sub-samples of ``max_samples``
    windows, drawn in proportion to how often each distinct window occurs) scores the
    training windows on their scaled count vectors; the ``if_contamination`` share
    (by window count) that it isolates fastest is left out, and the autoencoder of
    :class:`Autoencoder` is trained on the rest, so it does not learn to reconstruct
    the outliers. The score is the autoencoder's reconstruction error; explanations
    also give the forest's anomaly score of the window.

    Why not score with the forest itself: trained on normal windows only, an
    Isolation Forest cannot isolate what lies outside the training range (a column
    that is constant in training, such as unseen events, is never split on), so on
    new data it ranks anomalies far below an autoencoder. It is a good judge of which
    training windows are outliers, which is the job it has here (as in Farzad &
    Gulliver's "Isolation Forest and one autoencoder", see :mod:`.ae_farzad`).

    Extra parameters
    ----------------
    if_contamination : float, default 0.05
        Share of the training windows the forest removes (0 keeps every window).
    n_estimators : int, default 100
    max_samples : int, default 256
        The forest's sub-sample size ``psi`` (Liu et al.'s default).

    Attributes
    ----------
    forest_ : ArrayIsolationForest
    screen_cut_ : float
        Forest score above which training windows were left out.
    n_screened_ : int
        Training windows left out (counting duplicates).
    """

    description = (
        "dense autoencoder trained on the windows an isolation forest keeps; "
        "score = reconstruction error"
    )
    citation = ZPETTRY
    input_kind = "counts"

    if_contamination: float = 0.05
    n_estimators: int = 100
    max_samples: int = 256

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {**super()._test_params(), "n_estimators": 50, "max_samples": 128}

    def _validate_params(self) -> None:
        super()._validate_params()
        check_positive_ints(self, "n_estimators")
        check_positive_ints(self, "max_samples", minimum=2)
        if not 0.0 <= float(self.if_contamination) < 0.5:
            raise LogsieveError(
                f"if_contamination must be in [0, 0.5), not {self.if_contamination!r}"
            )

    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        arrays = super()._prepare_fit(train)
        x, weight = arrays["x"], arrays["weight"].astype(np.float64)
        seed = resolve_seed(self.random_state)
        rows = expand_rows(x, weight, 100_000, np.random.default_rng(seed))
        self.forest_ = ArrayIsolationForest.fit(
            rows,
            n_estimators=self.n_estimators,
            max_samples=min(int(self.max_samples), len(rows)),
            random_state=seed,
            owner=self.name,
        )
        iso = self.forest_.score(x)
        if float(self.if_contamination) > 0:
            self.screen_cut_ = weighted_quantile(iso, weight, 1.0 - float(self.if_contamination))
            keep = iso <= self.screen_cut_
        else:
            self.screen_cut_ = float(iso.max())
            keep = np.ones(len(x), dtype=bool)
        self.n_screened_ = round(float(weight[~keep].sum()))
        logger.info(
            "IsolationForestAE: the forest leaves out %d of %d training windows",
            self.n_screened_,
            int(weight.sum()),
        )
        return {k: v[keep] for k, v in arrays.items()}

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """:meth:`Autoencoder.explain` plus ``isolation_score`` (the forest's score, in (0, 1])
        and ``isolated`` (above the screening cut: the forest would have left it out of
        training)."""
        out = super().explain(windows, top)
        iso = self.forest_.score(self.features_.transform(check_windows(windows)))
        for entry, value in zip(out, iso.tolist(), strict=True):
            entry["isolation_score"] = value
            entry["isolated"] = bool(value > self.screen_cut_)
        return out

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        state.update(
            forest_samples_=self.forest_.n_samples,
            screen_cut_=self.screen_cut_,
            n_screened_=self.n_screened_,
        )
        arrays.update(self.forest_.to_arrays())
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.forest_ = ArrayIsolationForest.from_arrays(arrays, int(state["forest_samples_"]))
        self.screen_cut_ = float(state["screen_cut_"])
        self.n_screened_ = int(state["n_screened_"])
        super()._set_state(state, arrays)


# ====================================================================== LSTM autoencoder
@register_detector("lstm_ae")
class LSTMAutoencoder(TorchDetector):
    """LSTM sequence autoencoder over the event ids of a window.

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
