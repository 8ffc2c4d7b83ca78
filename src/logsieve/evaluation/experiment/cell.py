"""One cell: split, resample, add label noise, fit, score the test part, store the row.

:func:`run_cell` computes a cell and writes its test scores (``scores/<key>.parquet``)
and early-detection list (``early/<key>.parquet``); ``_execute`` wraps it so an
ordinary error becomes an ``error`` row, and stores the row.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.evaluation.experiment.data import DataStore, Prepared
from logsieve.evaluation.experiment.plan import Cell, _jsonable, _seed_for
from logsieve.evaluation.experiment.specs import ExperimentConfig
from logsieve.evaluation.experiment.store import _store_row
from logsieve.io.atomic import write_parquet
from logsieve.schema import LABEL, WINDOW_ID

logger = logging.getLogger(__name__)

#: early detection reads at most this many normal test windows (a seeded sample) to
#: measure the false alarms of alerting line by line
EARLY_NORMAL_MAX = 2000


def versions() -> dict[str, str | None]:
    """Versions of logsieve and the libraries that shape results."""
    from logsieve._version import __version__

    out: dict[str, str | None] = {"logsieve": __version__}
    for dist, key in (
        ("torch", "torch"),
        ("numpy", "numpy"),
        ("polars", "polars"),
        ("scikit-learn", "sklearn"),
    ):
        try:
            out[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[key] = None
    return out


def _finite_scores(scores: np.ndarray) -> np.ndarray:
    """Ranking metrics need finite scores: +inf -> max + 1, -inf and nan -> min - 1."""
    s = np.asarray(scores, dtype=np.float64)
    if np.isfinite(s).all():
        return s
    finite = s[np.isfinite(s)]
    hi = float(finite.max()) + 1.0 if finite.size else 1.0
    lo = float(finite.min()) - 1.0 if finite.size else 0.0
    return np.where(np.isposinf(s), hi, np.where(np.isfinite(s), s, lo))


def _part_counts(windows: pl.DataFrame) -> tuple[int, int]:
    return windows.height, int((windows.get_column(LABEL) == 1).sum())


def run_cell(cell: Cell, data: Prepared, run_dir: Path) -> dict[str, Any]:
    """Compute one cell; writes its scores / early files and returns its row (not yet stored)."""
    from logsieve.detectors.registry import create_detector, detector_info
    from logsieve.evaluation.early import early_summary, lines_to_first_alert, resolve_method
    from logsieve.evaluation.metrics import evaluate
    from logsieve.evaluation.noise import flip_labels
    from logsieve.evaluation.resample import resample_anomalies
    from logsieve.grouping.split import split_windows

    row: dict[str, Any] = {}
    split = split_windows(
        data.windows,
        train=cell.train,
        valid=cell.valid,
        test=cell.test,
        method=cell.split,  # type: ignore[arg-type]
        seed=_seed_for(cell.seed, "split"),
        train_normal_only=False,
    )
    summary = split.summary()
    train, valid, test = split.train, split.valid, split.test
    row["n_train_natural"], row["n_train_anomalous_natural"] = _part_counts(train)
    row["leakage_count"] = int(summary["leakage"]["count"])
    row["leakage_fraction"] = float(summary["leakage"]["fraction"])
    if cell.class_ratio is not None:
        train = resample_anomalies(
            train, cell.class_ratio, _seed_for(cell.seed, "ratio-train")
        ).windows
        if cell.class_ratio_scope == "all":
            valid = resample_anomalies(
                valid, cell.class_ratio, _seed_for(cell.seed, "ratio-valid")
            ).windows
            test = resample_anomalies(
                test, cell.class_ratio, _seed_for(cell.seed, "ratio-test")
            ).windows
    flipped = 0
    if cell.label_noise > 0:
        train, n1 = flip_labels(train, cell.label_noise, _seed_for(cell.seed, "label-noise-train"))
        valid, n2 = flip_labels(valid, cell.label_noise, _seed_for(cell.seed, "label-noise-valid"))
        flipped = n1 + n2
    row["labels_flipped"] = flipped
    if detector_info(cell.model).input_kind == "raw":
        from logsieve.grouping.text import attach_messages

        if data.events_path is None:
            raise LogsieveError(
                f"{cell.model} reads raw text; dataset {cell.dataset} has no events table"
            )
        train, valid, test = (attach_messages(w, data.events_path) for w in (train, valid, test))
    for part, frame in (("train", train), ("valid", valid), ("test", test)):
        row[f"n_{part}"], row[f"n_{part}_anomalous"] = _part_counts(frame)
    row["n_test_unlabelled"] = int(test.get_column(LABEL).null_count())
    if test.height == 0:
        raise LogsieveError("the test part is empty")

    detector = create_detector(cell.model, **dict(cell.params), random_state=cell.seed)
    t0 = time.perf_counter()
    detector.fit(train, valid=valid if valid.height else None, templates=data.templates or None)
    row["train_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = np.asarray(detector.decision_function(test), dtype=np.float64)
    row["detect_seconds"] = time.perf_counter() - t0
    threshold = float(detector.threshold_)
    pred = (scores > threshold).astype(np.int8)
    row["threshold"] = threshold
    row["threshold_source"] = str(getattr(detector, "threshold_source_", ""))
    row["n_train_used"] = int(getattr(detector, "n_train_windows_", -1))

    labels = test.get_column(LABEL)
    known = labels.is_not_null().to_numpy()
    y = labels.fill_null(0).to_numpy().astype(np.int8)
    metrics = evaluate(y[known], pred[known], _finite_scores(scores)[known])
    for k in ("precision", "recall", "specificity", "f1", "mcc", "roc_auc", "pr_auc"):
        row[k] = float(metrics.get(k, math.nan))
    for k in ("tp", "fp", "tn", "fn"):
        row[k] = int(metrics[k])
    ids = (
        test.get_column(WINDOW_ID).cast(pl.String)
        if WINDOW_ID in test.columns
        else pl.Series([str(i) for i in range(test.height)])
    )
    scores_df = pl.DataFrame(
        {WINDOW_ID: ids, LABEL: labels.cast(pl.Int8), "score": scores, "pred": pred},
    )
    write_parquet(scores_df, run_dir / "scores" / f"{cell.key}.parquet")

    if cell.early:
        t0 = time.perf_counter()
        hit = test.filter(pl.Series((y == 1) & known & (pred == 1)))
        normal = test.filter(pl.Series((y == 0) & known))
        if normal.height > EARLY_NORMAL_MAX:
            rows = np.sort(
                np.random.default_rng(_seed_for(cell.seed, "early-normal")).choice(
                    normal.height, EARLY_NORMAL_MAX, replace=False
                )
            )
            normal = normal[pl.Series(rows)]
        method = resolve_method(detector, hit if hit.height else normal, cell.early_method)  # type: ignore[arg-type]
        max_prefix = cell.early_max_prefix or None
        early = lines_to_first_alert(detector, hit, method=method, max_prefix=max_prefix)  # type: ignore[arg-type]
        early_normal = lines_to_first_alert(detector, normal, method=method, max_prefix=max_prefix)  # type: ignore[arg-type]
        row["early_seconds"] = time.perf_counter() - t0
        both = pl.concat(
            [
                early.with_columns(pl.lit(1, dtype=pl.Int8).alias(LABEL)),
                early_normal.with_columns(pl.lit(0, dtype=pl.Int8).alias(LABEL)),
            ]
        )
        write_parquet(both, run_dir / "early" / f"{cell.key}.parquet")
        for k, v in early_summary(early).items():
            row[f"early_{k}"] = v
        row["early_method"] = method
        row["early_normal_windows"] = early_normal.height
        alarms = int(early_normal.get_column("lines_seen").is_not_null().sum())
        row["early_false_alarm_rate"] = (
            alarms / early_normal.height if early_normal.height else math.nan
        )
    return row


def _cell_row(
    cell: Cell, aspect: str, data: Prepared | None, config: ExperimentConfig
) -> dict[str, Any]:
    ds = config.datasets[cell.dataset]
    return {
        "key": cell.key,
        "aspect": aspect,
        "dataset": cell.dataset,
        "family": ds.family,
        "grouping": cell.grouping,
        "parsing_noise": cell.parsing_noise,
        "split": cell.split,
        "train_fraction": cell.train,
        "valid_fraction": cell.valid,
        "test_fraction": cell.test,
        "class_ratio": cell.class_ratio,
        "class_ratio_scope": cell.class_ratio_scope,
        "label_noise": cell.label_noise,
        "robust": cell.robust,
        "model": cell.model,
        "seed": cell.seed,
        "early": cell.early,
        "params_json": json.dumps({k: _jsonable(v) for k, v in cell.params}, sort_keys=True),
        "config_json": json.dumps(
            {**cell.settings(), "dataset_spec": ds.describe()}, sort_keys=True, default=str
        ),
        "data_checksum": ds.data_id,
        "windows_checksum": data.windows_checksum if data else None,
        "noise_json": json.dumps(data.info.get("noise_info", {}), sort_keys=True, default=str)
        if data
        else None,
    }


def _execute(
    cell: Cell, aspect: str, store: DataStore, run_dir: Path, vers: dict[str, Any]
) -> dict[str, Any]:
    """Run one cell, never raising for an ordinary error (it becomes an ``error`` row)."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    data: Prepared | None = None
    try:
        data = store.get(*cell.data_key)
        extra = run_cell(cell, data, run_dir)
        status, error = "ok", None
    except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the study
        logger.warning("cell %s failed: %s", cell.label(), exc)
        logger.debug("traceback of %s:\n%s", cell.key, traceback.format_exc())
        extra = {}
        status, error = "error", f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    row = _cell_row(cell, aspect, data, store.config)
    row.update(extra)
    row.update(
        status=status,
        error=error,
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions_json=json.dumps(vers, sort_keys=True),
        **{f"version_{k}": v for k, v in vers.items()},
    )
    _store_row(run_dir, row)
    return row
