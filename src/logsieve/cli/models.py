"""``logsieve evaluate`` and ``logsieve models``: thin calls into the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["evaluate_command", "models_command"]


def evaluate_command(scores_path: str | Path) -> dict[str, Any]:
    """Metrics of a ``detect`` output (see :func:`logsieve.evaluation.scores.evaluate_scores`)."""
    from logsieve.evaluation.scores import evaluate_scores

    return evaluate_scores(scores_path)


def models_command() -> list[dict[str, Any]]:
    """Every detector: name, description, input kind, whether it needs labels, citation."""
    from logsieve.detectors.registry import describe_detectors

    return describe_detectors()
