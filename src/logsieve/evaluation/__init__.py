"""Evaluation: detection metrics (NumPy only); reports come later.

Names are resolved lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    name: "metrics"
    for name in (
        "confusion_counts",
        "precision",
        "recall",
        "specificity",
        "f1",
        "mcc",
        "roc_auc",
        "average_precision",
        "best_f1_threshold",
        "evaluate",
    )
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'logsieve.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
