"""Train / validation / test splits of a windows table, and leakage between them.

Chronological splits keep row order: windows tables from :mod:`.windows` are ordered by
start time, so train is the earliest part, then validation, then test. Random splits
use a seeded permutation (``numpy.random.default_rng(seed)``); inside each part the
original row order is kept.

Part sizes are cut at ``round(n * train)`` and ``round(n * (train + valid))``; with
``test`` None the test part is the rest, otherwise it ends at
``round(n * (train + valid + test))`` and the windows after it are not used.

``train_normal_only`` removes anomalous windows (label 1) from train *and* validation
(validation then measures the same thing as training: how well normal data is
modelled; thresholds tuned on it never see anomalies). Windows with an unknown label
are kept. The test part is never filtered.

Leakage: the number (and fraction) of test windows whose event sequence occurs verbatim
among the train windows. Many HDFS sessions repeat exactly, so a high leakage means
the test mostly measures memorisation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.schema import EVENT_IDS, LABEL, START

logger = logging.getLogger(__name__)

SplitMethod = Literal["chronological", "random"]
_SEP = "\x1f"  # joins event ids into one comparable string; never inside an event id


def _sequence_keys(windows: pl.DataFrame) -> pl.Series:
    return windows[EVENT_IDS].list.join(_SEP)


def leakage(train: pl.DataFrame, test: pl.DataFrame) -> tuple[int, float]:
    """Test windows whose event sequence also occurs verbatim in train: (count, fraction).

    The fraction is over all test windows (0.0 for an empty test part).
    """
    if test.height == 0:
        return 0, 0.0
    seen = _sequence_keys(train).unique()
    count = int(_sequence_keys(test).is_in(seen.implode()).sum())
    return count, count / test.height


def _counts(df: pl.DataFrame) -> dict[str, int]:
    lab = df[LABEL]
    return {
        "windows": df.height,
        "anomalous": int((lab == 1).sum()),
        "normal": int((lab == 0).sum()),
        "unlabelled": int(lab.null_count()),
    }


@dataclass(frozen=True)
class Split:
    """The three parts of a split, plus how they were made."""

    train: pl.DataFrame
    valid: pl.DataFrame
    test: pl.DataFrame
    method: str = "chronological"
    seed: int | None = None
    train_normal_only: bool = False
    dropped_anomalous: int = 0

    def summary(self) -> dict[str, Any]:
        """Sizes and label counts of each part, and test-in-train leakage."""
        count, fraction = leakage(self.train, self.test)
        return {
            "method": self.method,
            "seed": self.seed,
            "train_normal_only": self.train_normal_only,
            "dropped_anomalous": self.dropped_anomalous,
            "train": _counts(self.train),
            "valid": _counts(self.valid),
            "test": _counts(self.test),
            "leakage": {"count": count, "fraction": fraction},
        }


def _check_fraction(name: str, value: float | None, low_open: bool) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise LogsieveError(f"{name} fraction must be a number, not {value!r}")
    if value > 1 or value < 0 or (low_open and value == 0):
        bound = "(0, 1]" if low_open else "[0, 1]"
        raise LogsieveError(f"{name} fraction must be in {bound}, not {value}")


def split_windows(
    windows: pl.DataFrame,
    train: float = 0.8,
    valid: float = 0.1,
    test: float | None = None,
    method: SplitMethod = "chronological",
    seed: int = 0,
    train_normal_only: bool = False,
) -> Split:
    """Split a windows table into train / validation / test parts.

    Parameters
    ----------
    windows
        Windows table, rows in time order for a chronological split.
    train, valid, test
        Fractions of the windows; ``test`` None means the rest. They must sum to at most 1.
    method
        ``"chronological"`` (row slices in order) or ``"random"`` (seeded permutation).
    seed
        Seed of the random permutation (unused for chronological splits).
    train_normal_only
        Drop label-1 windows from train and validation (never from test).
    """
    _check_fraction("train", train, low_open=True)
    _check_fraction("valid", valid, low_open=False)
    _check_fraction("test", test, low_open=False)
    total = train + valid + (0.0 if test is None else test)
    if total > 1 + 1e-9:
        raise LogsieveError(f"split fractions sum to {total:g}, more than 1")
    if test is None and train + valid >= 1 - 1e-9:
        logger.warning("split leaves no test windows (train + valid = %g)", train + valid)
    if method not in ("chronological", "random"):
        raise LogsieveError(f"unknown split method {method!r} (chronological or random)")

    n = windows.height
    b1 = round(n * train)
    b2 = round(n * (train + valid))
    b3 = n if test is None else min(n, round(n * total))
    if method == "random":
        order = np.random.default_rng(seed).permutation(n)
        parts = [np.sort(order[a:b]) for a, b in ((0, b1), (b1, b2), (b2, b3))]
        tr, va, te = (windows[pl.Series(idx, dtype=pl.Int64)] for idx in parts)
    else:
        if START in windows.columns and not windows[START].drop_nulls().is_sorted():
            logger.warning("chronological split of windows that are not ordered by start time")
        tr, va, te = windows.slice(0, b1), windows.slice(b1, b2 - b1), windows.slice(b2, b3 - b2)

    dropped = 0
    if train_normal_only:
        keep = pl.col(LABEL).is_null() | (pl.col(LABEL) != 1)
        before = tr.height + va.height
        tr, va = tr.filter(keep), va.filter(keep)
        dropped = before - tr.height - va.height
        if dropped:
            logger.info("train_normal_only: dropped %d anomalous windows from train/valid", dropped)
    if tr.height == 0:
        logger.warning("the train part is empty (%d windows in all)", n)
    return Split(
        train=tr,
        valid=va,
        test=te,
        method=method,
        seed=seed if method == "random" else None,
        train_normal_only=train_normal_only,
        dropped_anomalous=dropped,
    )
