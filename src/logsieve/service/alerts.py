"""The service's view of the alert store: ``STATE_DIR/alerts.jsonl`` (the watcher writes it;
records in the watch schema) and ``STATE_DIR/feedback.jsonl`` (one line per operator verdict).

Alerts are indexed by ``alert_id`` in arrival order; a record seen again (the watcher replays
alerts after a crash, with the same ids) replaces the first. Subscribers (the SSE stream) get
each new alert and each verdict on their own asyncio queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["FEEDBACK_FILE", "AlertStore"]

FEEDBACK_FILE = "feedback.jsonl"
MAX_KEPT = 100_000
"""Alerts kept in memory (the oldest are forgotten first; the file keeps them all)."""
QUEUE_SIZE = 1000


class AlertStore:
    """Alerts by id, verdicts, and SSE subscribers (module docstring)."""

    def __init__(self, alerts_path: Path, feedback_path: Path) -> None:
        self.alerts_path = alerts_path
        self.feedback_path = feedback_path
        self._alerts: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._subs: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._load()

    def _load(self) -> None:
        for path, add in ((self.alerts_path, self._put), (self.feedback_path, self._mark)):
            if not path.exists():
                continue
            with open(path, encoding="utf-8", errors="replace") as fh:
                for n, line in enumerate(fh, 1):
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        logger.warning("%s:%d: not JSON, skipped", path, n)
                        continue
                    if isinstance(rec, dict) and "alert_id" in rec:
                        add(rec)

    def _put(self, rec: dict[str, Any]) -> None:
        aid = str(rec["alert_id"])
        with self._lock:
            old = self._alerts.get(aid)
            if old is None:
                self._order.append(aid)
                if len(self._order) > MAX_KEPT:
                    self._alerts.pop(self._order.pop(0), None)
            elif "feedback" in old:
                rec = {**rec, "feedback": old["feedback"]}
            self._alerts[aid] = rec

    def _mark(self, verdict: dict[str, Any]) -> None:
        with self._lock:
            rec = self._alerts.get(str(verdict["alert_id"]))
            if rec is not None:
                rec["feedback"] = {k: verdict[k] for k in ("label", "model_version", "at")
                                   if k in verdict}  # fmt: skip

    # ------------------------------------------------------------------ reading
    def get(self, alert_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._alerts.get(alert_id)

    def since(self, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` alerts after ``after`` (an alert id; None: the first ones)."""
        with self._lock:
            start = 0
            if after is not None:
                try:
                    start = self._order.index(after) + 1
                except ValueError:
                    start = len([a for a in self._order if a <= after])
            return [self._alerts[a] for a in self._order[start : start + limit]]

    def __len__(self) -> int:
        return len(self._order)

    # ------------------------------------------------------------------ writing
    def add(self, rec: dict[str, Any]) -> None:
        """A new alert from the engine (any thread); subscribers are told."""
        self._put(rec)
        self._publish("alert", rec)

    def record_feedback(self, alert_id: str, label: str, model_version: int) -> dict[str, Any]:
        verdict = {"alert_id": alert_id, "label": label, "model_version": model_version,
                   "at": time.time()}  # fmt: skip
        with open(self.feedback_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(verdict) + "\n")
        self._mark(verdict)
        self._publish("feedback", verdict)
        return verdict

    # ------------------------------------------------------------------ subscribers
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        q: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self._subs.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        self._subs.discard(q)

    def publish(self, kind: str, payload: dict[str, Any]) -> None:
        self._publish(kind, payload)

    def _publish(self, kind: str, payload: dict[str, Any]) -> None:
        loop = self._loop
        if loop is None or not self._subs:
            return

        def deliver() -> None:
            for q in list(self._subs):
                if q.full():  # a slow reader loses the oldest, never blocks the engine
                    q.get_nowait()
                q.put_nowait((kind, payload))

        with contextlib.suppress(RuntimeError):  # the loop has closed (shutdown)
            loop.call_soon_threadsafe(deliver)
