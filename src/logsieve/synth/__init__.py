"""Synthetic HDFS-like logs with labelled, injected anomalies (``logsieve synth``)."""

from __future__ import annotations

from logsieve.synth.generator import (
    FULL_BLOCK_SIZE,
    MIN_LINES,
    NORMAL_WRITE_MAX_S,
    SynthStats,
    generate,
    sidecar_paths,
)
from logsieve.synth.plan import ANOMALY_KINDS, VARIANTS
from logsieve.synth.templates import TEMPLATE_INDEX, TEMPLATES, SynthTemplate

__all__ = [
    "ANOMALY_KINDS",
    "FULL_BLOCK_SIZE",
    "MIN_LINES",
    "NORMAL_WRITE_MAX_S",
    "TEMPLATES",
    "TEMPLATE_INDEX",
    "VARIANTS",
    "SynthStats",
    "SynthTemplate",
    "generate",
    "sidecar_paths",
]
