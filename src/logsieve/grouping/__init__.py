"""Grouping log lines into windows, importing pre-parsed sequences, and splitting.

Every function here produces or consumes a windows table
(:data:`logsieve.schema.WINDOW_SCHEMA`). Names are resolved lazily so importing
one part never drags in the others.

- :mod:`.windows`: ``group_sessions``, ``group_count``, ``group_time``, ``group``,
  ``Sessions``/``CountWindows``/``TimeWindows`` specs, ``parse_duration``.
- :mod:`.labels`: ``read_labels`` (side-file labels).
- :mod:`.sequences`: ``read_sequences``, ``read_templates``, ``concat_windows``.
- :mod:`.split`: ``split_windows``, ``Split``, ``leakage``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "read_sequences": "sequences",
    "read_templates": "sequences",
    "concat_windows": "sequences",
    "infer_label": "sequences",
    "read_labels": "labels",
    "group": "windows",
    "group_sessions": "windows",
    "group_count": "windows",
    "group_time": "windows",
    "parse_duration": "windows",
    "Sessions": "windows",
    "CountWindows": "windows",
    "TimeWindows": "windows",
    "GroupResult": "windows",
    "HDFS_BLOCK_PATTERN": "windows",
    "split_windows": "split",
    "Split": "split",
    "leakage": "split",
}

__all__ = [  # noqa: RUF022 - same order as _LAZY
    "read_sequences",
    "read_templates",
    "concat_windows",
    "infer_label",
    "read_labels",
    "group",
    "group_sessions",
    "group_count",
    "group_time",
    "parse_duration",
    "Sessions",
    "CountWindows",
    "TimeWindows",
    "GroupResult",
    "HDFS_BLOCK_PATTERN",
    "split_windows",
    "Split",
    "leakage",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'logsieve.grouping' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
