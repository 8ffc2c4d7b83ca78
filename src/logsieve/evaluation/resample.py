"""Class-ratio resampling of a windows table (the "class distribution" aspect of the study).

:func:`resample_anomalies` changes the number of anomalous windows (label 1) so that
the anomaly ratio ``n_anomalous / (n_normal + n_anomalous)`` of the table hits a
target. Normal windows (label 0) and unlabelled windows (null) are all kept, in their
order; unlabelled windows do not count in the ratio.

- Target below the natural ratio: anomalies are **down-sampled** without replacement.
- Target above it: every anomaly is kept once and the missing ones are drawn **with
  replacement** (up-sampling). A repeated window gets the id ``<window_id>~r<k>``
  (``k`` = 1, 2, ... for its copies) so window ids stay unique.

The number of anomalies is the integer ``a`` whose ratio ``a / (n_normal + a)`` is
closest to the target (:func:`target_anomaly_count`); it is exact whenever
``ratio * n_normal / (1 - ratio)`` is an integer. Rows keep the original order (a
copy comes right after its original), so a chronological validation split inside
``fit`` still takes the latest windows. Seeded: the same input, ratio and seed give
the same table.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.schema import LABEL, WINDOW_ID

logger = logging.getLogger(__name__)

__all__ = ["ResampleResult", "anomaly_ratio", "resample_anomalies", "target_anomaly_count"]


@dataclass(frozen=True)
class ResampleResult:
    """A resampled windows table and its counts."""

    windows: pl.DataFrame
    n_normal: int
    n_anomalous_before: int
    n_anomalous_after: int
    ratio: float  # achieved anomaly ratio (labelled windows only)
    target: float

    def summary(self) -> dict[str, float | int]:
        return {
            "n_normal": self.n_normal,
            "n_anomalous_before": self.n_anomalous_before,
            "n_anomalous_after": self.n_anomalous_after,
            "ratio": self.ratio,
            "target": self.target,
        }


def anomaly_ratio(windows: pl.DataFrame) -> float:
    """Share of anomalous windows among the labelled ones (nan when none is labelled)."""
    lab = windows.get_column(LABEL)
    n1 = int((lab == 1).sum())
    n0 = int((lab == 0).sum())
    return n1 / (n0 + n1) if n0 + n1 else math.nan


def target_anomaly_count(n_normal: int, ratio: float) -> int:
    """The number of anomalies ``a`` whose ratio ``a / (n_normal + a)`` is closest to ``ratio``.

    Ties go to the smaller count.
    """
    _check_ratio(ratio)
    if ratio == 0 or n_normal == 0:
        return 0
    x = ratio * n_normal / (1.0 - ratio)
    lo, hi = math.floor(x), math.ceil(x)
    if lo == hi:
        return int(lo)
    err_lo = abs(lo / (n_normal + lo) - ratio)
    err_hi = abs(hi / (n_normal + hi) - ratio)
    return int(lo if err_lo <= err_hi else hi)


def _check_ratio(ratio: float) -> None:
    if (
        isinstance(ratio, bool)
        or not isinstance(ratio, (int, float))
        or not 0.0 <= float(ratio) < 1.0
    ):
        raise LogsieveError(f"class ratio must be a number in [0, 1), not {ratio!r}")


def resample_anomalies(windows: pl.DataFrame, ratio: float, seed: int = 0) -> ResampleResult:
    """Down- or up-sample the anomalous windows of ``windows`` to the anomaly ratio ``ratio``.

    Parameters
    ----------
    windows
        Windows table with a ``label`` column (0, 1 or null).
    ratio
        Target share of anomalous windows among the labelled ones, in [0, 1).
    seed
        Seed of ``numpy.random.default_rng``.

    Raises
    ------
    LogsieveError
        When the table has no normal window, or no anomalous window to up-sample from.
    """
    _check_ratio(ratio)
    lab = windows.get_column(LABEL).fill_null(-1).cast(pl.Int64).to_numpy()
    anomalous = np.flatnonzero(lab == 1)
    n1 = int(anomalous.size)
    n0 = int(np.sum(lab == 0))
    if n0 == 0:
        raise LogsieveError("cannot resample the class ratio: no normal (label 0) window")
    target = target_anomaly_count(n0, float(ratio))
    rng = np.random.default_rng(seed)
    if target <= n1:
        chosen = (
            rng.choice(anomalous, size=target, replace=False)
            if target
            else np.zeros(0, dtype=np.int64)
        )
    else:
        if n1 == 0:
            raise LogsieveError(
                f"cannot up-sample to anomaly ratio {ratio:g}: no anomalous (label 1) window"
            )
        extra = rng.choice(anomalous, size=target - n1, replace=True)
        chosen = np.concatenate([anomalous, extra])
    keep = np.concatenate([np.flatnonzero(lab != 1), chosen]).astype(np.int64)
    keep.sort(kind="stable")
    out = windows[pl.Series(keep)]
    if target > n1:
        # copy number of each row among equal source rows (0 for the first, the original)
        first = np.r_[True, keep[1:] != keep[:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(keep.size), 0))
        copy = np.arange(keep.size) - start
        out = out.with_columns(
            pl.when(pl.Series(copy) > 0)
            .then(pl.col(WINDOW_ID) + pl.lit("~r") + pl.Series(copy).cast(pl.String))
            .otherwise(pl.col(WINDOW_ID))
            .alias(WINDOW_ID)
        )
    achieved = target / (n0 + target)
    logger.info(
        "class ratio %.4g: %d normal, anomalies %d -> %d (ratio %.4g)",
        ratio,
        n0,
        n1,
        target,
        achieved,
    )
    return ResampleResult(
        windows=out,
        n_normal=n0,
        n_anomalous_before=n1,
        n_anomalous_after=target,
        ratio=achieved,
        target=float(ratio),
    )
