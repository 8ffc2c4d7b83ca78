"""Farzad & Gulliver (ICT Express 2020): Isolation Forest and two autoencoders, unsupervised.

Paper: Amir Farzad, T. Aaron Gulliver, "Unsupervised log message anomaly detection",
ICT Express 6(3):229-237, 2020. No official code exists; this is a reconstruction from
the paper's description, which says (abstract and method section as quoted publicly):

- "an unsupervised model ... which employs Isolation Forest and two deep Autoencoder
  networks. The Autoencoder networks are used for training and feature extraction, and
  then for anomaly detection, while Isolation Forest is used for positive sample
  prediction";
- preprocessing: tokenisation and lower-casing, sentences padded to 40 words and those
  with fewer than five words dropped, then word frequencies, shuffling, and scaling of
  the data to [0, 1];
- "the number of negative samples predicted to be positive is low, especially with
  Isolation Forest and one Autoencoder"; evaluated on BGL, OpenStack, Thunderbird.

What we assume (the paper's exact layer sizes, epochs, Isolation Forest settings and
decision threshold are not known here; our choices are marked *ours*):

1. Input unit: a WINDOW, not a single message (logsieve scores windows; a window of one
   line is one message). Features (``features="words"``, the default): the window's
   word frequencies, i.e. the counts of the words of its events' templates
   (:class:`~logsieve.detectors.neural.autoencoder_parts.CountFeatures`), min-max scaled to [0, 1]
   on the training windows (``scale="minmax"``), as in the paper. ``features="events"``
   uses event-id counts instead (the usual "count vector"). The paper's padding to 40
   words and dropping of messages under five words are message-level steps that do
   not carry over to windows; they are not applied.
2. Autoencoder 1 ("training and feature extraction"): a dense autoencoder trained on all
   training windows; its bottleneck codes are the features of the Isolation Forest.
3. Isolation Forest ("positive sample prediction"): fitted on those codes; the
   ``if_contamination`` share (by window count) of training windows it isolates fastest
   is predicted negative (anomalous), the rest positive (normal). *ours*: 0.1, the
   historical scikit-learn default; 100 trees of 256 samples (Liu et al.'s defaults).
4. Autoencoder 2 ("anomaly detection"): the same architecture, trained only on the
   predicted positives. The window score is its mean squared reconstruction error.
   *ours*: ``hidden_size`` 64, ``latent_dim`` 8, ReLU/tanh, Adam; the decision
   threshold is logsieve's usual one (the ``1 - contamination`` quantile of the scores
   of normal validation windows) since the paper's rule is not known here.

The "Isolation Forest and one Autoencoder" variant of the abstract (the forest on the
input features directly, one autoencoder on its positives) is
:class:`~logsieve.detectors.autoencoders.IsolationForestAE` (``iforest_ae``).

Under logsieve's contract, unsupervised models train on windows labelled 0 or null
(``include_anomalies=False``); pass ``include_anomalies=True`` for the paper's fully
unsupervised setting, where the forest must also find the anomalies among the training
windows.
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
    ProgressCallback,
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
from logsieve.detectors.neural.trainer import Batch, TorchDetector, train_module
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.sequence import check_windows

logger = logging.getLogger(__name__)

__all__ = ["FarzadGulliver"]

CITATION = (
    "Amir Farzad, T. Aaron Gulliver. Unsupervised log message anomaly detection. "
    "ICT Express 6(3):229-237, 2020. https://doi.org/10.1016/j.icte.2020.06.003"
)


class _TwoAE(nn.Module):
    """The two autoencoders, kept together so that they save as one state dict."""

    def __init__(self, n_in: int, hidden_size: int, latent_dim: int, dropout: float) -> None:
        super().__init__()
        self.extractor = DenseAE(n_in, hidden_size, latent_dim, dropout)
        self.detector = DenseAE(n_in, hidden_size, latent_dim, dropout)


@register_detector("farzad")
class FarzadGulliver(TorchDetector):
    """Isolation Forest + two autoencoders (Farzad & Gulliver, ICT Express 2020).

    Parameters
    ----------
    features : {"words", "events", "http", "words+http", "events+http"}, default "words"
        Window word frequencies from the templates given to :meth:`fit` (an event
        without template text counts as one pseudo-word), or event-id counts; ``http``:
        the window's HTTP features (:mod:`logsieve.features.http`), alone or beside them.
    scale : {"minmax", "log1p"}, default "minmax"
        The paper scales the frequencies to [0, 1]; ``"log1p"`` dampens long windows.
    hidden_size : int, default 64
    latent_dim : int, default 8
        Both autoencoders: ``n -> hidden -> latent -> hidden -> n``.
    dropout : float, default 0.0
    if_contamination : float, default 0.1
        Share of training windows the Isolation Forest predicts negative.
    n_estimators : int, default 100
    max_samples : int, default 256
    epochs, batch_size, lr, weight_decay, patience, device, num_threads
        Training of each autoencoder, over DISTINCT windows weighted by their counts
        (defaults: 100 epochs, batch 32, Adam 1e-3, patience 10, one CPU thread).
    threshold, contamination, valid_fraction, include_anomalies, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`.

    Attributes
    ----------
    features_ : CountFeatures
    forest_ : ArrayIsolationForest
        Fitted on the extractor's codes of the training windows.
    positive_cut_ : float
        Forest score at or below which a training window was predicted positive.
    n_positive_, n_negative_ : int
        Training windows predicted positive / negative (counting duplicates).
    module_ : nn.Module
        ``extractor`` (autoencoder 1) and ``detector`` (autoencoder 2).
    """

    description = (
        "isolation forest picks likely-normal windows from an autoencoder's codes; "
        "a second autoencoder scores"
    )
    citation = CITATION
    input_kind = "counts"
    requires_labels = False

    features: str = "words"
    scale: str = "minmax"
    hidden_size: int = 64
    latent_dim: int = 8
    dropout: float = 0.0
    if_contamination: float = 0.1
    n_estimators: int = 100
    max_samples: int = 256
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    patience: int | None = 10
    num_threads: int | None = 1

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        # the fixture's templates differ only by a number, which word tokens drop: use event counts
        return {
            "features": "events",
            "hidden_size": 16,
            "latent_dim": 4,
            "epochs": 60,
            "batch_size": 16,
            "lr": 1e-2,
            "patience": 1000,
            "n_estimators": 50,
            "max_samples": 128,
        }

    def _validate_params(self) -> None:
        super()._validate_params()
        check_choice(self, "features", FEATURE_KINDS)
        check_choice(self, "scale", SCALES)
        check_positive_ints(self, "hidden_size", "latent_dim", "n_estimators")
        check_positive_ints(self, "max_samples", minimum=2)
        if not 0.0 <= float(self.dropout) < 1.0:
            raise LogsieveError(f"dropout must be in [0, 1), not {self.dropout!r}")
        if not 0.0 <= float(self.if_contamination) < 0.5:
            raise LogsieveError(
                f"if_contamination must be in [0, 0.5), not {self.if_contamination!r}"
            )

    def needs_http(self) -> bool:
        """True when the features include the windows' HTTP vector (``http`` column)."""
        return str(self.features).endswith("http")

    def _score_distinct(self, windows: pl.DataFrame) -> np.ndarray:
        if not self.needs_http():
            return super()._score_distinct(windows)
        return score_distinct_for_features(self._score, windows, self.features)

    # ------------------------------------------------------------------ data
    def _arrays(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        distinct, _, counts = distinct_for_features(windows, self.features)
        return {"x": self.features_.transform(distinct), "weight": counts.astype(np.float32)}

    def _prepare(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        return self._arrays(windows)

    def build_module(self) -> _TwoAE:
        return _TwoAE(
            self.features_.n_features_, self.hidden_size, self.latent_dim, float(self.dropout)
        )

    def training_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        return dense_loss(cast(_TwoAE, module).detector, batch)

    def _fit(
        self, train: pl.DataFrame, valid: pl.DataFrame, progress: ProgressCallback | None
    ) -> None:
        distinct, _, _ = distinct_for_features(train, self.features)
        if self.features.startswith("words") and not self.templates_:
            logger.warning(
                "FarzadGulliver: no templates given: every event counts as one pseudo-word"
            )
        self.features_ = CountFeatures(self.features, self.scale).fit(distinct, self.templates_)
        arrays = self._arrays(train)
        vwin = self._valid_for_loss(valid)
        varrays = self._arrays(vwin) if vwin.height else None
        seed = resolve_seed(self.random_state)
        common: dict[str, Any] = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "patience": self.patience,
            "progress": progress,
        }
        with self._session() as (device, generator):
            module = self.build_module()
            hist1 = train_module(
                module.extractor,
                dense_loss,
                arrays,
                valid=varrays,
                device=device,
                generator=generator,
                name="FarzadGulliver.extractor",
                **common,
            )
            with torch.inference_mode():
                codes = (
                    module.extractor.encode(torch.from_numpy(arrays["x"]).to(device)).cpu().numpy()
                )
            weight = arrays["weight"].astype(np.float64)
            rows = expand_rows(codes, weight, 100_000, np.random.default_rng(seed))
            self.forest_ = ArrayIsolationForest.fit(
                rows,
                n_estimators=self.n_estimators,
                max_samples=min(int(self.max_samples), len(rows)),
                random_state=seed,
                owner=self.name,
            )
            iso = self.forest_.score(codes)
            if float(self.if_contamination) > 0:
                self.positive_cut_ = weighted_quantile(
                    iso, weight, 1.0 - float(self.if_contamination)
                )
            else:
                self.positive_cut_ = float(iso.max())
            positive = iso <= self.positive_cut_
            self.n_positive_ = round(float(weight[positive].sum()))
            self.n_negative_ = round(float(weight[~positive].sum()))
            logger.info(
                "FarzadGulliver: the forest predicts %d positive, %d negative training windows",
                self.n_positive_,
                self.n_negative_,
            )
            hist2 = train_module(
                module.detector,
                dense_loss,
                {k: v[positive] for k, v in arrays.items()},
                valid=varrays,
                device=device,
                generator=generator,
                name="FarzadGulliver.detector",
                **common,
            )
        module.cpu().eval()
        self.module_ = module
        self.history_ = [dict(r.to_dict(), stage="extractor") for r in hist1] + [
            dict(r.to_dict(), stage="detector") for r in hist2
        ]

    # ------------------------------------------------------------------ scoring
    def _detector_parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reconstruction by autoencoder 2, codes of autoencoder 1) of feature rows."""
        if len(x) == 0:
            return np.zeros_like(x), np.zeros((0, self.latent_dim), dtype=np.float32)

        def step(module: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
            net = cast(_TwoAE, module)
            return net.detector(batch["x"]).cpu(), net.extractor.encode(batch["x"]).cpu()

        parts = self._infer(step, {"x": x})
        return torch.cat([p[0] for p in parts]).numpy(), torch.cat([p[1] for p in parts]).numpy()

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        x = self.features_.transform(windows)
        recon, _ = self._detector_parts(x)
        return ((recon.astype(np.float64) - x) ** 2).mean(axis=1)

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Per window: score, threshold, is_anomaly, ``isolation_score`` and ``predicted_positive``
        (what the forest says about the window's code), and ``features``: the ``top``
        (default 5) entries worst reconstructed by autoencoder 2 (``feature`` = word or
        event id, ``value``, ``reconstructed``, ``error``)."""
        self._check_fitted()
        windows = check_windows(windows)
        distinct, inverse, _ = distinct_for_features(windows, self.features)
        x = self.features_.transform(distinct)
        recon, codes = self._detector_parts(x)
        iso = self.forest_.score(codes)
        err = (recon.astype(np.float64) - x) ** 2
        scores = err.mean(axis=1)  # the scores of the distinct windows, as in _score
        k = max(1, min(int(top) if top is not None else 5, x.shape[1]))
        best = np.argsort(-err, axis=1, kind="stable")[:, :k]
        names = self.features_.feature_names_
        details = [
            [
                {
                    "feature": names[j],
                    "value": float(x[u, j]),
                    "reconstructed": float(recon[u, j]),
                    "error": float(err[u, j]),
                }
                for j in best[u].tolist()
            ]
            for u in range(len(x))
        ]
        forest = [
            {"isolation_score": float(v), "predicted_positive": bool(v <= self.positive_cut_)}
            for v in iso
        ]
        return explanations_by_row(
            self, windows, inverse, scores, details, "features", extra=forest, line_ids=False
        )

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        doc, feats = self.features_.to_state()
        state.update(
            features_=doc,
            forest_samples_=self.forest_.n_samples,
            positive_cut_=self.positive_cut_,
            n_positive_=self.n_positive_,
            n_negative_=self.n_negative_,
        )
        arrays.update({f"features.{k}": v for k, v in feats.items()})
        arrays.update(self.forest_.to_arrays())
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        feats = {k[len("features.") :]: v for k, v in arrays.items() if k.startswith("features.")}
        self.features_ = CountFeatures.from_state(state["features_"], feats)
        self.forest_ = ArrayIsolationForest.from_arrays(arrays, int(state["forest_samples_"]))
        self.positive_cut_ = float(state["positive_cut_"])
        self.n_positive_ = int(state["n_positive_"])
        self.n_negative_ = int(state["n_negative_"])
        super()._set_state(state, arrays)
