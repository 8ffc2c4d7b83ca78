"""JSON for summaries, reports and explanations: NumPy scalars become Python numbers and
non-finite floats become null, so what logsieve writes is always valid JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = ["clean_json", "to_json"]


def clean_json(obj: Any) -> Any:
    """nan/inf -> None, NumPy scalars -> Python, keys -> str, recursively."""
    t = type(obj)
    if t is str or t is int or t is bool or obj is None:  # the common leaves, first
        return obj
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def to_json(obj: Any) -> str:
    """Compact JSON; non-finite numbers become null. Dumped in C unless some need cleaning."""
    try:
        return json.dumps(obj, default=_default, allow_nan=False, separators=(",", ":"))
    except ValueError:  # a nan or inf somewhere: clean it the slow way
        return json.dumps(clean_json(obj), default=_default, separators=(",", ":"))
