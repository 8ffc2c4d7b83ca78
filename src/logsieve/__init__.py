"""logsieve: raw system logs in, explained anomalies out.

The public surface is imported lazily so that ``import logsieve`` (and the CLI's
``--help``) stays instant: heavy libraries such as torch load only when a model
actually needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

from logsieve._version import __version__

# name -> "module:attribute"; resolved on first access.
_LAZY = {
    "LogFormat": "logsieve.formats:LogFormat",
    "get_format": "logsieve.formats:get_format",
    "list_formats": "logsieve.formats:list_formats",
    "Mask": "logsieve.parsing.masks:Mask",
    "Drain": "logsieve.parsing.drain:Drain",
    "LogParser": "logsieve.parsing.parser:LogParser",
    "parse_file": "logsieve.parsing.parser:parse_file",
    "group": "logsieve.grouping:group",
    "Sessions": "logsieve.grouping:Sessions",
    "CountWindows": "logsieve.grouping:CountWindows",
    "TimeWindows": "logsieve.grouping:TimeWindows",
    "read_labels": "logsieve.grouping:read_labels",
    "read_sequences": "logsieve.grouping:read_sequences",
    "split_windows": "logsieve.grouping:split_windows",
    "create_detector": "logsieve.detectors.registry:create_detector",
    "list_detectors": "logsieve.detectors.registry:list_detectors",
    "load_detector": "logsieve.detectors.registry:load_detector",
    "generate": "logsieve.synth:generate",
    "Pipeline": "logsieve.pipeline:Pipeline",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'logsieve' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
