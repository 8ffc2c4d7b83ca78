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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any, cast

import numpy as np
import polars as pl
import torch
from torch import nn

from logsieve.detectors.neural.trainer import Batch, torch_session, train_module
from logsieve.detectors.persistence import read_model_dir, write_model_dir
from logsieve.errors import LogsieveError, NotFittedError
from logsieve.schema import EVENT_ID, EVENT_IDS

logger = logging.getLogger(__name__)

__all__ = ["ParameterValueModel", "WindowValueModel"]


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


# ----------------------------------------------------------------------------- windows
def _slog(x: np.ndarray) -> np.ndarray:
    """Signed log1p: sizes and durations span orders of magnitude."""
    return np.sign(x) * np.log1p(np.abs(x))


def _unslog(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.expm1(np.abs(x))


@dataclass
class _Lines:
    """Lines of windows, per key: window row, position, value vectors and history."""

    window: np.ndarray  # window row of each line
    position: np.ndarray  # position in the window
    x: np.ndarray  # (n, d) standardised vectors (nan: missing)
    hist: np.ndarray  # (n, h, d + 1) previous vectors of the key in the window + presence
    first: np.ndarray  # bool: no earlier line of the key in the window
    raw: np.ndarray  # (n, d) actual values


def _value_step(module: nn.Module, batch: Batch) -> torch.Tensor:
    pred = module(batch["history"])
    err = (pred - batch["target"]) ** 2 * batch["mask"]
    return err.sum(dim=1) / batch["mask"].sum(dim=1).clamp(min=1.0)


@dataclass(eq=False)
class WindowValueModel:
    """DeepLog's parameter-value model over windows (paper section 3.2), per log key.

    Input: a windows table with ``event_ids``, ``values`` (list[list[str]]: the tokens each
    line's template masks, from ``logsieve parse --values``) and ``elapsed`` (list[f64]:
    seconds since the previous line of the window; the paper's timing value). For every
    key, a parameter is modelled when at least 95% of its training values are numbers;
    the vector of a line is ``[elapsed, numeric parameters...]`` (signed log1p, then
    standardised per key). An LSTM per key predicts each line's vector from the previous
    ``history_size`` lines of the same key in the same window (none for the key's first
    line there).

    The prediction error of every parameter is modelled as a Gaussian ``N(mu, sigma)``
    fitted on the normal VALIDATION windows (separately for a key's first line in a window
    and for the later ones, whose history makes them far more predictable); a line's
    score is its largest ``|error - mu| / sigma``, a window's the largest of its lines.
    The window threshold ``z_`` is chosen on the validation windows too: the
    ``1 - contamination`` quantile of their scores, and never below the two-sided
    ``confidence`` interval of the Gaussian.
    """

    history_size: int = 3
    hidden_size: int = 32
    num_layers: int = 1
    epochs: int = 15
    batch_size: int = 256
    lr: float = 1e-2
    confidence: float = 0.999
    contamination: float = 0.005
    min_samples: int = 20
    numeric_share: float = 0.95
    sigma_floor: float = 0.02
    device: str = "auto"
    num_threads: int | None = 1
    random_state: int | None = 0

    # ---- data
    @staticmethod
    def check(windows: pl.DataFrame) -> None:
        for col in ("values", "elapsed"):
            if col not in windows.columns:
                raise LogsieveError(
                    f"windows have no {col!r} column: the parameter-value model needs "
                    "`logsieve parse --values` before `group`"
                )

    @staticmethod
    def _rows(windows: pl.DataFrame) -> pl.DataFrame:
        WindowValueModel.check(windows)
        return (
            windows.select(EVENT_IDS, "values", "elapsed")
            .with_row_index("_w")
            .with_columns(pl.int_ranges(pl.col(EVENT_IDS).list.len()).alias("_pos"))
            .explode(EVENT_IDS, "values", "elapsed", "_pos")
            .drop_nulls(EVENT_IDS)
        )

    def _numeric_dims(self, rows: pl.DataFrame) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for (key,), part in rows.group_by(EVENT_IDS, maintain_order=True):
            if part.height < self.min_samples:
                continue
            width = int(cast(int, part.get_column("values").list.len().max()) or 0)
            dims = []
            for p in range(width):
                col = part.get_column("values").list.get(p, null_on_oob=True)
                share = col.cast(pl.Float64, strict=False).is_not_null().mean()
                if share is not None and float(cast(float, share)) >= self.numeric_share:
                    dims.append(p)
            out[str(key)] = dims
        return out

    def _lines(self, rows: pl.DataFrame, key: str, info: Mapping[str, Any] | None) -> _Lines:
        dims = self.dims_[key]
        part = rows.filter(pl.col(EVENT_IDS) == key)
        cols = [part.get_column("elapsed").cast(pl.Float64)]
        cols += [
            part.get_column("values").list.get(p, null_on_oob=True).cast(pl.Float64, strict=False)
            for p in dims
        ]
        raw = np.column_stack([c.to_numpy().astype(np.float64) for c in cols])
        x = _slog(raw)
        if info is not None:
            x = (x - np.asarray(info["mean"])) / np.asarray(info["std"])
        window = part.get_column("_w").to_numpy().astype(np.int64)
        n, d, h = len(x), x.shape[1], self.history_size
        filled = np.nan_to_num(x, nan=0.0)
        hist = np.zeros((n, h, d + 1), dtype=np.float32)
        occ = np.zeros(n, dtype=np.int64)
        if n:
            new = np.r_[True, window[1:] != window[:-1]]
            starts = np.maximum.accumulate(np.where(new, np.arange(n), 0))
            occ = np.arange(n) - starts
        for t in range(1, h + 1):
            ok = occ >= t
            src = np.flatnonzero(ok) - t
            hist[ok, h - t, :d] = filled[src]
            hist[ok, h - t, d] = 1.0
        return _Lines(window, part.get_column("_pos").to_numpy(), x, hist, occ == 0, raw)

    # ---- fitting
    def fit(self, train: pl.DataFrame, valid: pl.DataFrame) -> WindowValueModel:
        """Train on ``train`` windows; Gaussians and threshold from normal ``valid`` windows."""
        rows = self._rows(train)
        self.dims_ = self._numeric_dims(rows)
        self.models_: dict[str, dict[str, Any]] = {}
        self.modules_: dict[str, nn.Module] = {}
        for key in self.dims_:
            lines = self._lines(rows, key, None)
            finite = np.where(np.isfinite(lines.x), lines.x, np.nan)
            mean = np.nan_to_num(np.nanmean(finite, axis=0))
            std = np.nan_to_num(np.nanstd(finite, axis=0))
            std[std < 1e-6] = 1.0
            info: dict[str, Any] = {"mean": mean.tolist(), "std": std.tolist()}
            lines = self._lines(rows, key, info)
            d = lines.x.shape[1]
            mask = np.isfinite(lines.x).astype(np.float32)
            with torch_session(self.random_state, self.device, self.num_threads) as (dev, gen):
                # built inside the seeded session: torch's global RNG is seeded from OS
                # entropy at start-up, so initial weights made outside it differ per run
                module = _VectorLSTM(d + 1, self.hidden_size, self.num_layers)
                module.out = nn.Linear(self.hidden_size, d)
                train_module(
                    module, _value_step,
                    {"history": lines.hist, "target": np.nan_to_num(lines.x).astype(np.float32),
                     "mask": mask},
                    epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                    device=dev, generator=gen, name=f"values[{key}]",
                )  # fmt: skip
            module.cpu().eval()
            self.modules_[key] = module
            self.models_[key] = info
        vrows = self._rows(valid) if valid.height else rows.head(0)
        self.z_ = NormalDist().inv_cdf(0.5 + float(self.confidence) / 2.0)
        for key, info in self.models_.items():
            res = self._residuals(self._lines(rows, key, info), key)
            vres = self._residuals(self._lines(vrows, key, info), key) if vrows.height else None
            info["gauss"] = self._gaussians(res, vres)
        if valid.height:
            scores = self.window_scores(valid)
            q = float(np.quantile(scores, 1.0 - float(self.contamination))) if len(scores) else 0
            self.z_ = max(self.z_, q)
        self.threshold_source_ = "valid" if valid.height else "train"
        return self

    def _residuals(self, lines: _Lines, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(errors (n, d), first-line flags) of ``lines`` under the key's model."""
        module = self.modules_[key]
        pred = np.zeros_like(lines.x)
        with torch.inference_mode():
            for s in range(0, len(lines.x), 8192):
                pred[s : s + 8192] = module(torch.from_numpy(lines.hist[s : s + 8192])).numpy()
        return lines.x - pred, lines.first

    def _gaussians(
        self, res: tuple[np.ndarray, np.ndarray], vres: tuple[np.ndarray, np.ndarray] | None
    ) -> list[list[list[float]]]:
        """Per (first line?, dim): [mu, sigma] from validation errors (training ones when
        validation has fewer than 10 lines of that kind)."""
        out = []
        for first in (True, False):
            per_dim = []
            for dim in range(res[0].shape[1]):
                src = res
                if vres is not None and np.isfinite(vres[0][vres[1] == first, dim]).sum() >= 10:
                    src = vres
                e = src[0][src[1] == first, dim]
                e = e[np.isfinite(e)]
                mu = float(e.mean()) if len(e) else 0.0
                sigma = float(e.std()) if len(e) > 1 else 1.0
                per_dim.append([mu, max(sigma, self.sigma_floor)])
            out.append(per_dim)
        return out

    # ---- scoring
    def _check(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError("this WindowValueModel is not fitted yet")

    def line_scores(
        self, windows: pl.DataFrame
    ) -> dict[str, tuple[_Lines, np.ndarray, np.ndarray]]:
        """Per key: (lines, z (n, d) of every parameter, predictions (n, d) standardised)."""
        self._check()
        rows = self._rows(windows)
        out = {}
        for key, info in self.models_.items():
            lines = self._lines(rows, key, info)
            if not len(lines.x):
                continue
            err, first = self._residuals(lines, key)
            g = np.asarray(info["gauss"])  # (2, d, 2)
            which = np.where(first, 0, 1)
            mu, sigma = g[which, :, 0], g[which, :, 1]
            z = np.abs(err - mu) / sigma
            out[key] = (lines, np.nan_to_num(z, nan=0.0), lines.x - err)
        return out

    def learn_normal(self, windows: pl.DataFrame) -> list[str]:
        """Feedback: the values of ``windows`` are normal. Each Gaussian under which a
        line of theirs is outside the range (``z > z_``) widens its sigma just enough to
        take it in; every other key and parameter keeps its range. Returns the
        ``KEY[#dim]`` names widened."""
        widened: list[str] = []
        for key, (lines, z, _) in self.line_scores(windows).items():
            gauss = self.models_[key]["gauss"]
            for i, j in zip(*np.nonzero(z > self.z_), strict=True):
                which = 0 if lines.first[i] else 1
                mu_sigma = gauss[which][j]
                need = float(z[i, j]) * float(mu_sigma[1]) / float(self.z_)
                mu_sigma[1] = float(np.nextafter(need * (1.0 + 1e-6), math.inf))
                name = f"{key}[{int(j)}]"
                if name not in widened:
                    widened.append(name)
        return widened

    def window_scores(self, windows: pl.DataFrame) -> np.ndarray:
        """Largest parameter z of each window (0 for windows without modelled lines)."""
        scores = np.zeros(windows.height)
        for lines, z, _ in self.line_scores(windows).values():
            np.maximum.at(scores, lines.window, z.max(axis=1))
        return scores

    def explain(self, windows: pl.DataFrame, templates: Mapping[str, str]) -> list[list[dict]]:
        """Per window: its lines above ``z_``: key, parameter, expected range, actual value."""
        out: list[list[dict[str, Any]]] = [[] for _ in range(windows.height)]
        for key, (lines, z, pred) in self.line_scores(windows).items():
            info = self.models_[key]
            mean, std = np.asarray(info["mean"]), np.asarray(info["std"])
            g = np.asarray(info["gauss"])
            for i, dim in zip(*np.nonzero(z > self.z_), strict=True):
                first = 0 if lines.first[i] else 1
                mu, sigma = g[first, dim]
                lo = _unslog((pred[i, dim] + mu - self.z_ * sigma) * std[dim] + mean[dim])
                hi = _unslog((pred[i, dim] + mu + self.z_ * sigma) * std[dim] + mean[dim])
                name = "elapsed" if dim == 0 else f"value {self.dims_[key][dim - 1] + 1}"
                out[int(lines.window[i])].append(
                    {
                        "position": int(lines.position[i]),
                        "event_id": key,
                        "template": templates.get(key),
                        "parameter": name,
                        "actual": float(lines.raw[i, dim]),
                        "expected_range": [float(lo), float(hi)],
                        "z": float(z[i, dim]),
                    }
                )
        for items in out:
            items.sort(key=lambda d: -d["z"])
        return out

    # ---- persistence (inside the DeepLog model directory)
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        params = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        arrays = {
            f"values/{key}/{name}": t.detach().cpu().contiguous().numpy()
            for key, module in self.modules_.items()
            for name, t in module.state_dict().items()
        }
        state = {"params": params, "dims_": self.dims_, "models_": self.models_, "z_": self.z_,
                 "threshold_source_": self.threshold_source_}  # fmt: skip
        return state, arrays

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> WindowValueModel:
        model = cls(**dict(state["params"]))
        model.dims_ = {str(k): [int(p) for p in v] for k, v in state["dims_"].items()}
        model.models_ = {str(k): dict(v) for k, v in state["models_"].items()}
        model.z_ = float(state["z_"])
        model.threshold_source_ = str(state.get("threshold_source_", "valid"))
        model.modules_ = {}
        for key in model.models_:
            d = len(model.dims_[key]) + 1
            module = _VectorLSTM(d + 1, model.hidden_size, model.num_layers)
            module.out = nn.Linear(model.hidden_size, d)
            prefix = f"values/{key}/"
            tensors = {
                k[len(prefix) :]: torch.from_numpy(np.array(v))
                for k, v in arrays.items()
                if k.startswith(prefix)
            }
            module.load_state_dict(tensors, strict=True)
            model.modules_[key] = module.eval()
        return model
