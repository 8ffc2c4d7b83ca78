"""The service's adapter over operator feedback (``logsieve feedback``, issue 12).

``POST /v1/alerts/{id}/feedback`` rebuilds the alert's window from its lines
(``windows_for_alerts``) and writes the next model version with ``apply_feedback`` (the
library function behind ``logsieve feedback``), in place in the model directory. Feedback is
serialised (one version at a time); the caller then swaps the new pipeline in.

"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from logsieve.pipeline import Pipeline

__all__ = ["FeedbackGate", "feedback_kind"]


def _functions() -> tuple[Any, Any, str]:
    from logsieve.pipeline import feedback

    return feedback.apply_feedback, feedback.windows_for_alerts, "feedback"


def feedback_kind() -> str:
    """What applies the feedback (``"feedback"``: :mod:`logsieve.pipeline.feedback`)."""
    return _functions()[2]


class FeedbackGate:
    """Applies one verdict at a time to the model directory."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self._lock = threading.Lock()

    def apply(self, pipe: Pipeline, alert: Mapping[str, Any], label: str) -> dict[str, Any]:
        """Teach the model that ``alert``'s window is ``label``; the report of the new version
        (``model_version`` at least). Raises :class:`~logsieve.errors.LogsieveError`."""
        apply_feedback, windows_for_alerts, _ = _functions()
        with self._lock:
            windows = windows_for_alerts(pipe, [dict(alert)])
            report = dict(apply_feedback(self.model_dir, windows, label))
        report["model_version"] = int(report["model_version"])
        return report
