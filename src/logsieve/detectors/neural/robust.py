"""Supervised neural detectors and noise-robust training on mislabelled windows.

Real window labels are noisy (coarse incident marks, heuristics, another detector),
and a few percent of flipped labels can wreck a supervised log model.
:class:`SupervisedTorchDetector` is the base of the supervised networks (LogRobust,
CNN) and its ``robust`` parameter switches on a noise-robust method (co-teaching,
small-loss, GCE, confident learning), all inside the shared trainer;
:func:`flip_labels` injects uniform label noise for experiments.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Self, cast

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from logsieve.detectors.base import ProgressCallback, check_positive_ints, resolve_seed
from logsieve.detectors.neural.trainer import Batch, TorchDetector, infer_batches
from logsieve.errors import LogsieveError
from logsieve.features.sequence import check_windows, distinct_windows
from logsieve.schema import EVENT_IDS, LABEL

logger = logging.getLogger(__name__)

__all__ = [
    "ROBUST_METHODS",
    "NetworkGroup",
    "class_forget_rates",
    "class_small_loss_keep",
    "confident_off_diagonal",
    "confident_thresholds",
    "SupervisedTorchDetector",
    "flip_labels",
    "forget_schedule",
    "generalized_cross_entropy",
    "labelled_distinct",
    "small_loss_keep",
]

#: accepted values of the ``robust`` parameter (None: plain cross-entropy)
ROBUST_METHODS = ("confident", "coteaching", "small_loss", "gce")
#: the methods that select small-loss examples
SELECTION_METHODS = ("coteaching", "small_loss")

CITATIONS = {
    "coteaching": "Han, Yao, Yu, Niu, Xu, Hu, Tsang, Sugiyama. Co-teaching: Robust Training of "
    "Deep Neural Networks with Extremely Noisy Labels. NeurIPS 2018.",
    "confident": "Northcutt, Jiang, Chuang. Confident Learning: Estimating Uncertainty in Dataset "
    "Labels. Journal of Artificial Intelligence Research 70, 2021.",
    "gce": "Zhang, Sabuncu. Generalized Cross Entropy Loss for Training Deep Neural Networks with "
    "Noisy Labels. NeurIPS 2018.",
}


# ======================================================================== label noise
def flip_labels(
    windows: pl.DataFrame,
    rate: float,
    seed: int | None = 0,
    *,
    column: str = LABEL,
    return_mask: bool = False,
) -> pl.DataFrame | tuple[pl.DataFrame, np.ndarray]:
    """Flip the labels of a uniformly random share of the labelled windows (label noise).

    Eligible windows are those whose ``column`` is 0 or 1; null labels are never touched.
    Exactly ``round(rate * n_eligible)`` of them are drawn uniformly at random without
    replacement, regardless of their class, and flipped (0 -> 1, 1 -> 0): both
    directions, so the expected number of flips of each class is proportional to its
    size (on HDFS, with 3 % anomalies, about 97 % of the flips turn a normal window into
    an "anomaly"). This is the "mislabelled logs" setting of the ICSE'22 study of
    Le & Zhang, applied per window.

    Parameters
    ----------
    windows
        Any table with an integer 0/1/null label column (a windows table).
    rate
        Share of the ELIGIBLE (labelled) windows to flip, in [0, 1].
    seed
        Seed of ``numpy.random.default_rng``; same input and seed give the same flips.
    column
        Label column name.
    return_mask
        Also return the boolean array (one entry per row) of the flipped rows.

    Returns
    -------
    pl.DataFrame, or (pl.DataFrame, ndarray of bool)
        A copy with flipped labels (the column keeps its dtype); the input is not modified.
    """
    if (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float))
        or not 0.0 <= float(rate) <= 1.0
    ):
        raise LogsieveError(f"flip rate must be a number in [0, 1], not {rate!r}")
    if not isinstance(windows, pl.DataFrame) or column not in windows.columns:
        raise LogsieveError(f"flip_labels needs a DataFrame with a {column!r} column")
    labels = windows.get_column(column)
    values = labels.cast(pl.Float64).to_numpy()
    known = ~np.isnan(values)
    if known.any() and not np.isin(values[known], (0.0, 1.0)).all():
        raise LogsieveError(f"{column} must hold 0, 1 or null to flip labels")
    eligible = np.flatnonzero(known)
    n_flip = int(round(float(rate) * len(eligible)))
    rng = np.random.default_rng(seed)
    chosen = (
        np.sort(rng.choice(eligible, size=n_flip, replace=False))
        if n_flip
        else np.zeros(0, dtype=np.int64)
    )
    mask = np.zeros(windows.height, dtype=bool)
    mask[chosen] = True
    new = values.copy()
    new[mask] = 1.0 - new[mask]
    flipped = pl.Series(column, new, dtype=pl.Float64, nan_to_null=True).cast(labels.dtype)
    out = windows.with_columns(flipped)
    logger.info(
        "flipped %d of %d labelled windows (rate %g, seed %s)", n_flip, len(eligible), rate, seed
    )
    return (out, mask) if return_mask else out


# ======================================================================== pieces
def forget_schedule(epoch: int, forget_rate: float, ramp_epochs: int) -> float:
    """Share of each batch's weight dropped at ``epoch`` (1-based): ``tau * min((epoch-1)/T_k, 1)``.

    This is ``1 - R(T)`` of Han et al. with ``T = epoch - 1`` finished epochs, so the
    first epoch drops nothing and the full ``forget_rate`` applies from epoch ``T_k + 1``.
    ``ramp_epochs = 0`` applies it from the start.
    """
    if ramp_epochs <= 0:
        return float(forget_rate)
    return float(forget_rate) * min(max(epoch - 1, 0) / float(ramp_epochs), 1.0)


def small_loss_keep(loss: torch.Tensor, weight: torch.Tensor | None, forget: float) -> torch.Tensor:
    """Kept share (0..1) of each example when the ``forget`` share of the largest-loss weight goes.

    Examples are sorted by loss, largest first (stable, so ties keep batch order); whole
    examples are dropped while the dropped weight stays below ``forget * total``, and the
    boundary example keeps the remainder of its weight. Without weights every example
    weighs 1. Returns a float tensor shaped like ``loss`` (no gradient).
    """
    loss = loss.detach()
    w = torch.ones_like(loss) if weight is None else weight.detach().to(loss.dtype)
    if forget <= 0.0 or loss.numel() == 0:
        return torch.ones_like(loss)
    order = torch.argsort(loss, descending=True, stable=True)
    ws = w[order]
    before = torch.cumsum(ws, 0) - ws
    budget = float(forget) * ws.sum()
    dropped = torch.minimum(torch.clamp(budget - before, min=0.0), ws)
    keep_sorted = torch.where(ws > 0, 1.0 - dropped / ws.clamp_min(1e-12), torch.zeros_like(ws))
    keep = torch.empty_like(keep_sorted)
    keep[order] = keep_sorted
    return keep


def class_forget_rates(
    n_negative: float, n_positive: float, noise_rate: float
) -> tuple[float, float]:
    """Expected share of mislabelled examples among those LABELLED 0 and 1, under uniform flips.

    With a share ``noise_rate`` of all labels flipped uniformly (as :func:`flip_labels`
    does), the observed counts are ``m1 = (1 - r) n1 + r n0`` and ``m0 = (1 - r) n0 + r n1``
    for true counts ``n0``, ``n1``. Solving for ``n1`` gives the flipped examples among
    the observed positives, ``r n0 / m1``, and negatives, ``r n1 / m0``. On HDFS (3 %
    anomalies) with ``r = 0.1`` that is about 0.76 of the "anomalies" and 0.004 of the
    "normal" windows. Returns ``(rate_0, rate_1)``, each clipped to [0, 0.95].
    """
    r = float(noise_rate)
    total = float(n_negative) + float(n_positive)
    if r <= 0.0 or total <= 0.0 or r >= 0.5:
        return (min(max(r, 0.0), 0.95), min(max(r, 0.0), 0.95))
    n1 = min(max((float(n_positive) - r * total) / (1.0 - 2.0 * r), 0.0), total)
    n0 = total - n1
    rate1 = r * n0 / float(n_positive) if n_positive > 0 else 0.0
    rate0 = r * n1 / float(n_negative) if n_negative > 0 else 0.0
    return (min(max(rate0, 0.0), 0.95), min(max(rate1, 0.0), 0.95))


def class_small_loss_keep(
    loss: torch.Tensor,
    weight: torch.Tensor | None,
    target: torch.Tensor,
    rates: tuple[float, float],
) -> torch.Tensor:
    """:func:`small_loss_keep` within each class: class ``c`` drops its ``rates[c]`` share."""
    keep = torch.ones_like(loss)
    for c, rate in enumerate(rates):
        mask = target == c
        if rate > 0.0 and bool(mask.any()):
            keep[mask] = small_loss_keep(loss[mask], None if weight is None else weight[mask], rate)
    return keep


def confident_thresholds(
    p_anomaly: np.ndarray, labels: np.ndarray, weight: np.ndarray | None = None
) -> np.ndarray:
    """Per-class thresholds ``t_j`` of confident learning: mean ``p_j`` of the rows labelled ``j``.

    The mean is weighted by ``weight`` (the rows' window counts) when given.

    A class with no labelled row gets ``inf`` (nothing can be confidently of it).
    """
    p1 = np.asarray(p_anomaly, dtype=np.float64)
    labels = np.asarray(labels)
    w = np.ones_like(p1) if weight is None else np.asarray(weight, dtype=np.float64)
    probs = np.stack([1.0 - p1, p1], axis=1)
    thresholds = np.full(2, np.inf)
    for j in (0, 1):
        mask = labels == j
        if w[mask].sum() > 0:
            thresholds[j] = float(np.average(probs[mask, j], weights=w[mask]))
    return thresholds


def confident_off_diagonal(
    p_anomaly: np.ndarray,
    labels: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    thresholds: np.ndarray | None = None,
) -> np.ndarray:
    """Rows whose label disagrees with their confident class (two classes, Northcutt et al. 2021).

    ``p_anomaly``: out-of-sample probability of class 1 per row; ``labels``: the given
    0/1 labels; ``thresholds``: ``(t_0, t_1)``, by default :func:`confident_thresholds`
    of these rows (``weight``: the rows' weights, e.g. window counts). A row's confident
    class is the ``j`` with ``p_j >= t_j`` (the larger ``p_j`` when both pass; none
    when neither does). Returns a boolean mask of the off-diagonal rows: a confident
    class exists and differs from the label, and the label is not the model's own
    prediction (``argmax p``; the same guard as cleanlab's filter, which matters when
    one class is so noisy that its threshold ``t_j`` falls far below 0.5).
    """
    p1 = np.asarray(p_anomaly, dtype=np.float64)
    labels = np.asarray(labels)
    if thresholds is None:
        thresholds = confident_thresholds(p1, labels, weight)
    probs = np.stack([1.0 - p1, p1], axis=1)
    passed = probs >= np.asarray(thresholds, dtype=np.float64)[None, :]
    confident = np.where(passed, probs, -1.0).argmax(axis=1)
    predicted = (p1 > 0.5).astype(labels.dtype)
    return passed.any(axis=1) & (confident != labels) & (predicted != labels)


def generalized_cross_entropy(logits: torch.Tensor, target: torch.Tensor, q: float) -> torch.Tensor:
    """Per-example GCE loss ``(1 - p_y ** q) / q`` (Zhang & Sabuncu 2018)."""
    log_p = F.log_softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
    return (1.0 - torch.exp(q * log_p)) / q


def _kept_mean_factor(keep: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Per-example factors turning the trainer's weighted batch mean into the kept weight's mean."""
    w = torch.ones_like(keep) if weight is None else weight.to(keep.dtype)
    kept = (w * keep).sum().clamp_min(1e-12)
    return keep * (w.sum() / kept)


class NetworkGroup(nn.Module):
    """One network, or the two peers of co-teaching (``nets[0]``, ``nets[1]``)."""

    def __init__(self, nets: list[nn.Module]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)


def labelled_distinct(windows: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Distinct ``(event_ids, label)`` rows, their labels (int64) and counts (float32).

    The same sequence labelled both ways stays two rows (as it is in noisy data).
    Rows keep first-seen order, so the result is deterministic.
    """
    windows = check_windows(windows)
    key = "_seq_label"
    keyed = windows.with_columns(
        pl.concat_list(
            pl.col(EVENT_IDS).fill_null([]), pl.col(LABEL).cast(pl.String).fill_null("?")
        ).alias(key)
    )
    distinct, _, counts = distinct_windows(keyed, key)
    labels = distinct.get_column(LABEL).fill_null(0).to_numpy().astype(np.int64)
    return distinct.drop(key), labels, counts.astype(np.float32)


# ======================================================================== base class
class SupervisedTorchDetector(TorchDetector):
    """Two-class neural detector trained on window labels, with optional noise-robust training.

    Subclasses implement :meth:`build_network` (one network), :meth:`network_logits`
    (``(batch, 2)`` logits of one network for a batch), :meth:`_encode` (windows ->
    input arrays) and whatever fitted state they need in :meth:`_prepare_fit`
    (calling :meth:`_training_arrays` at its end). Score of a window = probability of
    the anomaly class (mean over the networks); ``threshold="auto"`` uses 0.5.

    Training rows are distinct ``(event_ids, label)`` pairs weighted by how many windows
    share them (rows heavier than :attr:`max_row_weight` are split), so every "share of
    a batch" below is a share of its WEIGHT, which equals the method on single windows.

    Noise-robust methods (``robust``):

    - ``"coteaching"`` (Han et al., NeurIPS 2018): two networks; in every batch each
      hands its small-loss share to the other, which updates on those only. The dropped
      share ramps up as ``tau * min(T / T_k, 1)`` (``tau = forget_rate``, ``T_k =
      ramp_epochs``): networks fit clean, frequent patterns before they memorise flips.
      The score is the two networks' mean probability.
    - ``"small_loss"``: the one-network variant (it updates on its own small-loss share).
    - ``"gce"`` (Zhang & Sabuncu, NeurIPS 2018): the loss ``(1 - p_y ** q) / q``
      (``q = gce_q``), between cross-entropy and the noise-tolerant MAE.
    - ``"confident"`` (Northcutt et al., JAIR 2021; needs no noise rate): ``cl_folds``
      cross-fitted networks give every row an out-of-fold probability; rows whose
      confident class (``p_j >= t_j``, ``t_j`` the mean ``p_j`` over rows labelled ``j``)
      differs from their label are removed, and the final network trains on the rest.
      Validation rows are judged the same way, so the early-stopping loss is not driven
      by flipped validation labels. The removed share is ``noise_estimate_``.

    ``selection="class"`` (the default; ``"global"`` is the paper's rule) drops each
    class's own share, the one uniform flips at rate ``tau`` imply for the observed label
    counts (:func:`class_forget_rates`): logs are very imbalanced, so a class-blind rule
    would mostly drop rare, not-yet-learned true anomalies. ``tau`` must not exceed the
    real noise rate by much. With a selection method the validation loss is each
    network's own small-loss mean (noisy validation labels make the plain loss rise as
    the flips stop being fitted). The selection lives in :meth:`training_step`, the
    schedule in the trainer's ``on_epoch_start`` hook and confident learning in its
    ``_filter_training_rows`` hook: no forked training loop.

    Parameters (besides :class:`~logsieve.detectors.neural.trainer.TorchDetector`'s)
    ---------------------------------------------------------------------------
    robust : {None, "coteaching", "small_loss", "gce", "confident"}, default None
        Noise-robust training (see above).
    forget_rate : float, default 0.1
        ``tau`` of co-teaching / small-loss, in [0, 0.5): the expected share of flipped
        labels; with ``selection="global"`` the share of each batch's weight dropped
        once the ramp is over.
    selection : {"class", "global"}, default "class"
        Small-loss selection within each class with the class shares implied by
        ``forget_rate`` (:func:`class_forget_rates`), or over the whole batch (paper).
    ramp_epochs : int, default 5
        ``T_k``: epochs over which the dropped share grows linearly from 0 to ``tau``.
    gce_q : float, default 0.7
        ``q`` of the generalized cross-entropy (``robust="gce"``).
    cl_folds : int, default 5
        Cross-fitting folds of confident learning (``robust="confident"``); 5 is
        cleanlab's default. Each fold network sees ``(cl_folds - 1) / cl_folds`` of the
        training rows, so fewer folds are cheaper but judge labels worse (figures in
        docs/results.md).
    ensemble : int, default 1
        Networks trained side by side from different random initialisations (the same
        batches; a deep ensemble, Lakshminarayanan et al., NeurIPS 2017); the score is their
        mean anomaly probability. Costs ``ensemble`` times the training and scoring time;
        it narrows the spread between seeds where their errors differ (see docs/results.md).
        With ``robust="coteaching"`` every member is a co-teaching pair.

    Attributes (``robust="confident"``)
    -----------------------------------
    noise_estimate_ : float
        Share of the training windows' weight found mislabelled and left out.
    """

    requires_labels: ClassVar[bool] = True
    #: inference batches (inputs are (batch, length, dim) tensors: keep them moderate)
    score_batch_size: ClassVar[int] = 1024
    #: largest weight of one training row (heavier distinct rows are split, see _training_arrays)
    max_row_weight: ClassVar[int] = 8

    robust: str | None = None
    forget_rate: float = 0.1
    selection: str = "class"
    ramp_epochs: int = 5
    gce_q: float = 0.7
    cl_folds: int = 5
    ensemble: int = 1

    # ------------------------------------------------------------------ subclass hooks
    def build_network(self) -> nn.Module:
        """One classification network (built from parameters and fitted state)."""
        raise NotImplementedError

    def network_logits(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        """``(batch, 2)`` logits of ``net`` (normal, anomaly)."""
        raise NotImplementedError

    def _encode(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        """Input arrays of ``windows`` (one row per window) for the network."""
        raise NotImplementedError

    # ------------------------------------------------------------------ params
    def _validate_params(self) -> None:
        super()._validate_params()
        if self.robust is not None and self.robust not in ROBUST_METHODS:
            raise LogsieveError(
                f"robust must be None or one of {', '.join(ROBUST_METHODS)}, not {self.robust!r}"
            )
        if not 0.0 <= float(self.forget_rate) < 0.5:
            raise LogsieveError(f"forget_rate must be in [0, 0.5), not {self.forget_rate!r}")
        if self.selection not in ("class", "global"):
            raise LogsieveError(f"selection must be 'class' or 'global', not {self.selection!r}")
        if (
            isinstance(self.ramp_epochs, bool)
            or int(self.ramp_epochs) != self.ramp_epochs
            or self.ramp_epochs < 0
        ):
            raise LogsieveError(
                f"ramp_epochs must be a non-negative integer, not {self.ramp_epochs!r}"
            )
        if not 0.0 < float(self.gce_q) <= 1.0:
            raise LogsieveError(f"gce_q must be in (0, 1], not {self.gce_q!r}")
        if (
            isinstance(self.cl_folds, bool)
            or int(self.cl_folds) != self.cl_folds
            or self.cl_folds < 2
        ):
            raise LogsieveError(f"cl_folds must be an integer >= 2, not {self.cl_folds!r}")
        check_positive_ints(self, "ensemble")

    @property
    def n_networks(self) -> int:
        """Networks of the group: ``ensemble`` members, each a pair under co-teaching."""
        return int(self.ensemble) * (2 if self.robust == "coteaching" else 1)

    # ------------------------------------------------------------------ data
    def _training_arrays(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        """Distinct labelled rows of ``windows`` encoded, with ``label`` and ``weight``.

        A row standing for ``n`` identical windows is repeated ``ceil(n / max_row_weight)``
        times with the count split evenly, so no batch is dominated by one heavy row (the
        objective is unchanged; only the variance between batches drops).
        """
        distinct, labels, counts = labelled_distinct(windows)
        arrays = self._encode(distinct)
        reps = np.ceil(counts / float(self.max_row_weight)).astype(np.int64).clip(min=1)
        rows = np.repeat(np.arange(len(counts)), reps)
        out = {k: v[rows] for k, v in arrays.items()}
        out["label"] = labels[rows]
        out["weight"] = (counts / reps).astype(np.float32)[rows]
        return out

    def _prepare(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        known = (
            windows.filter(pl.col(LABEL).is_not_null())
            if LABEL in windows.columns
            else windows.head(0)
        )
        return self._training_arrays(known)

    # ------------------------------------------------------------------ training
    def build_module(self) -> nn.Module:
        return NetworkGroup([self.build_network() for _ in range(self.n_networks)])

    def _example_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.robust == "gce" and not getattr(self, "_updating", False):
            return generalized_cross_entropy(logits, target, float(self.gce_q))
        return F.cross_entropy(logits, target, reduction="none")

    def current_forget_rate(self) -> float:
        """Dropped share of the batch weight in the epoch being trained (``selection="global"``)."""
        if self.robust not in SELECTION_METHODS or getattr(self, "_updating", False):
            return 0.0
        return forget_schedule(
            getattr(self, "_epoch", 1), float(self.forget_rate), int(self.ramp_epochs)
        )

    def current_class_rates(self) -> tuple[float, float]:
        """Dropped share of each class's weight in the current epoch (``selection="class"``)."""
        if self.robust not in SELECTION_METHODS or getattr(self, "_updating", False):
            return (0.0, 0.0)
        ramp = forget_schedule(getattr(self, "_epoch", 1), 1.0, int(self.ramp_epochs))
        full = getattr(self, "_class_rates", (float(self.forget_rate), float(self.forget_rate)))
        return (ramp * full[0], ramp * full[1])

    def _keep(self, loss: torch.Tensor, batch: Batch) -> torch.Tensor:
        weight = batch.get("weight")
        if self.selection == "class":
            return class_small_loss_keep(loss, weight, batch["label"], self.current_class_rates())
        return small_loss_keep(loss, weight, self.current_forget_rate())

    def training_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        target = batch["label"]
        losses = [
            self._example_loss(self.network_logits(net, batch), target)
            for net in cast(NetworkGroup, module).nets
        ]
        if self.robust not in SELECTION_METHODS or self.current_forget_rate() <= 0.0:
            return torch.stack(losses).mean(0)
        weight = batch.get("weight")
        keeps = [self._keep(loss, batch) for loss in losses]
        if (
            not module.training or self.robust != "coteaching"
        ):  # each network's own small-loss share
            return torch.stack(
                [loss * _kept_mean_factor(k, weight) for loss, k in zip(losses, keeps, strict=True)]
            ).mean(0)
        # co-teaching: each network learns from its PEER's small-loss examples (peers: 0-1,
        # 2-3, ...), the pair's two losses summed, the members averaged
        taught = [losses[i] * _kept_mean_factor(keeps[i ^ 1], weight) for i in range(len(losses))]
        return torch.stack(taught).sum(0) / int(self.ensemble)

    def _filter_training_rows(
        self,
        arrays: dict[str, np.ndarray],
        varrays: dict[str, np.ndarray] | None,
        device: torch.device,
        generator: torch.Generator,
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
        """``robust="confident"``: drop the rows that cross-fitted networks find mislabelled.

        The validation rows (early stopping) are judged too, by the mean of the fold
        networks (none of which trained on them) against the training thresholds:
        with noisy validation labels the loss of a model that has stopped fitting the
        flips RISES, which would stop training after an epoch or two.
        """
        if self.robust != "confident":
            return arrays, varrays
        folds = int(self.cl_folds)
        labels, weight = arrays["label"], arrays["weight"].astype(np.float64)
        rng = np.random.default_rng(resolve_seed(self.random_state, default=0))
        fold_of_row = np.zeros(len(labels), dtype=np.int64)
        for c in (0, 1):  # stratified: every fold holds both classes in proportion
            rows = np.flatnonzero(labels == c)
            fold_of_row[rows[rng.permutation(len(rows))]] = np.arange(len(rows)) % folds
        p_anomaly = np.zeros(len(labels), dtype=np.float64)
        p_valid = np.zeros(len(varrays["label"]) if varrays else 0, dtype=np.float64)
        n_models = 0

        def probabilities(module: nn.Module, data: Mapping[str, np.ndarray]) -> np.ndarray:
            out = infer_batches(
                module,
                self._probability_step,
                data,
                batch_size=self.score_batch_size,
                device=device,
            )
            return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)

        for f in range(folds):
            held = fold_of_row == f
            if not held.any():
                continue
            part = {k: v[~held] for k, v in arrays.items()}
            if len(np.unique(part["label"])) < 2:  # a fold without one class cannot judge the other
                p_anomaly[held] = arrays["label"][held]
                continue
            module, _ = self._train_new(
                part, varrays, device, generator, name=f"{type(self).__name__}.fold{f + 1}"
            )
            p_anomaly[held] = probabilities(module, {k: v[held] for k, v in arrays.items()})
            if varrays:
                p_valid += probabilities(module, varrays)
                n_models += 1
        thresholds = confident_thresholds(p_anomaly, labels, weight)
        issues = confident_off_diagonal(p_anomaly, labels, thresholds=thresholds)
        for c in (0, 1):  # never empty a class: keep it whole if every row of it was flagged
            if (labels == c).any() and not (~issues & (labels == c)).any():
                issues &= labels != c
        total = float(weight.sum())
        self.noise_estimate_ = float(weight[issues].sum() / total) if total else 0.0
        logger.info(
            "%s: confident learning (%d folds) left out %.0f of %.0f training windows as "
            "mislabelled (%.1f %%: %.0f labelled anomalous, %.0f labelled normal)",
            type(self).__name__, folds, weight[issues].sum(), total, 100 * self.noise_estimate_,
            weight[issues & (labels == 1)].sum(), weight[issues & (labels == 0)].sum(),
        )  # fmt: skip
        if varrays and n_models:
            v_issues = confident_off_diagonal(
                p_valid / n_models, varrays["label"], thresholds=thresholds
            )
            if (~v_issues).any():
                logger.info(
                    "%s: %d of %d validation rows left out of the early-stopping loss",
                    type(self).__name__, int(v_issues.sum()), len(v_issues),
                )  # fmt: skip
                varrays = {k: v[~v_issues] for k, v in varrays.items()}
        return {k: v[~issues] for k, v in arrays.items()}, varrays

    def _on_epoch_start(self, epoch: int) -> None:
        self._epoch = int(epoch)

    def update(
        self,
        windows: pl.DataFrame,
        *,
        epochs: int = 5,
        lr: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> Self:
        """Fine-tune from the current weights on labelled windows (feedback).

        An operator's label is trusted: the noise-robust losses and the small-loss
        selection are off while updating (plain weighted cross-entropy).
        """
        self._updating = True
        try:
            return super().update(windows, epochs=epochs, lr=lr, progress=progress)
        finally:
            self._updating = False

    def _fit(
        self, train: pl.DataFrame, valid: pl.DataFrame, progress: ProgressCallback | None
    ) -> None:
        self._epoch = 1
        labels = train.get_column(LABEL)
        n_neg, n_pos = float((labels == 0).sum()), float((labels == 1).sum())
        self._class_rates = class_forget_rates(n_neg, n_pos, float(self.forget_rate))
        if (
            self.robust in SELECTION_METHODS
            and self.selection == "class"
            and n_pos < self.forget_rate * (n_pos + n_neg)
        ):
            logger.warning(
                "%s: only %d of %d training windows are labelled anomalous, fewer than "
                "forget_rate=%g uniform flips would create; selection='class' will drop %.0f %% "
                "of them. Lower forget_rate to the expected noise rate, or use selection='global'.",
                type(self).__name__, n_pos, n_pos + n_neg, self.forget_rate,
                100 * self._class_rates[1],
            )  # fmt: skip
        if self.robust in SELECTION_METHODS:
            logger.info(
                "%s: robust=%s, forget rate %g (%s: normal %.3f, anomaly %.3f), ramp %d epochs",
                type(self).__name__, self.robust, self.forget_rate, self.selection,
                *(self._class_rates if self.selection == "class" else (self.forget_rate,) * 2),
                self.ramp_epochs,
            )  # fmt: skip
        elif self.robust is not None:
            logger.info("%s: robust=%s (q %g)", type(self).__name__, self.robust, self.gce_q)
        super()._fit(train, valid, progress)

    # ------------------------------------------------------------------ scoring
    def _natural_threshold(self) -> float:
        return 0.5

    def _probability_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        probs = [
            torch.softmax(self.network_logits(net, batch), dim=1)[:, 1]
            for net in cast(NetworkGroup, module).nets
        ]
        return torch.stack(probs).mean(0).float().cpu()

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        if windows.height == 0:
            return np.zeros(0, dtype=np.float64)
        chunks = self._infer(self._probability_step, self._encode(windows))
        return torch.cat(chunks).numpy().astype(np.float64)

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        if hasattr(self, "noise_estimate_"):
            state["noise_estimate_"] = float(self.noise_estimate_)
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        if "noise_estimate_" in state:
            self.noise_estimate_ = float(state["noise_estimate_"])
        super()._set_state(state, arrays)

    @classmethod
    def robust_citation(cls, method: str | None) -> str:
        """Reference of a ``robust`` method ("" for None)."""
        if method is None:
            return ""
        return CITATIONS.get("coteaching" if method == "small_loss" else method, "")
