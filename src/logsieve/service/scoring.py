"""``POST /v1/score``: request windows -> :meth:`logsieve.pipeline.Pipeline.detect`.

The service scores with the very pipeline batch ``detect`` uses (one path): a request's
windows become one windows table (``event_ids`` as given, or the event ids of its ``lines``
parsed with the model's parser state, as ``detect`` parses a raw log) and go through
:meth:`Pipeline.detect`. Concurrent requests are micro-batched: a single scoring thread takes
every request waiting, scores them in one ``detect`` call and hands each its rows, so the
detector is never entered by two threads and the per-call cost is shared.

The current pipeline is swapped between batches (:meth:`Scorer.swap`): a request is scored
wholly by the old or wholly by the new version, and none is dropped.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.parsing.parser import LogParser
from logsieve.pipeline import Pipeline
from logsieve.schema import EVENT_ID, EVENT_IDS, LINE_IDS, WINDOW_ID

logger = logging.getLogger(__name__)

__all__ = ["ScoreWindow", "Scorer", "windows_frame"]

MAX_BATCH_WINDOWS = 4096
"""Windows scored in one ``detect`` call at most (requests are never split)."""


@dataclass(frozen=True)
class ScoreWindow:
    """One window of a score request: ``event_ids`` or raw ``lines`` (exactly one)."""

    window_id: str
    event_ids: Sequence[str] | None = None
    lines: Sequence[str] | None = None


def _parse_lines(parser: LogParser, texts: Sequence[str]) -> list[str]:
    """Event ids of raw lines, parsed as batch ``detect`` parses a raw log."""
    if not texts:
        return []
    events = parser.parse_lines(pl.Series("line", list(texts), dtype=pl.String))
    return [str(e) for e in events.get_column(EVENT_ID).to_list()]


def windows_frame(
    pipe: Pipeline, windows: Sequence[ScoreWindow], parser: LogParser | None = None
) -> pl.DataFrame:
    """The windows table of a request (line ids are positions in each window); ``lines``
    are parsed with ``parser`` (default: a fresh :meth:`Pipeline.parser`)."""
    ids: list[list[str]] = []
    for w in windows:
        if w.event_ids is not None:
            ids.append([str(e) for e in w.event_ids])
        else:
            if parser is None:
                parser = pipe.parser()
            ids.append(_parse_lines(parser, w.lines or []))
    return pl.DataFrame(
        {
            WINDOW_ID: [w.window_id for w in windows],
            EVENT_IDS: ids,
            LINE_IDS: [list(range(1, len(x) + 1)) for x in ids],
        },
        schema={WINDOW_ID: pl.String, EVENT_IDS: pl.List(pl.String), LINE_IDS: pl.List(pl.Int64)},
    )


def result_rows(table: pl.DataFrame) -> list[dict[str, Any]]:
    """``detect``'s table as the API's result objects (the explanation parsed back)."""
    out = []
    for wid, score, flag, exp in zip(
        table[WINDOW_ID].to_list(),
        table["score"].to_list(),
        table["is_anomaly"].to_list(),
        table["explanation"].to_list(),
        strict=True,
    ):
        out.append(
            {
                "window_id": wid,
                "score": float(score),
                "is_anomaly": bool(flag),
                "explanation": None if exp is None else json.loads(exp),
            }
        )
    return out


class _Job:
    __slots__ = ("future", "windows")

    def __init__(self, windows: Sequence[ScoreWindow]) -> None:
        self.windows = windows
        self.future: Future[list[dict[str, Any]]] = Future()


class Scorer:
    """Scores requests through one pipeline, micro-batched on one thread (module docstring)."""

    def __init__(self, pipe: Pipeline, version: int) -> None:
        self._pipe = pipe
        self._version = version
        self._next: tuple[Pipeline, int] | None = None
        self._parser: LogParser | None = None  # the current pipeline's, made on first use
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="logsieve-score", daemon=True)
        self.batches = 0
        self.windows_scored = 0
        self._thread.start()

    @property
    def pipe(self) -> Pipeline:
        return self._pipe

    @property
    def version(self) -> int:
        with self._lock:
            return self._next[1] if self._next is not None else self._version

    def swap(self, pipe: Pipeline, version: int) -> None:
        """Use ``pipe`` (model version ``version``) from the next batch on."""
        with self._lock:
            self._next = (pipe, version)
        self._queue.put(_Job([]))  # wake the loop so the swap happens even when idle

    def submit(self, windows: Sequence[ScoreWindow]) -> Future[list[dict[str, Any]]]:
        job = _Job(windows)
        self._queue.put(job)
        return job.future

    def score(self, windows: Sequence[ScoreWindow]) -> list[dict[str, Any]]:
        """Blocking :meth:`submit` (library use and tests)."""
        return self.submit(windows).result()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ the thread
    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            size = len(job.windows)
            stop = False
            while size < MAX_BATCH_WINDOWS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
                size += len(more.windows)
            with self._lock:
                if self._next is not None:
                    self._pipe, self._version = self._next
                    self._next = None
                    self._parser = None
                pipe = self._pipe
            self._run(pipe, [j for j in jobs if j.windows], [j for j in jobs if not j.windows])
            if stop:
                return

    def _run(self, pipe: Pipeline, jobs: list[_Job], empty: list[_Job]) -> None:
        for j in empty:
            j.future.set_result([])
        if not jobs:
            return
        try:
            todo = [w for j in jobs for w in j.windows]
            if self._parser is None and any(w.event_ids is None for w in todo):
                self._parser = pipe.parser()
            frame = windows_frame(pipe, todo, self._parser)
            rows = result_rows(pipe.detect(frame).table)
        except LogsieveError as exc:  # bad windows in one request must not fail the others
            if len(jobs) > 1:
                for j in jobs:
                    self._run(pipe, [j], [])
                return
            jobs[0].future.set_exception(exc)
            return
        except Exception as exc:  # never leave a request waiting
            logger.exception("scoring failed")
            for j in jobs:
                j.future.set_exception(exc)
            return
        self.batches += 1
        self.windows_scored += len(rows)
        at = 0
        for j in jobs:
            n = len(j.windows)
            j.future.set_result(rows[at : at + n])
            at += n
