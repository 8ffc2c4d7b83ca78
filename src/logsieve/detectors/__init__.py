"""Anomaly detectors over windows tables.

Nothing heavy is imported here: model modules (and torch) load only when a detector
is created or loaded. See :mod:`.base` for the contract and :mod:`.registry` for the
names.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BaseDetector": "base",
    "register_detector": "registry",
    "list_detectors": "registry",
    "describe_detectors": "registry",
    "detector_info": "registry",
    "get_detector_class": "registry",
    "create_detector": "registry",
    "load_detector": "registry",
    "TorchDetector": "neural.trainer",
    "DeepLog": "deeplog",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'logsieve.detectors' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
