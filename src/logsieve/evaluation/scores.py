"""Metrics of a scores file written by ``logsieve detect`` (the job behind ``evaluate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import InputError
from logsieve.evaluation.metrics import evaluate
from logsieve.io.jsonable import clean_json
from logsieve.io.tables import read_table
from logsieve.schema import LABEL

__all__ = ["evaluate_scores"]


def evaluate_scores(path: str | Path) -> dict[str, Any]:
    """Precision, recall, specificity, F1, MCC, ROC-AUC, PR-AUC and counts of a scores file.

    Rows with a null label are left out and counted as ``n_unlabelled``; undefined values
    are None.
    """
    path = Path(path)
    df, _ = read_table(path)
    missing = [c for c in ("score", "is_anomaly", LABEL) if c not in df.columns]
    if missing:
        raise InputError(
            path, f"missing column(s) {', '.join(missing)}: not a `logsieve detect` output"
        )
    labelled = df.filter(pl.col(LABEL).is_not_null())
    if labelled.height == 0:
        raise InputError(path, "no labelled window: cannot evaluate")
    out = evaluate(
        labelled[LABEL].to_numpy(),
        labelled["is_anomaly"].cast(pl.Int8).to_numpy(),
        labelled["score"].to_numpy(),
    )
    out["n_unlabelled"] = df.height - labelled.height
    return clean_json(out)
