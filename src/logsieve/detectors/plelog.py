"""PLELog (Yang et al., ICSE 2021): semi-supervised detection via probabilistic label estimation.

PLELog needs only *some* normal windows to be labelled. It works in two steps:

1. Probabilistic label estimation (:func:`estimate_labels`): every training window is
   represented by the mean of its events' semantic vectors (TF-IDF-weighted word
   vectors of the templates, :func:`composition_means`: windows with the same event
   proportions get bit-identical vectors whatever the BLAS thread count), reduced in
   dimension, and clustered with HDBSCAN together with the known-normal windows. An
   unlabelled window that falls in a cluster holding a known-normal window is probably
   normal; one in any other cluster is probably anomalous; the strength of
   its cluster membership sets how sure that label is. Windows HDBSCAN calls noise are
   normal when identical to a known-normal window and anomalous otherwise.
2. An attention-based GRU classifier (bidirectional, 2 layers) reads the sequence of
   event vectors of a window and is trained with binary cross-entropy on those
   probabilistic labels. Its output ``P(anomalous)`` is the window's score; the
   paper's threshold 0.5 is ``threshold="auto"``.

Which labels are used (the semi-supervised rule)
------------------------------------------------
Of the training windows labelled 0, a random ``known_normal_fraction`` (default 0.5,
as in the authors' code, which keeps the first half of the shuffled normal training
instances) keep their label; every other training window (the remaining normal ones,
those labelled 1 and unlabelled ones) is treated as *unlabelled*: its label is never
read. Windows labelled 1 are therefore kept in training (``include_anomalies=True`` is
this detector's default), as unlabelled data, which is what the paper does; with
``include_anomalies=False`` they are dropped before training. Fitting needs at least
one window labelled 0.

Soft labels (authors' code; sklearn's HDBSCAN instead of the ``hdbscan`` package)
----------------------------------------------------------------------------------
The authors give an unlabelled window in a cluster the label of its cluster with the
target ``1 - c/2`` for that class, where ``c`` is the window's GLOSH outlier score.
scikit-learn's HDBSCAN has no outlier scores; its membership strength ``m``
(``probabilities_``, 1 at a cluster's core, towards 0 at its fringe) stands in for
``1 - c``, so the target of the cluster's class is ``0.5 + m/2``. Known normals have
target 0 (normal) and noise windows hard targets, as in the authors' code.

Defaults (authors' code ``approaches/PLELog.py`` unless noted)
---------------------------------------------------------------
``min_cluster_size=100``, ``min_samples=100``, ``reduce_dim=50`` (they use FastICA; we
use PCA, deterministic), ``hidden_size=100``, ``num_layers=2``, ``dropout=0.33``
(input event dropout and between GRU layers), ``batch_size=100``, Adam ``lr=2e-3``
(``config/*.cfg``), windows truncated to ``max_len=500`` events (we keep the LAST
500, they keep the first), decision threshold 0.5.

Deviations: HDBSCAN's ``min_cluster_size``/``min_samples`` are capped at 5 % of the
clustered windows (at least 2), so that small training sets still form clusters; the
template vectors are word2vec/template2vec vectors trained on the log's own templates
(the authors use 300-d GloVe; nothing is downloaded here), see
:class:`~logsieve.detectors.neural.semantic_events.SemanticEventsMixin` for unseen templates and
events without a usable vector; the authors train 5 epochs on every window and keep the
best epoch by F1 on the *test* set; we train ``epochs=40`` passes over the distinct
windows (each weighted by its count, its target the mean of its copies' targets,
which gives the same loss) with no model selection on labels; no gradient clipping.
An epoch over distinct windows is far fewer optimizer steps than one over every
window (HDFS 2 % training part: 14 batches of 100 distinct windows instead of 70
batches), hence more epochs than the authors' 5 (which were 5 passes over hundreds of
thousands of sessions); on HDFS 2 % the test recall at 0.5 only rises after about 25
epochs (``benchmarks/sanity_semisup.py``).

Spread over seeds: the label estimation hardly depends on the seed, the classifier at
the fixed 0.5 threshold does. On HDFS 2 % (chronological 60/10/30, one torch thread)
seeds 0-4 give test F1 0.859, 0.910, 0.943, 0.474, 0.879 (mean 0.813) with ROC-AUC
0.95-0.99: with seed 3 about half of the test anomalies stay near P = 0.06 through all
40 epochs. One seed is not a result; ``threshold="best_f1"`` (chosen on labelled
validation windows, more supervision than the paper's) gave 0.895 (sd 0.03) on the
same runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from logsieve.detectors.base import check_positive_ints, explanations_by_row
from logsieve.detectors.neural.semantic_events import SemanticEventsMixin
from logsieve.detectors.neural.trainer import Batch, TorchDetector
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.sequence import (
    check_windows,
    distinct_windows,
    event_id_series,
    pad_sequences,
)
from logsieve.schema import LABEL

logger = logging.getLogger(__name__)

__all__ = ["AttentionGRU", "LabelEstimate", "PLELog", "composition_means", "estimate_labels"]

CITATION = (
    "Lin Yang, Junjie Chen, Zan Wang, Weijing Wang, Jiajun Jiang, Xuyuan Dong, Wenbin Zhang. "
    "Semi-supervised Log-based Anomaly Detection via Probabilistic Label Estimation. ICSE 2021. "
    "https://doi.org/10.1109/ICSE43902.2021.00130"
)

# provenance codes of LabelEstimate.source
KNOWN_NORMAL, NORMAL_CLUSTER, OTHER_CLUSTER, NOISE_AS_NORMAL, NOISE_AS_ANOMALY = range(5)
SOURCE_NAMES = (
    "known_normal",
    "normal_cluster",
    "other_cluster",
    "noise_as_normal",
    "noise_as_anomaly",
)


@dataclass(frozen=True, eq=False)
class LabelEstimate:
    """Result of :func:`estimate_labels`, one entry per window.

    Attributes
    ----------
    p_anomalous : ndarray of float64
        Probabilistic label: the training target ``P(anomalous)`` (0 for known normals).
    cluster : ndarray of int64
        HDBSCAN cluster (-1 = noise).
    membership : ndarray of float64
        HDBSCAN membership strength in [0, 1] (0 for noise).
    source : ndarray of int8
        How the label was obtained: index into :data:`SOURCE_NAMES`.
    min_cluster_size, min_samples : int
        The HDBSCAN settings actually used (after capping).
    """

    p_anomalous: np.ndarray
    cluster: np.ndarray
    membership: np.ndarray
    source: np.ndarray
    min_cluster_size: int
    min_samples: int

    @property
    def predicted(self) -> np.ndarray:
        """Hard labels (1 where ``p_anomalous > 0.5``), int8."""
        return (self.p_anomalous > 0.5).astype(np.int8)

    def summary(self) -> dict[str, Any]:
        """JSON-able counts: windows per source, clusters, anomalous share."""
        counts = np.bincount(self.source.astype(np.int64), minlength=len(SOURCE_NAMES))
        clusters = self.cluster[self.cluster >= 0]
        return {
            "windows": int(len(self.p_anomalous)),
            "clusters": int(len(np.unique(clusters))),
            "estimated_anomalous": int(self.predicted.sum()),
            "mean_p_anomalous": float(self.p_anomalous.mean()) if len(self.p_anomalous) else 0.0,
            "min_cluster_size": int(self.min_cluster_size),
            "min_samples": int(self.min_samples),
            **{name: int(c) for name, c in zip(SOURCE_NAMES, counts, strict=True)},
        }


def _cap(value: int, n: int) -> int:
    return int(max(2, min(int(value), max(2, n // 20))))


def composition_means(
    codes: np.ndarray, lengths: np.ndarray, table: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean event vector of each distinct event composition, and each window's composition.

    ``codes``/``lengths`` are windows in CSR layout (:class:`EncodedWindows`), ``table``
    the vector of every code. Windows whose event counts are proportional (``[A, B]``
    and ``[B, A, A, B]``) have the same mean vector in exact arithmetic; here they get
    one bit-identical row, computed in float64 by element-wise sums in a fixed order
    (no BLAS call), so a window's features do not depend on its position, on the other
    windows or on the number of BLAS threads. HDBSCAN and the "identical to a known
    normal" rule of :func:`estimate_labels` are sensitive to last-bit differences.

    Returns
    -------
    (means, inverse)
        ``means``: shape ``(n_compositions, dim)`` float64 (zeros for an empty window);
        ``inverse``: shape ``(n_windows,)``, the row of ``means`` of each window.
    """
    tab = np.asarray(table, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    n, width = len(lengths), len(tab)
    if n == 0:
        return np.zeros((0, tab.shape[1])), np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(n, dtype=np.int64), lengths)
    pair, count = np.unique(owner * width + np.asarray(codes, dtype=np.int64), return_counts=True)
    window, code = pair // width, pair % width
    k = 0
    key = np.zeros((n, 0), dtype=np.int64)
    if len(pair):
        starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
        per_window = np.diff(np.r_[starts, len(pair)])
        reduced = count // np.repeat(np.gcd.reduceat(count, starts), per_window)
        rank = np.arange(len(pair)) - np.repeat(starts, per_window)
        k = int(per_window.max())
        # one row per window: its (code, reduced count) pairs in code order, zero-padded
        key = np.zeros((n, 2 * k), dtype=np.int64)
        key[window, 2 * rank] = code
        key[window, 2 * rank + 1] = reduced
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    means = np.zeros((len(uniq), tab.shape[1]))
    for j in range(k):  # fixed order: the j-th distinct event of every composition
        means += uniq[:, 2 * j + 1, None] * tab[uniq[:, 2 * j]]
    total = uniq[:, 1::2].sum(axis=1).astype(np.float64)[:, None]
    np.divide(means, total, out=means, where=total > 0)
    return means, inverse.reshape(-1).astype(np.int64)


def estimate_labels(
    features: np.ndarray,
    known_normal: np.ndarray,
    *,
    min_cluster_size: int = 100,
    min_samples: int = 100,
    reduce_dim: int | None = 50,
) -> LabelEstimate:
    """PLELog's probabilistic label estimation by HDBSCAN clustering.

    Parameters
    ----------
    features : ndarray, shape (n_windows, dim)
        Window representations (PLELog: mean semantic vectors).
    known_normal : ndarray of bool, shape (n_windows,)
        Windows whose normal label is known; the others are unlabelled.
    min_cluster_size, min_samples : int
        HDBSCAN parameters (the paper's 100 / 100), capped at 5 % of the windows
        (at least 2).
    reduce_dim : int or None
        PCA to this many dimensions first when the features have more; None keeps them.

    Returns
    -------
    LabelEstimate
        ``p_anomalous``: 0 for known normals; for an unlabelled window in a cluster
        with a known normal ``(1 - m) / 2``, in another cluster ``(1 + m) / 2``
        (``m`` = membership strength); for noise 0 when identical to a known normal,
        else 1. Deterministic (PCA by full SVD, HDBSCAN has no randomness).
    """
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float64)
    known = np.asarray(known_normal, dtype=bool)
    n = len(x)
    if x.ndim != 2 or known.shape != (n,):
        raise LogsieveError(f"features {x.shape} and known_normal {known.shape} do not match")
    if n == 0:
        empty = np.zeros(0)
        return LabelEstimate(empty, empty.astype(np.int64), empty, empty.astype(np.int8), 0, 0)
    if not known.any():
        raise LogsieveError("label estimation needs at least one known-normal window")
    if not np.isfinite(x).all():
        raise LogsieveError("window features must be finite")
    mcs, ms = _cap(min_cluster_size, n), _cap(min_samples, n)
    # identical rows stay identical after the projection: each distinct row is projected
    # once (a row projected at another position of a BLAS product can differ in its last
    # bits, which splits a block of duplicates into a cloud HDBSCAN cuts at random)
    distinct, inverse = np.unique(x, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    reduced = x
    if reduce_dim is not None and x.shape[1] > int(reduce_dim) and n > int(reduce_dim):
        pca = PCA(n_components=int(reduce_dim), svd_solver="full").fit(x)
        reduced = pca.transform(distinct)[inverse]
    if n <= 2:
        cluster = np.full(n, -1, dtype=np.int64)
        membership = np.zeros(n)
    else:
        model = HDBSCAN(min_cluster_size=mcs, min_samples=min(ms, n - 1), copy=True).fit(reduced)
        cluster = np.asarray(model.labels_, dtype=np.int64)
        membership = np.asarray(model.probabilities_, dtype=np.float64)
    normal_clusters = np.unique(cluster[known & (cluster >= 0)])
    in_normal = np.isin(cluster, normal_clusters) & (cluster >= 0)
    noise = cluster < 0
    # noise windows: normal only when identical to a known normal (authors' rule)
    normal_rows = np.zeros(inverse.max() + 1, dtype=bool)
    normal_rows[inverse[known]] = True
    same_as_normal = normal_rows[inverse]

    source = np.full(n, OTHER_CLUSTER, dtype=np.int8)
    source[in_normal] = NORMAL_CLUSTER
    source[noise & same_as_normal] = NOISE_AS_NORMAL
    source[noise & ~same_as_normal] = NOISE_AS_ANOMALY
    source[known] = KNOWN_NORMAL
    p = np.where(source == NORMAL_CLUSTER, (1.0 - membership) / 2.0, (1.0 + membership) / 2.0)
    p = np.where(source == NOISE_AS_NORMAL, 0.0, p)
    p = np.where(source == NOISE_AS_ANOMALY, 1.0, p)
    p = np.where(source == KNOWN_NORMAL, 0.0, p)
    est = LabelEstimate(p.astype(np.float64), cluster, membership, source, mcs, ms)
    logger.info("PLELog label estimation: %s", est.summary())
    return est


class AttentionGRU(nn.Module):
    """Bidirectional GRU with additive attention pooling -> one logit (anomalous).

    Input: ``(batch, length, dim)`` event vectors (right-padded) and the lengths.
    During training whole events are dropped with probability ``dropout`` (PLELog's
    input dropout) and GRU layers are separated by dropout.
    """

    def __init__(self, dim: int, hidden_size: int, num_layers: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = float(dropout)
        self.gru = nn.GRU(
            dim,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=self.dropout if num_layers > 1 else 0.0,
        )
        width = 2 * hidden_size
        self.attention = nn.Linear(width, width)
        self.context = nn.Linear(width, 1, bias=False)
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits (batch,), attention weights (batch, length))``."""
        if self.training and self.dropout > 0:
            keep = torch.full(x.shape[:2], 1.0 - self.dropout, device=x.device, dtype=x.dtype)
            x = x * (torch.bernoulli(keep) / (1.0 - self.dropout)).unsqueeze(-1)
        width = x.shape[1]
        lens = lengths.clamp(min=1, max=width)
        packed = pack_padded_sequence(x, lens.cpu(), batch_first=True, enforce_sorted=False)
        hidden, _ = self.gru(packed)
        hidden, _ = pad_packed_sequence(hidden, batch_first=True, total_length=width)
        scores = self.context(torch.tanh(self.attention(hidden))).squeeze(-1)
        mask = torch.arange(width, device=x.device)[None, :] < lens[:, None]
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        pooled = (weights.unsqueeze(-1) * hidden).sum(dim=1)
        return self.out(pooled).squeeze(-1), weights


@register_detector("plelog")
class PLELog(SemanticEventsMixin, TorchDetector):
    """PLELog: HDBSCAN probabilistic labels + attention GRU (Yang et al., ICSE 2021).

    Parameters
    ----------
    known_normal_fraction : float, default 0.5
        Share of the training windows labelled 0 whose label is kept (chosen at random
        with ``random_state``); all other training windows are unlabelled.
    min_cluster_size, min_samples : int, default 100, 100
        HDBSCAN settings of the label estimation (capped at 5 % of the windows).
    reduce_dim : int or None, default 50
        PCA dimension before clustering (None: no reduction).
    hidden_size : int, default 100
        GRU units per direction and layer.
    num_layers : int, default 2
    dropout : float, default 0.33
    max_len : int, default 500
        Longer windows keep their last ``max_len`` events in the classifier.
    embedder : {"template2vec", "word2vec", "fasttext"}, default "template2vec"
    embedding_dim : int, default 100
    include_anomalies : bool, default True
        Keep windows labelled 1 in training (as unlabelled data; their label is unused).
    epochs, batch_size, lr, weight_decay, patience, device, num_threads
        Training; defaults 40 epochs, batch 100, Adam lr 2e-3, no early stopping
        (``patience=None``: the validation loss is only reported, on the normal
        validation windows).
    threshold, contamination, valid_fraction, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`; ``"auto"`` is 0.5.

    Attributes
    ----------
    label_estimate_ : LabelEstimate
        The probabilistic labels of the training windows (not saved with the model).
    label_summary_ : dict
        :meth:`LabelEstimate.summary` of it (saved).
    vocab_, embedder_, event_vectors_, extra_event_ids_
        See :class:`~logsieve.detectors.neural.semantic_events.SemanticEventsMixin`.
    module_ : AttentionGRU
    """

    description = (
        "semi-supervised: HDBSCAN probabilistic labels from known normals, attention-GRU classifier"
    )
    citation = CITATION
    input_kind = "semantic"
    requires_labels = False
    score_batch_size: ClassVar[int] = 512

    known_normal_fraction: float = 0.5
    min_cluster_size: int = 100
    min_samples: int = 100
    reduce_dim: int | None = 50
    hidden_size: int = 100
    num_layers: int = 2
    dropout: float = 0.33
    max_len: int = 500
    embedder: str = "template2vec"
    embedding_dim: int = 100
    include_anomalies: bool = True
    epochs: int = 40
    batch_size: int = 100
    lr: float = 2e-3
    patience: int | None = None
    num_threads: int | None = 1

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {
            "hidden_size": 32,
            "num_layers": 1,
            "epochs": 60,
            "batch_size": 16,
            "lr": 2e-2,
            "dropout": 0.0,
            "embedding_dim": 8,
            "min_cluster_size": 5,
            "min_samples": 3,
        }

    # ------------------------------------------------------------------ params
    def _validate_params(self) -> None:
        super()._validate_params()
        check_positive_ints(
            self, "hidden_size", "num_layers", "max_len", "min_cluster_size", "min_samples"
        )
        rd = self.reduce_dim
        if rd is not None and (isinstance(rd, bool) or int(rd) < 1):
            raise LogsieveError(f"reduce_dim must be a positive integer or None, not {rd!r}")
        if not 0.0 < float(self.known_normal_fraction) <= 1.0:
            raise LogsieveError(
                f"known_normal_fraction must be in (0, 1], not {self.known_normal_fraction!r}"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise LogsieveError(f"dropout must be in [0, 1), not {self.dropout!r}")
        self._validate_semantic_params()

    # ------------------------------------------------------------------ labels
    def _known_normal_mask(self, train: pl.DataFrame) -> np.ndarray:
        labels = train.get_column(LABEL).cast(pl.Float64).fill_null(np.nan).to_numpy()
        normal = np.flatnonzero(labels == 0)
        if len(normal) == 0:
            raise LogsieveError(
                "PLELog is semi-supervised: it needs training windows labelled 0 (known normal); "
                "found none"
            )
        n_keep = max(1, int(round(float(self.known_normal_fraction) * len(normal))))
        rng = np.random.default_rng(self._semantic_seed())
        chosen = rng.choice(normal, size=n_keep, replace=False) if n_keep < len(normal) else normal
        mask = np.zeros(train.height, dtype=bool)
        mask[chosen] = True
        return mask

    def window_features(self, windows: pl.DataFrame) -> np.ndarray:
        """Mean semantic vector of each window (the clustering representation), float64.

        Unknown events count as zero vectors. Computed by :func:`composition_means`:
        windows with proportional event counts get bit-identical rows, whatever their
        position and the BLAS thread count (the label estimation depends on it).
        """
        if not hasattr(self, "event_vectors_"):
            from logsieve.errors import NotFittedError

            raise NotFittedError("this PLELog is not fitted yet: call fit() first")
        enc = self._input_vocab().encode(check_windows(windows))
        means, inverse = composition_means(enc.codes, enc.lengths, self._semantic_table())
        return means[inverse]

    # ------------------------------------------------------------------ data
    def _sequence_arrays(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        enc = self._input_vocab().encode(windows)
        codes = pad_sequences(enc, max_len=int(self.max_len), side="right")
        lengths = np.minimum(enc.lengths, int(self.max_len))
        return {"codes": codes.astype(np.int64), "length": lengths.astype(np.int64)}

    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        self._fit_semantics(train)
        known = self._known_normal_mask(train)
        est = estimate_labels(
            self.window_features(train),
            known,
            min_cluster_size=int(self.min_cluster_size),
            min_samples=int(self.min_samples),
            reduce_dim=None if self.reduce_dim is None else int(self.reduce_dim),
        )
        self.label_estimate_ = est
        self.label_summary_ = est.summary()
        distinct, inverse, counts = distinct_windows(train)
        target = np.bincount(inverse, weights=est.p_anomalous, minlength=distinct.height) / counts
        arrays = self._sequence_arrays(distinct)
        arrays["target"] = target.astype(np.float32)
        arrays["weight"] = counts.astype(np.float32)
        logger.info(
            "PLELog: %d training windows (%d distinct), %d known normal, %d estimated anomalous",
            train.height,
            distinct.height,
            int(known.sum()),
            self.label_summary_["estimated_anomalous"],
        )
        return arrays

    def _valid_for_loss(self, valid: pl.DataFrame) -> pl.DataFrame:
        if valid.height == 0:
            return valid
        labels = valid.get_column(LABEL)
        return valid.filter(labels.is_null() | (labels == 0))

    def _prepare(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        """Arrays with target 0: validation-loss windows and :meth:`update` windows are normal."""
        distinct, _, counts = distinct_windows(windows)
        arrays = self._sequence_arrays(distinct)
        arrays["target"] = np.zeros(distinct.height, dtype=np.float32)
        arrays["weight"] = counts.astype(np.float32)
        return arrays

    # ------------------------------------------------------------------ network
    def build_module(self) -> nn.Module:
        return AttentionGRU(self.semantic_dim_, self.hidden_size, self.num_layers, self.dropout)

    def _forward(self, module: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = batch["length"]
        width = max(1, int(lengths.max())) if lengths.numel() else 1
        codes = batch["codes"][:, :width]
        x = self._table_tensor(codes.device)[codes]
        return module(x, lengths)

    def training_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        logits, _ = self._forward(module, batch)
        target = batch["target"].to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none")

    def _natural_threshold(self) -> float:
        return 0.5

    # ------------------------------------------------------------------ scoring
    def _prob_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        logits, _ = self._forward(module, batch)
        return torch.sigmoid(logits).double().cpu()

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        arrays = self._sequence_arrays(windows)
        if windows.height == 0:
            return np.zeros(0)
        return torch.cat(self._infer(self._prob_step, arrays)).numpy().astype(np.float64)

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Score and the events the classifier attended to most, one dict per window.

        Each dict has ``window_id``, ``score`` (``P(anomalous)``), ``threshold``,
        ``is_anomaly`` and ``attention``: the ``top`` positions (default 5) with the
        largest attention weights, each with ``position``,
        ``line_id``, ``event_id``, ``template``, ``weight`` and ``unseen`` (event not
        in the training vocabulary). Positions count within the last ``max_len`` events.
        """
        self._check_fitted()
        windows = check_windows(windows)
        distinct, inverse, _ = distinct_windows(windows)
        arrays = self._sequence_arrays(distinct)

        def step(module: nn.Module, batch: Batch) -> tuple[torch.Tensor, list[np.ndarray]]:
            logits, weights = self._forward(module, batch)
            lengths = batch["length"].tolist()
            rows = [weights[i, : int(n)].cpu().numpy() for i, n in enumerate(lengths)]
            return torch.sigmoid(logits).double().cpu(), rows

        out = self._infer(step, arrays) if distinct.height else []
        scores = torch.cat([o[0] for o in out]).numpy() if out else np.zeros(0)
        weights = [w for o in out for w in o[1]]
        tokens = event_id_series(distinct).to_list()
        k = 5 if top is None else max(1, int(top))
        details: dict[int, list[dict[str, Any]]] = {}
        for u, w in enumerate(weights):
            seq = tokens[u]
            offset = max(0, len(seq) - int(self.max_len))  # positions of the kept tail
            order = np.argsort(-w, kind="stable")[:k]
            details[u] = [
                {
                    "position": int(offset + p),
                    "event_id": seq[offset + p],
                    "template": self.templates_.get(seq[offset + p]),
                    "weight": float(w[p]),
                    "unseen": seq[offset + p] not in self.vocab_,
                }
                for p in order
            ]
        return explanations_by_row(self, windows, inverse, scores, details, "attention")

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        state["label_summary_"] = dict(getattr(self, "label_summary_", {}) or {})
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.label_summary_ = dict(state.get("label_summary_") or {})
        super()._set_state(state, arrays)
