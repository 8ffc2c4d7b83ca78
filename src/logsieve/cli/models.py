"""Thin functions behind ``logsieve train/detect/evaluate/models`` (wired in app.py).

Each takes plain typed arguments, calls the public API and returns a JSON-able summary
(nan becomes None). Files are written atomically.

Outputs:

- ``train``: the model directory (``model.json``, ``weights.safetensors``) plus
  ``train_summary.json`` (parameters, threshold, per-epoch history, timings, split).
  With ``split``, the held-out test windows are written to
  ``<output_dir>/test_windows.parquet`` so that ``detect`` / ``evaluate`` can use them.
- ``detect``: a Parquet file with ``window_id, score, is_anomaly, label,
  explanation`` (``explanation`` is a JSON string for the explained anomalous windows,
  null otherwise).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve.errors import InputError, LogsieveError
from logsieve.io.atomic import write_json, write_parquet
from logsieve.schema import EVENT_IDS, LABEL, TEMPLATE, WINDOW_ID

__all__ = [
    "detect_command",
    "evaluate_command",
    "models_command",
    "parse_split",
    "read_templates_file",
    "read_windows",
    "train_command",
]


def _clean(obj: Any) -> Any:
    """nan/inf -> None, NumPy scalars -> Python, recursively (JSON-friendly)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def read_windows(path: str | Path | pl.DataFrame) -> pl.DataFrame:
    """Read a windows table (Parquet) with a clear error when it is not one."""
    if isinstance(path, pl.DataFrame):
        return path
    path = Path(path)
    try:
        df = pl.read_parquet(path)
    except FileNotFoundError as exc:
        raise InputError(path, "file not found") from exc
    except Exception as exc:  # polars raises several error types on bad files
        raise InputError(path, f"not a readable Parquet windows table ({exc})") from exc
    if EVENT_IDS not in df.columns:
        raise InputError(
            path, f"no {EVENT_IDS!r} column: not a windows table (run `logsieve group` first)"
        )
    return df


def read_templates_file(path: str | Path) -> dict[str, str]:
    """Event id -> template, from Parquet (``event_id``, ``template``) or a templates file."""
    path = Path(path)
    if path.suffix == ".parquet":
        try:
            df = pl.read_parquet(path, columns=["event_id", TEMPLATE])
        except Exception as exc:
            raise InputError(path, f"need 'event_id' and 'template' columns ({exc})") from exc
        df = df.unique("event_id", keep="first", maintain_order=True)
    else:
        from logsieve.grouping.sequences import read_templates

        df = read_templates(path)
    return dict(
        zip(df.get_column("event_id").to_list(), df.get_column(TEMPLATE).to_list(), strict=True)
    )


def parse_split(split: str | tuple[float, ...] | None) -> tuple[float, float, float | None] | None:
    """``"0.8,0.1,0.1"`` / ``"0.8,0.1"`` (test = the rest) -> fractions; None stays None."""
    if split is None:
        return None
    parts = (
        split if isinstance(split, tuple) else tuple(p for p in str(split).split(",") if p.strip())
    )
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise LogsieveError(
            f"bad split {split!r}: expected TRAIN,VALID[,TEST] fractions, e.g. 0.8,0.1,0.1"
        ) from exc
    if len(values) not in (2, 3):
        raise LogsieveError(
            f"bad split {split!r}: expected TRAIN,VALID[,TEST] fractions, e.g. 0.8,0.1,0.1"
        )
    return values[0], values[1], values[2] if len(values) == 3 else None


def with_messages(windows: pl.DataFrame, input_kind: str, events: str | Path | pl.DataFrame | None) -> pl.DataFrame:
    """Raw-text models read a ``messages`` column; attach it from the events table if needed."""
    if input_kind != "raw" or "messages" in windows.columns:
        return windows
    if events is None:
        raise LogsieveError("this model reads raw messages: pass the events table (--events EVENTS.parquet)")
    from logsieve.grouping.text import attach_messages

    return attach_messages(windows, events)


def train_command(
    windows_path: str | Path | pl.DataFrame,
    model: str,
    params: Mapping[str, Any] | None,
    output_dir: str | Path,
    *,
    split: str | tuple[float, ...] | None = None,
    valid: str | Path | None = None,
    split_method: str = "chronological",
    seed: int = 0,
    train_normal_only: bool = False,
    templates: str | Path | None = None,
    progress: Callable[[Any], None] | None = None,
    events: str | Path | pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Train detector ``model`` on a windows Parquet file and save it to ``output_dir``.

    Validation data, in order of precedence: the ``valid`` windows file; else the
    validation part of ``split`` (``logsieve.grouping.split.split_windows``; the test
    part is written to ``output_dir/test_windows.parquet``); else the model's own
    chronological ``valid_fraction`` of the training windows.
    """
    from logsieve.detectors.registry import create_detector

    windows = read_windows(windows_path)
    detector = create_detector(model, **dict(params or {}))
    windows = with_messages(windows, detector.input_kind, events)
    out = Path(output_dir)
    fractions = parse_split(split)
    if valid is not None and fractions is not None:
        raise LogsieveError("give either a validation file or a split, not both")
    split_summary = None
    valid_windows = read_windows(valid) if valid is not None else None
    train = windows
    if fractions is not None:
        from logsieve.grouping.split import split_windows

        parts = split_windows(
            windows, fractions[0], fractions[1], fractions[2], method=split_method, seed=seed,
            train_normal_only=train_normal_only,
        )  # fmt: skip
        train, valid_windows = parts.train, parts.valid if parts.valid.height else None
        split_summary = parts.summary()
        out.mkdir(parents=True, exist_ok=True)
        write_parquet(parts.test, out / "test_windows.parquet")
    template_map = read_templates_file(templates) if templates is not None else None
    t0 = time.perf_counter()
    detector.fit(train, valid=valid_windows, templates=template_map, progress=progress)
    seconds = time.perf_counter() - t0
    detector.save(out)
    summary = {
        "model": detector.name,
        "output_dir": str(out),
        "params": detector.get_params(),
        "threshold": detector.threshold_,
        "threshold_source": detector.threshold_source_,
        "n_train_windows": detector.n_train_windows_,
        "n_valid_windows": None if valid_windows is None else valid_windows.height,
        "train_seconds": seconds,
        "history": getattr(detector, "history_", None),
        "split": split_summary,
        "test_windows": str(out / "test_windows.parquet") if fractions is not None else None,
    }
    summary = _clean(summary)
    write_json(out / "train_summary.json", summary)
    return summary


def detect_command(
    windows_path: str | Path | pl.DataFrame,
    model_dir: str | Path,
    output: str | Path,
    top: int | None = None,
    events: str | Path | pl.DataFrame | None = None,
    templates: str | Path | None = None,
    explain_top: int = 0,
) -> dict[str, Any]:
    """Score windows with a saved model; write ``window_id, score, is_anomaly, label, explanation``.

    ``top``: explain only the ``top`` highest-scoring anomalous windows (None: every
    anomalous window). ``explain_top``: also explain the ``explain_top`` highest-scoring
    windows, flagged or not (what ``logsieve detect --top N`` prints). Windows without an
    explanation get a null ``explanation``.
    """
    from logsieve.detectors.registry import load_detector

    windows = read_windows(windows_path)
    detector = load_detector(model_dir)
    windows = with_messages(windows, detector.input_kind, events)
    if templates is not None and hasattr(detector, "add_templates"):
        # semantic models embed templates first seen after training instead of treating them as zero vectors
        detector.add_templates(read_templates_file(templates))
    if WINDOW_ID not in windows.columns:
        windows = windows.with_columns(pl.int_range(pl.len()).cast(pl.String).alias(WINDOW_ID))
    t0 = time.perf_counter()
    scores = detector.decision_function(windows)
    flagged = scores > detector.threshold_
    chosen = np.flatnonzero(flagged)
    if top is not None:
        if top < 0:
            raise LogsieveError(f"top must be >= 0, not {top}")
        chosen = chosen[np.argsort(-scores[chosen], kind="stable")[:top]]
    if explain_top < 0:
        raise LogsieveError(f"explain_top must be >= 0, not {explain_top}")
    if explain_top:
        worst = np.argsort(-scores, kind="stable")[:explain_top]
        chosen = np.union1d(chosen, worst).astype(np.int64)
    explanations: list[str | None] = [None] * windows.height
    if len(chosen):
        for i, exp in zip(chosen.tolist(), detector.explain(windows[chosen]), strict=True):
            explanations[i] = json.dumps(_clean(exp))
    if LABEL in windows.columns:
        labels = windows.get_column(LABEL).cast(pl.Int8)
    else:
        labels = pl.Series(LABEL, [None] * windows.height, dtype=pl.Int8)
    result = pl.DataFrame(
        {
            WINDOW_ID: windows.get_column(WINDOW_ID).cast(pl.String),
            "score": scores,
            "is_anomaly": flagged,
            LABEL: labels,
            "explanation": pl.Series("explanation", explanations, dtype=pl.String),
        }
    )
    write_parquet(result, output)
    return _clean(
        {
            "model": detector.name,
            "windows": windows.height,
            "anomalies": int(flagged.sum()),
            "explained": int(len(chosen)),
            "threshold": detector.threshold_,
            "seconds": time.perf_counter() - t0,
            "output": str(output),
        }
    )


def evaluate_command(scores_path: str | Path) -> dict[str, Any]:
    """Metrics of a ``detect`` output (rows with a null label are left out and counted).

    Returns precision, recall, specificity, F1, MCC, ROC-AUC, PR-AUC, confusion
    counts, ``n``, ``n_anomalous`` and ``n_unlabelled``; undefined values are None.
    """
    from logsieve.evaluation.metrics import evaluate

    path = Path(scores_path)
    try:
        df = pl.read_parquet(path)
    except FileNotFoundError as exc:
        raise InputError(path, "file not found") from exc
    except Exception as exc:
        raise InputError(path, f"not a readable Parquet file ({exc})") from exc
    missing = [c for c in ("score", "is_anomaly", LABEL) if c not in df.columns]
    if missing:
        raise InputError(
            path, f"missing column(s) {', '.join(missing)}: not a `logsieve detect` output"
        )
    labelled = df.filter(pl.col(LABEL).is_not_null())
    if labelled.height == 0:
        raise InputError(path, "no labelled window: cannot evaluate")
    out = evaluate(
        labelled.get_column(LABEL).to_numpy(),
        labelled.get_column("is_anomaly").cast(pl.Int8).to_numpy(),
        labelled.get_column("score").to_numpy(),
    )
    out["n_unlabelled"] = df.height - labelled.height
    return _clean(out)


def models_command() -> list[dict[str, Any]]:
    """Every detector: name, description, input kind, whether it needs labels, citation."""
    from logsieve.detectors.registry import describe_detectors

    return describe_detectors()
