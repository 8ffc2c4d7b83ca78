"""DeepLog's parameter-value anomaly model (Du et al., CCS 2017, section 3.2).

Per log key, an LSTM predicts the next parameter-value vector from the previous ones;
a prediction error outside a Gaussian confidence interval of the validation errors is
an anomaly. It reads events (lines), not windows, so it is not a registered detector,
but it saves to the same model-directory format.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from logsieve.detectors.neural.trainer import Batch, torch_session, train_module
from logsieve.detectors.persistence import read_model_dir, write_model_dir
from logsieve.errors import LogsieveError, NotFittedError
from logsieve.schema import EVENT_ID

logger = logging.getLogger(__name__)

__all__ = ["ParameterValueModel"]


class _VectorLSTM(nn.Module):
    """LSTM over the last ``h`` parameter-value vectors -> the next vector."""

    def __init__(self, dim: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden_size, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_size, dim)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(history)
        return self.out(hidden[:, -1])


def _mse_step(module: nn.Module, batch: Batch) -> torch.Tensor:
    return ((module(batch["history"]) - batch["target"]) ** 2).mean(dim=1)


@dataclass(eq=False)
class ParameterValueModel:
    """DeepLog's parameter-value anomaly model (paper section 3.2).

    Input: an events table in log order with an ``event_id`` column and a list
    column of numbers (``values_column``, default ``"values"``): the parameter-value
    vector of each line (e.g. the numbers extracted from its message: sizes,
    durations, counters). Every line of one key must carry a vector of the same
    length. With ``use_elapsed=True`` and a ``timestamp`` column, the seconds since
    the previous line (of any key) are prepended to each vector, as in the paper.

    For each key with at least ``min_samples`` lines, the values are standardised
    (mean / std of the key's training lines) and an LSTM (``num_layers`` x
    ``hidden_size``) is trained with MSE to predict each vector from the previous
    ``history_size`` vectors of the same key. The last ``valid_fraction`` of the key's
    vectors is held out; the MSEs of their predictions are modelled as a Gaussian
    ``N(mu, sigma)``. A line is anomalous when its prediction error exceeds the upper
    bound of the two-sided ``confidence`` interval, ``mu + z * sigma``.

    Scores (:meth:`decision_function`) are ``(mse - mu) / sigma``; they are nan for
    keys without a model and for the first ``history_size`` lines of each key in the
    scored table (no full history there), and such lines are never flagged.

    The paper does not fix ``history_size`` for this model; 5 is our default.
    """

    history_size: int = 5
    hidden_size: int = 64
    num_layers: int = 2
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-2
    valid_fraction: float = 0.25
    confidence: float = 0.99
    min_samples: int = 20
    use_elapsed: bool = False
    values_column: str = "values"
    device: str = "auto"
    num_threads: int | None = None
    random_state: int | None = 0

    def _vectors(self, events: pl.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per key: (row indices in ``events``, (n, d) float64 vectors)."""
        if not isinstance(events, pl.DataFrame):
            raise LogsieveError(
                "parameter-value model input must be a Polars DataFrame (an events table)"
            )
        for col in (EVENT_ID, self.values_column):
            if col not in events.columns:
                raise LogsieveError(f"events table has no {col!r} column (parameter-value model)")
        values = events.get_column(self.values_column)
        if not isinstance(values.dtype, pl.List):
            raise LogsieveError(
                f"{self.values_column!r} must be a list column of numbers, not {values.dtype}"
            )
        frame = pl.DataFrame(
            {
                "_row": np.arange(events.height),
                EVENT_ID: events.get_column(EVENT_ID),
                "_v": values.cast(pl.List(pl.Float64)),
            }
        )
        if self.use_elapsed:
            if "timestamp" not in events.columns:
                raise LogsieveError("use_elapsed=True needs a 'timestamp' column")
            elapsed = (
                events.get_column("timestamp").diff().dt.total_microseconds().fill_null(0) / 1e6
            )
            frame = frame.with_columns(
                pl.concat_list(pl.Series("_e", elapsed).cast(pl.Float64), pl.col("_v")).alias("_v")
            )
        frame = frame.with_columns(pl.col("_v").list.len().alias("_d"))
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for (key,), part in frame.group_by(EVENT_ID, maintain_order=True):
            dims = part.get_column("_d").unique()
            if dims.len() != 1:
                raise LogsieveError(
                    f"event {key}: parameter vectors of different lengths "
                    f"({sorted(dims.to_list())})"
                )
            d = int(dims[0])
            if d == 0:
                continue
            flat = part.get_column("_v").explode().to_numpy().astype(np.float64)
            if np.isnan(flat).any():
                raise LogsieveError(f"event {key}: parameter values must not be null or nan")
            out[str(key)] = (part.get_column("_row").to_numpy(), flat.reshape(-1, d))
        return out

    def _windows(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = self.history_size
        idx = np.arange(h, len(vectors))
        hist = vectors[idx[:, None] - h + np.arange(h)[None, :]]
        return hist.astype(np.float32), vectors[idx].astype(np.float32)

    def fit(self, events: pl.DataFrame) -> ParameterValueModel:
        """Train one model per key (keys with fewer than ``min_samples`` lines are skipped)."""
        if not 0.0 < self.valid_fraction < 1.0:
            raise LogsieveError(
                "valid_fraction must be in (0, 1): the Gaussian is fitted on validation errors"
            )
        if not 0.0 < float(self.confidence) < 1.0:
            raise LogsieveError(f"confidence must be in (0, 1), not {self.confidence!r}")
        per_key = self._vectors(events)
        models: dict[str, dict[str, Any]] = {}
        modules: dict[str, nn.Module] = {}
        for key, (_, vectors) in per_key.items():
            n_valid = int(math.ceil(len(vectors) * self.valid_fraction))
            n_train = len(vectors) - n_valid
            if len(vectors) < self.min_samples or n_train <= self.history_size or n_valid < 2:
                logger.info("parameter model: skipping %s (%d lines)", key, len(vectors))
                continue
            mean = vectors[:n_train].mean(axis=0)
            std = vectors[:n_train].std(axis=0)
            std[std == 0] = 1.0
            z = (vectors - mean) / std
            hist, target = self._windows(z)
            cut = n_train - self.history_size
            with torch_session(self.random_state, self.device, self.num_threads) as (
                device,
                generator,
            ):
                module = _VectorLSTM(z.shape[1], self.hidden_size, self.num_layers)
                train_module(
                    module,
                    _mse_step,
                    {"history": hist[:cut], "target": target[:cut]},
                    epochs=self.epochs,
                    batch_size=self.batch_size,
                    lr=self.lr,
                    device=device,
                    generator=generator,
                    name=f"ParameterValueModel[{key}]",
                )
                errors = self._errors(module, hist[cut:], target[cut:], device)
            module.cpu()
            mu, sigma = float(errors.mean()), float(errors.std())
            models[key] = {
                "dim": int(z.shape[1]),
                "mean": mean.tolist(),
                "std": std.tolist(),
                "mu": mu,
                "sigma": max(sigma, 1e-12),
            }
            modules[key] = module
        if not models:
            raise LogsieveError(
                f"no event id has the {self.min_samples} lines with parameter values "
                "needed to fit a model"
            )
        self.z_ = NormalDist().inv_cdf(0.5 + float(self.confidence) / 2.0)
        self.models_, self.modules_ = models, modules
        return self

    def _errors(
        self, module: nn.Module, hist: np.ndarray, target: np.ndarray, device: torch.device
    ) -> np.ndarray:
        module.to(device).eval()
        out = []
        with torch.inference_mode():
            for s in range(0, len(hist), 8192):
                batch = {
                    "history": torch.from_numpy(hist[s : s + 8192]).to(device),
                    "target": torch.from_numpy(target[s : s + 8192]).to(device),
                }
                out.append(_mse_step(module, batch).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def _check(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError("this ParameterValueModel is not fitted yet: call fit() first")

    def score_events(self, events: pl.DataFrame) -> pl.DataFrame:
        """Per line: ``param_mse``, ``param_score`` (z), ``param_anomaly`` (bool), as a DataFrame.

        Rows keep the order of ``events``; ``line_id`` is copied when present.
        """
        self._check()
        mse = np.full(events.height, np.nan)
        score = np.full(events.height, np.nan)
        for key, (rows, vectors) in self._vectors(events).items():
            info = self.models_.get(key)
            if info is None or len(vectors) <= self.history_size:
                continue
            if vectors.shape[1] != info["dim"]:
                raise LogsieveError(
                    f"event {key}: {vectors.shape[1]} parameter values, "
                    f"the model expects {info['dim']}"
                )
            z = (vectors - np.asarray(info["mean"])) / np.asarray(info["std"])
            hist, target = self._windows(z)
            with torch_session(self.random_state, self.device, self.num_threads) as (device, _):
                err = self._errors(self.modules_[key], hist, target, device)
                self.modules_[key].cpu()
            at = rows[self.history_size :]
            mse[at] = err
            score[at] = (err - info["mu"]) / info["sigma"]
        cols: dict[str, Any] = {}
        if "line_id" in events.columns:
            cols["line_id"] = events.get_column("line_id")
        cols[EVENT_ID] = events.get_column(EVENT_ID)
        flagged = np.nan_to_num(score, nan=-np.inf) > self.z_
        return pl.DataFrame(
            {**cols, "param_mse": mse, "param_score": score, "param_anomaly": flagged}
        )

    def decision_function(self, events: pl.DataFrame) -> np.ndarray:
        """z-score of each line's prediction error (nan where not scored)."""
        return self.score_events(events).get_column("param_score").to_numpy()

    def predict(self, events: pl.DataFrame) -> np.ndarray:
        """1 where the error is above ``mu + z * sigma`` of the key's validation errors."""
        return self.score_events(events).get_column("param_anomaly").to_numpy().astype(np.int8)

    # ---- persistence (same directory layout and checks as detectors)
    def save(self, path: str | Path) -> Path:
        self._check()
        arrays = {
            f"{key}/{name}": t.detach().cpu().contiguous().numpy()
            for key, module in self.modules_.items()
            for name, t in module.state_dict().items()
        }
        params = {k: getattr(self, k) for k in self._param_names()}
        doc = {
            "name": "deeplog-parameter-values",
            "params": params,
            "state": {"z_": self.z_, "models_": self.models_},
        }
        return write_model_dir(path, doc, arrays)

    @classmethod
    def _param_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def load(cls, path: str | Path) -> ParameterValueModel:
        doc, arrays = read_model_dir(path)
        if doc.get("name") != "deeplog-parameter-values":
            raise LogsieveError(f"{path}: not a DeepLog parameter-value model")
        params = {k: v for k, v in doc["params"].items() if k in cls._param_names()}
        model = cls(**params)
        model.z_ = float(doc["state"]["z_"])
        model.models_ = {str(k): dict(v) for k, v in doc["state"]["models_"].items()}
        model.modules_ = {}
        for key, info in model.models_.items():
            module = _VectorLSTM(int(info["dim"]), model.hidden_size, model.num_layers)
            prefix = f"{key}/"
            tensors = {
                k[len(prefix) :]: torch.from_numpy(np.array(v))
                for k, v in arrays.items()
                if k.startswith(prefix)
            }
            try:
                module.load_state_dict(tensors, strict=True)
            except RuntimeError as exc:
                raise LogsieveError(
                    f"{path}: saved weights of {key} do not match the network"
                ) from exc
            model.modules_[key] = module.eval()
        return model
