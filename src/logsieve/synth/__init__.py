"""Synthetic HDFS-like logs with labelled, injected anomalies (``logsieve synth``)."""

from __future__ import annotations

from logsieve.synth.generator import (
    ANOMALY_KINDS,
    FULL_BLOCK_SIZE,
    MIN_LINES,
    NORMAL_WRITE_MAX_S,
    VARIANTS,
    SynthStats,
    generate,
    sidecar_paths,
)
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
