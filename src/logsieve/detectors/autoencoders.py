"""Dense autoencoders over window count vectors: ``ae`` and ``iforest_ae``.

In the spirit of zpettry's HTTP access-log comparison (a dense autoencoder, an LSTM
autoencoder and an Isolation Forest side by side; only its README is public, so the
designs are ours). A window's score is the reconstruction error of its scaled count
vector; ``iforest_ae`` first leaves out the training windows an Isolation Forest finds
most isolated. Training and scoring see each distinct window once, weighted by its count
(the same objective). The LSTM autoencoder is in :mod:`.lstm_ae`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import polars as pl
import torch
from torch import nn

from logsieve.detectors.base import (
    check_choice,
    check_positive_ints,
    explanations_by_row,
    resolve_seed,
)
from logsieve.detectors.classical.iforest import ArrayIsolationForest
from logsieve.detectors.neural.autoencoder_parts import (
    FEATURE_KINDS,
    SCALES,
    CountFeatures,
    DenseAE,
    dense_loss,
    distinct_for_features,
    expand_rows,
    score_distinct_for_features,
    weighted_quantile,
)
from logsieve.detectors.neural.trainer import Batch, TorchDetector
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.sequence import check_windows

logger = logging.getLogger(__name__)

__all__ = ["ZPETTRY", "Autoencoder", "IsolationForestAE"]

ZPETTRY = (
    "Zachary Pettry. AI-Autoencoder-for-HTTP-Log-Anomaly-Detection (dense autoencoder, "
    "LSTM autoencoder "
    "and Isolation Forest compared on HTTP access logs). "
    "https://github.com/zpettry/AI-Autoencoder-for-HTTP-Log-Anomaly-Detection"
)


# ====================================================================== dense autoencoder
@register_detector("ae")
class Autoencoder(TorchDetector):
    """Dense autoencoder over window count vectors (zpettry-style "NN autoencoder").

    HTTP access logs (the ``weblog`` format) become windows like any log: count windows
    of requests (``logsieve group --window N``), time windows, per-client sessions
    (:func:`logsieve.compare.client_sessions`), or single requests (``--window 1``: the
    score then depends only on the request's template, i.e. how unusual its URL is).

    Parameters
    ----------
    features : {"events", "words", "http", "events+http", "words+http"}, default "events"
        Count vector of a window: event ids, or words of the events' templates (needs
        ``templates=`` in :meth:`fit`; see :class:`CountFeatures`); ``http``: the
        window's HTTP features (status mix, methods, sizes, URL shape, pace; the ``http``
        column that ``logsieve group`` adds for HTTP formats, see
        :mod:`logsieve.features.http`), alone or beside the counts.
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

    def needs_http(self) -> bool:
        """True when the features include the windows' HTTP vector (``http`` column)."""
        return str(self.features).endswith("http")

    def _score_distinct(self, windows: pl.DataFrame) -> np.ndarray:
        if not self.needs_http():
            return super()._score_distinct(windows)
        return score_distinct_for_features(self._score, windows, self.features)

    # ---- data
    def _arrays(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        distinct, _, counts = distinct_for_features(windows, self.features)
        return {"x": self.features_.transform(distinct), "weight": counts.astype(np.float32)}

    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        distinct, _, _ = distinct_for_features(train, self.features)
        self.features_ = CountFeatures(self.features, self.scale).fit(distinct, self.templates_)
        if self.features.startswith("words") and not self.templates_:
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
            net = cast(DenseAE, module)
            z = net.encode(batch["x"])
            return net.decoder(z).cpu(), z.cpu()

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
        distinct, inverse, _ = distinct_for_features(windows, self.features)
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
                    if str(self.features).startswith("events")
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
