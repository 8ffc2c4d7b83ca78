"""STAND-IN for ``logsieve.streaming.watcher`` (issue 13, branch h-watch) until it lands.

DELETE THIS MODULE when :mod:`logsieve.streaming.watcher` is on main: the adapter in
:mod:`logsieve.service.engine` imports the real :class:`Watcher` first and falls back to this
one only while that import fails. It implements the slice of the watcher's interface the
service uses (``WatchConfig``'s fields, ``run()``, ``stop``, ``status()``, ``on_alert``,
``on_progress``, alert records in the watch schema, reloading the model when
``pipeline.json`` changes) and nothing more. It is NOT the watch engine: each chunk of new
lines is parsed, grouped and scored on its own (a session cut by a chunk boundary is scored
in two parts), there is no rotation handling and no exactly-once checkpoint (only the
offsets are kept, in ``standin.json``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.pipeline import Pipeline
from logsieve.pipeline.core import PIPELINE_FILE
from logsieve.schema import EVENT_ID, LINE_IDS, WINDOW_ID

logger = logging.getLogger(__name__)

__all__ = ["WatchConfig", "Watcher"]

STANDIN_STATE = "standin.json"
KEEP_LINES = 20


@dataclass
class WatchConfig:
    """The fields of ``logsieve.streaming.watcher.WatchConfig`` the service passes."""

    inputs: Sequence[str]
    model_dir: Path
    state_dir: Path
    alerts: Path | None = None
    follow: bool = True
    poll_seconds: float = 0.005
    on_alert: Callable[[dict[str, Any]], None] | None = None
    on_progress: Callable[[dict[str, Any]], None] | None = None
    progress_seconds: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)


def _version(model_dir: Path) -> tuple[int, int]:
    file = model_dir / PIPELINE_FILE
    try:
        return int(json.loads(file.read_text("utf-8")).get("model_version", 1) or 1), \
            file.stat().st_mtime_ns  # fmt: skip
    except (OSError, ValueError, TypeError):
        return 1, 0


class Watcher:
    """Minimal follower (module docstring): new whole lines -> parse -> group -> detect."""

    def __init__(self, cfg: WatchConfig) -> None:
        self.cfg = cfg
        self.stop = False
        self.state_dir = Path(cfg.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.pipe = Pipeline.load(cfg.model_dir)
        self.parser: Any = None
        self.version, self.mtime = _version(Path(cfg.model_dir))
        saved: dict[str, Any] = {}
        if (self.state_dir / STANDIN_STATE).exists():
            saved = json.loads((self.state_dir / STANDIN_STATE).read_text("utf-8"))
        self.offsets: dict[str, list[int]] = {p: saved.get("offsets", {}).get(p, [0, 0])
                                              for p in cfg.inputs}  # fmt: skip
        self.lines = int(saved.get("lines", 0))
        self.alerts_emitted = int(saved.get("alerts", 0))
        self.started = time.monotonic()
        self.lines_at_start = self.lines
        self._last_progress = 0.0

    def run(self) -> dict[str, Any]:
        sink = open(self.cfg.alerts, "ab") if self.cfg.alerts else None  # noqa: SIM115
        try:
            while not self.stop:
                got = False
                for path in self.cfg.inputs:
                    got |= self._read(path, sink)
                self._reload()
                now = time.monotonic()
                if self.cfg.on_progress and now - self._last_progress >= self.cfg.progress_seconds:
                    self._last_progress = now
                    self.cfg.on_progress(self.status())
                if not got:
                    if not self.cfg.follow:
                        break
                    time.sleep(self.cfg.poll_seconds)
        finally:
            if sink is not None:
                sink.close()
            self._save()
        return self.status()

    def _read(self, path: str, sink: Any) -> bool:
        offset, done = self.offsets[path]
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(4 * 1024 * 1024)
        except OSError:
            return False
        end = data.rfind(b"\n")
        if end < 0:
            return False
        data = data[: end + 1]
        texts = data.decode("utf-8", "replace").split("\n")[:-1]
        self.offsets[path] = [offset + len(data), done + len(texts)]
        self.lines += len(texts)
        self._score(path, done + 1, texts, sink)
        self._save()
        return True

    def _score(self, path: str, first: int, texts: list[str], sink: Any) -> None:
        if self.parser is None:
            self.parser = self.pipe.parser()
        events = self.parser.parse_lines(pl.Series("line", texts), first, path)
        if events.height == 0:
            return
        events = events.with_columns(pl.col(EVENT_ID).cast(pl.String))
        windows = self.pipe.group(events)
        table = self.pipe.detect(windows).table
        for row, line_ids in zip(table.iter_rows(named=True), windows[LINE_IDS].to_list(),
                                 strict=True):  # fmt: skip
            if not row["is_anomaly"]:
                continue
            self.alerts_emitted += 1
            shown = [n for n in line_ids if n is not None][:KEEP_LINES]
            record = {
                "alert_id": f"a{self.alerts_emitted:08d}",
                "window_id": row[WINDOW_ID],
                "score": float(row["score"]),
                "threshold": self.pipe.threshold,
                "model": self.pipe.name,
                "model_version": self.version,
                "emitted_at": time.time(),
                "trigger": {
                    "kind": "window_end",
                    "source": path,
                    "line_no": shown[-1] if shown else first,
                },  # fmt: skip
                "label": None,
                "lines": [
                    {"source": path, "line_no": n, "text": texts[n - first]} for n in shown
                ],  # fmt: skip
                "explanation": json.loads(row["explanation"]) if row["explanation"] else None,
            }
            if sink is not None:
                sink.write(json.dumps(record).encode() + b"\n")
                sink.flush()
            if self.cfg.on_alert is not None:
                self.cfg.on_alert(record)

    def _reload(self) -> None:
        version, mtime = _version(Path(self.cfg.model_dir))
        if (version, mtime) != (self.version, self.mtime):
            try:
                self.pipe = Pipeline.load(self.cfg.model_dir)
            except Exception as exc:  # a half-swapped directory: next time
                logger.warning("model reload deferred: %s", exc)
                return
            self.version, self.mtime = version, mtime
            self.parser = None

    def _save(self) -> None:
        tmp = self.state_dir / (STANDIN_STATE + ".tmp")
        tmp.write_text(json.dumps({"offsets": self.offsets, "lines": self.lines,
                                   "alerts": self.alerts_emitted}), "utf-8")  # fmt: skip
        tmp.replace(self.state_dir / STANDIN_STATE)

    def status(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {
            "lines_processed": self.lines,
            "sources": [{"path": p, "offset": o, "lines": n} for p, (o, n) in self.offsets.items()],
            "open_windows": 0,
            "alerts_emitted": self.alerts_emitted,
            "lines_per_second": round((self.lines - self.lines_at_start) / elapsed, 1),
            "model": self.pipe.name,
            "model_version": self.version,
            "engine": "stand-in",
            "updated_at": time.time(),
        }
