"""The report's content before rendering (blocks), and how values are written in it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

METRICS = ("precision", "recall", "specificity", "f1", "roc_auc", "pr_auc", "mcc")
METRIC_NAMES = {
    "precision": "P",
    "recall": "R",
    "specificity": "Spec",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "mcc": "MCC",
}
KNOBS = (
    "dataset",
    "grouping",
    "parsing_noise",
    "split",
    "train_fraction",
    "class_ratio",
    "label_noise",
    "robust",
)


@dataclass
class _Block:
    kind: str  # h1 h2 h3 p table img pre
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    png: bytes = b""
    name: str = ""


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _mean_std(mean: Any, std: Any, n: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if n > 1 and std is not None and not (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.3f} ± {std:.3f}"
    return f"{mean:.3f}"


def _knob_value(row: dict[str, Any], knob: str) -> str:
    v = row.get(knob)
    if knob == "class_ratio" and v is None:
        return "natural"
    return _fmt(v, 4) if isinstance(v, float) else str(v)


def _is_robust(value: Any) -> bool:
    return value not in (None, "none", False, "")


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)
