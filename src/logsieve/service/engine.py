"""The service's adapter over the streaming engine of ``logsieve watch``.

``POST /v1/ingest`` appends the lines it accepts to a spool file in the state directory
(``STATE_DIR/ingest/ingest.log``, whole lines only), and the engine follows that file like
any ``--watch`` input: one :class:`Watcher`, one alert file (``STATE_DIR/alerts.jsonl``) and
one checkpoint for both sources, so what ``watch`` guarantees for a followed file (exactly
once across a restart, alerts at the breaking line) holds for ingested lines too, and a line
the service answered ``accepted`` for is on disk before the answer.

The engine is :class:`logsieve.streaming.watcher.Watcher`, on its own thread; its alerts
reach the service through ``on_alert`` and its status through ``on_progress``.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["ALERTS_FILE", "SPOOL_FILE", "StreamEngine", "engine_kind"]

ALERTS_FILE = "alerts.jsonl"
SPOOL_DIR = "ingest"
SPOOL_FILE = "ingest.log"
SPOOL_ROTATE_BYTES = 256 * 1024 * 1024
"""The spool is rotated by rename (which the engine follows) past this size, once read."""
LATENCY_MARKS = 100_000


def _engine_classes() -> tuple[Any, Any, str]:
    from logsieve.streaming import watcher

    return watcher.WatchConfig, watcher.Watcher, "watch"


def engine_kind() -> str:
    """The streaming engine the service runs (``"watch"``)."""
    return _engine_classes()[2]


class StreamEngine:
    """The watcher on a thread, fed by ``--watch`` files and the ingest spool."""

    def __init__(
        self,
        model_dir: Path,
        state_dir: Path,
        watch: Sequence[str] = (),
        *,
        on_alert: Callable[[dict[str, Any]], None] | None = None,
        on_latency: Callable[[float], None] | None = None,
        rotate_bytes: int = SPOOL_ROTATE_BYTES,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.state_dir = Path(state_dir)
        self.alerts_path = self.state_dir / ALERTS_FILE
        spool_dir = self.state_dir / SPOOL_DIR
        spool_dir.mkdir(parents=True, exist_ok=True)
        self.spool = spool_dir / SPOOL_FILE
        self.spool.touch(exist_ok=True)
        self.inputs = [str(Path(p)) for p in watch] + [str(self.spool)]
        self.rotate_bytes = rotate_bytes
        self._on_alert = on_alert
        self._on_latency = on_latency
        self._lock = threading.Lock()
        self._fd = os.open(self.spool, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._spool_lines = _count_lines(self.spool)
        self._marks: deque[tuple[int, float]] = deque(maxlen=LATENCY_MARKS)
        self._status: dict[str, Any] = {}
        self.accepted = 0
        self.error: str | None = None
        self.kind = engine_kind()
        self._watcher: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Build the watcher (loads the model, resumes the checkpoint) and run it."""
        config_cls, watcher_cls, _ = _engine_classes()
        cfg = config_cls(
            inputs=self.inputs, model_dir=self.model_dir, state_dir=self.state_dir,
            alerts=self.alerts_path, follow=True, on_alert=self._alert,
            on_progress=self._progress, gc_freeze=False,  # process-wide: not in a server
        )  # fmt: skip
        self._watcher = watcher_cls(cfg)
        self._status = self._watcher.status()
        self._thread = threading.Thread(target=self._run, name="logsieve-engine", daemon=True)
        self._thread.start()
        self._ready.set()

    def _run(self) -> None:
        try:
            self._status = self._watcher.run()
        except Exception as exc:  # the service stays up and says so on /readyz
            logger.exception("the streaming engine stopped")
            self.error = f"{type(exc).__name__}: {exc}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the watcher to stop (it checkpoints) and wait for it."""
        if self._watcher is not None:
            self._watcher.stop = True
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    # ------------------------------------------------------------------ ingest
    def ingest(self, lines: Sequence[str]) -> int:
        """Append whole lines to the spool (the engine follows it); returns how many."""
        if not lines:
            return 0
        data = ("\n".join(lines) + "\n").encode("utf-8", "replace")
        with self._lock:
            if self._fd < 0:
                raise RuntimeError("the engine is stopped")
            self._maybe_rotate()
            os.write(self._fd, data)
            self._spool_lines += len(lines)
            self._marks.append((self._spool_lines, time.time()))
            self.accepted += len(lines)
        return len(lines)

    def _maybe_rotate(self) -> None:
        size = os.fstat(self._fd).st_size
        if size < self.rotate_bytes:
            return
        done = {s.get("path"): s.get("offset", 0) for s in self._status.get("sources", [])}
        if done.get(str(self.spool), 0) < size:
            return  # not read to the end yet: rotating now could make it skip lines
        os.replace(self.spool, self.spool.with_name(SPOOL_FILE + ".1"))
        os.close(self._fd)
        self._fd = os.open(self.spool, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._spool_lines = 0
        self._marks.clear()

    # ------------------------------------------------------------------ callbacks
    def _alert(self, record: dict[str, Any]) -> None:
        trig = record.get("trigger") or {}
        if self._on_latency is not None and trig.get("source") == str(self.spool):
            at = self._accepted_at(int(trig.get("line_no") or 0))
            if at is not None:
                self._on_latency(max(0.0, float(record.get("emitted_at", time.time())) - at))
        if self._on_alert is not None:
            self._on_alert(record)

    def _accepted_at(self, line_no: int) -> float | None:
        marks = list(self._marks)
        i = bisect.bisect_left(marks, (line_no, 0.0))
        return marks[i][1] if line_no > 0 and i < len(marks) else None

    def _progress(self, status: dict[str, Any]) -> None:
        self._status = status

    def status(self) -> dict[str, Any]:
        """The engine's last status (``lines_processed``, ``open_windows``, ``lines_per_second``,
        ``alerts_emitted``, ``sources``...), plus what the service adds."""
        st = dict(self._status)
        st.update({"engine": self.kind, "lines_accepted": self.accepted, "error": self.error,
                   "running": self.running})  # fmt: skip
        return st


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return n
