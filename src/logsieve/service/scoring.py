"""``POST /v1/score``: request windows -> :meth:`logsieve.pipeline.Pipeline.detect`.

The service scores with the very pipeline batch ``detect`` uses (one path): a request's
windows become one windows table (``event_ids`` as given, or the event ids of its ``lines``
parsed with the model's parser state, as ``detect`` parses a raw log) and go through
:meth:`Pipeline.detect`.

A window's result is a function of its event-id sequence alone (a request carries no line
ids, values or times: line ids are the positions 1..n), and log windows repeat heavily (HDFS
blocks follow a handful of workflows), so each model version keeps a memo of whole-window
results keyed by the sequence (:class:`ResultMemo`): the result row as JSON, cut where the
window id goes. A request whose windows are all in the memo is answered from it on the
caller's thread (:meth:`Scorer.cached`, no hand-over, no ``detect``); windows given as raw
``lines`` are parsed on the scoring thread first, so they always go there. The rest go to a
single scoring thread (:meth:`Scorer.submit`), which takes every request waiting, runs one
``detect`` on the distinct sequences none of them found in the memo, memoises those and
answers each request; so the detector is never entered by two threads, each distinct
sequence is scored once, and the per-call cost is shared.

Scores and flags are those of ``detect`` on the same windows. Explanations (only flagged
windows have one, as in ``detect``) carry float32 probabilities from the network, whose last
digits can depend on which other windows shared the forward pass; a memoised explanation is
the one its first ``detect`` gave.

:meth:`Scorer.swap` installs a new model version with a new, empty memo in one assignment:
a request is answered wholly by the old or wholly by the new version, and none is dropped.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.parsing.parser import LogParser
from logsieve.pipeline import Pipeline
from logsieve.schema import EVENT_ID, EVENT_IDS, LINE_IDS, WINDOW_ID

logger = logging.getLogger(__name__)

__all__ = [
    "MEMO_BYTES", "BadRequest", "ResultMemo", "ScoreRequest", "ScoreWindow", "Scorer",
    "parse_score_body", "windows_frame",
]  # fmt: skip

MAX_BATCH_WINDOWS = 4096
"""Windows scored in one ``detect`` call at most (requests are never split)."""
MEMO_BYTES = 64 * 1024 * 1024
"""Default budget of a version's result memo (approximate bytes; oldest entries go first)."""

_MARK = "\x00logsieve:window_id\x00"
_MARK_JSON = json.dumps(_MARK)
_quote = encode_basestring_ascii  # json.dumps of a str, without its Python frames


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
    return _frame([w.window_id for w in windows], ids)


def _frame(window_ids: list[str], ids: list[list[str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            WINDOW_ID: window_ids,
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


def _mark_window_id(obj: Any, wid: str) -> int | None:
    """Put the mark where ``obj`` names the window (``"window_id": wid``, at any depth);
    how many places, or None when one names another window (not memoisable)."""
    n = 0
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == WINDOW_ID and isinstance(v, str):
                if v != wid:
                    return None
                obj[k] = _MARK
                n += 1
            elif isinstance(v, dict | list):
                got = _mark_window_id(v, wid)
                if got is None:
                    return None
                n += got
    elif isinstance(obj, list):
        for v in obj:
            got = _mark_window_id(v, wid)
            if got is None:
                return None
            n += got
    return n


def row_segments(
    wid: str, score: float, flag: bool, explanation: str | None
) -> tuple[tuple[str, ...] | None, str]:
    """A ``detect`` row as (its result JSON cut where the window id goes, or None when it
    cannot be cut safely; the row's own result JSON)."""
    exp = None if explanation is None else json.loads(explanation)
    row = {"window_id": wid, "score": float(score), "is_anomaly": bool(flag), "explanation": exp}
    own = json.dumps(row, separators=(",", ":"))
    marks = 0 if exp is None else _mark_window_id(exp, wid)
    if marks is None:
        return None, own
    row["window_id"] = _MARK
    segs = tuple(json.dumps(row, separators=(",", ":")).split(_MARK_JSON))
    if len(segs) != marks + 2:  # the mark occurs in the data itself
        return None, own
    return segs, own


class BadRequest(Exception):
    """A score request that is not well formed: HTTP ``status`` and what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ScoreRequest:
    """A ``/v1/score`` body checked for shape: window ids, their event ids or lines (as
    tuples), and which windows gave lines. The items' types are checked by :meth:`check`,
    which a memo hit makes needless (a memo key is all strings, so a tuple equal to one is)."""

    window_ids: list[str]
    items: list[tuple[Any, ...]]
    is_lines: list[bool]

    def check(self) -> None:
        """Every item a string, else :class:`BadRequest` (422) naming the first that is not."""
        for i, seq in enumerate(self.items):
            if not set(map(type, seq)) <= _STR:
                k, bad = next((k, x) for k, x in enumerate(seq) if type(x) is not str)
                name = "lines" if self.is_lines[i] else EVENT_IDS
                raise BadRequest(422, f"windows[{i}].{name}[{k}]: must be a string, not "
                                      f"{type(bad).__name__}")  # fmt: skip

    def windows(self) -> list[ScoreWindow]:
        return [
            ScoreWindow(w, lines=x) if raw else ScoreWindow(w, event_ids=x)
            for w, x, raw in zip(self.window_ids, self.items, self.is_lines, strict=True)
        ]


_STR = {str}
_EVENTS_KEYS = {WINDOW_ID, EVENT_IDS}
_LINES_KEYS = {WINDOW_ID, "lines"}


def parse_score_body(body: bytes, max_windows: int, max_items: int) -> ScoreRequest:
    """Check a ``/v1/score`` body's shape by hand (cheaper than a model per window); raises
    :class:`BadRequest` saying what is wrong (400 not JSON, 413 over a limit, 422 shape).
    The items' types are left to :meth:`ScoreRequest.check`."""
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise BadRequest(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BadRequest(422, 'body must be an object {"windows": [...]}')
    for k in obj:
        if k != "windows":
            raise BadRequest(422, f"body: unknown field {k!r} (only 'windows')")
    windows = obj.get("windows")
    if windows is None:
        raise BadRequest(422, "windows: field required")
    if not isinstance(windows, list):
        raise BadRequest(422, f"windows: must be a list of windows, not {type(windows).__name__}")
    if not windows:
        raise BadRequest(422, "windows: at least one window is needed")
    if len(windows) > max_windows:
        raise BadRequest(413, f"{len(windows)} windows is over the limit of {max_windows} per "
                              "request")  # fmt: skip
    wids: list[str] = []
    items: list[tuple[Any, ...]] = []
    is_lines: list[bool] = []
    for i, w in enumerate(windows):
        if type(w) is not dict:
            raise BadRequest(422, f"windows[{i}]: must be an object, not {type(w).__name__}")
        keys = w.keys()
        if keys == _EVENTS_KEYS:
            raw = False
            seq = w[EVENT_IDS]
        elif keys == _LINES_KEYS:
            raw = True
            seq = w["lines"]
        else:
            _bad_window_keys(i, w)
        wid = w[WINDOW_ID]
        if type(wid) is not str or not 0 < len(wid) <= 1024:
            raise BadRequest(422, f"windows[{i}].window_id: must be a string of 1 to 1024 "
                                  "characters")  # fmt: skip
        if type(seq) is not list:
            raise BadRequest(422, f"windows[{i}].{'lines' if raw else EVENT_IDS}: must be a "
                                  f"list of strings, not {type(seq).__name__}")  # fmt: skip
        if len(seq) > max_items:
            raise BadRequest(413, f"windows[{i}] has {len(seq)} items, over the limit of "
                                  f"{max_items}")  # fmt: skip
        wids.append(wid)
        items.append(tuple(seq))
        is_lines.append(raw)
    return ScoreRequest(wids, items, is_lines)


def _bad_window_keys(i: int, w: dict[str, Any]) -> None:
    for k in w:
        if k not in (WINDOW_ID, EVENT_IDS, "lines"):
            raise BadRequest(422, f"windows[{i}]: unknown field {k!r}")
    if WINDOW_ID not in w:
        raise BadRequest(422, f"windows[{i}].window_id: field required")
    if EVENT_IDS in w and "lines" in w:
        raise BadRequest(422, f"windows[{i}]: give event_ids or lines, not both")
    raise BadRequest(422, f"windows[{i}]: needs event_ids (a list of event ids) or lines")


class ResultMemo:
    """Whole-window results of one model version, keyed by the event-id sequence.

    Written by the scoring thread only; read from any thread (a dict lookup). Past
    ``max_bytes`` (approximate) the oldest entries are dropped.
    """

    def __init__(self, max_bytes: int = MEMO_BYTES) -> None:
        self.max_bytes = max_bytes
        self.rows: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._sizes: dict[tuple[str, ...], int] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, key: tuple[str, ...]) -> tuple[str, ...] | None:
        return self.rows.get(key)

    def put(self, key: tuple[str, ...], segs: tuple[str, ...]) -> None:
        if self.max_bytes <= 0 or key in self.rows:
            return
        size = 120 + sum(len(s) for s in segs) + sum(56 + len(e) for e in key)
        if size > self.max_bytes:
            return
        while self.bytes + size > self.max_bytes and self._sizes:
            old = next(iter(self._sizes))
            self.bytes -= self._sizes.pop(old)
            self.rows.pop(old, None)
        self.rows[key] = segs
        self._sizes[key] = size
        self.bytes += size

    def stats(self) -> dict[str, int]:
        return {"entries": len(self.rows), "bytes": self.bytes, "hits": self.hits,
                "misses": self.misses}  # fmt: skip


class _State:
    """One model version as the scorer uses it: pipeline, version, memo, parser."""

    __slots__ = ("memo", "parser", "pipe", "version")

    def __init__(self, pipe: Pipeline, version: int, memo_bytes: int) -> None:
        self.pipe = pipe
        self.version = version
        self.memo = ResultMemo(memo_bytes)
        self.parser: LogParser | None = None  # made on first use, on the scoring thread


class _Job:
    __slots__ = ("future", "windows")

    def __init__(self, windows: Sequence[ScoreWindow]) -> None:
        self.windows = windows
        self.future: Future[list[str]] = Future()


class Scorer:
    """Scores requests through one pipeline: memo first, then micro-batched ``detect`` on
    one thread (module docstring). Results are JSON texts of the result objects."""

    def __init__(self, pipe: Pipeline, version: int, *, memo_bytes: int = MEMO_BYTES) -> None:
        self.memo_bytes = memo_bytes
        self._state = _State(pipe, version, memo_bytes)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="logsieve-score", daemon=True)
        self.batches = 0
        self.windows_scored = 0
        self._thread.start()

    @property
    def pipe(self) -> Pipeline:
        return self._state.pipe

    @property
    def version(self) -> int:
        return self._state.version

    def memo_stats(self) -> dict[str, int]:
        return self._state.memo.stats()

    def swap(self, pipe: Pipeline, version: int) -> None:
        """Serve ``pipe`` (model version ``version``) from now on, with an empty memo; a
        batch already being scored finishes with the version it started with."""
        self._state = _State(pipe, version, self.memo_bytes)

    def cached(
        self, window_ids: Sequence[str], keys: Sequence[tuple[str, ...]]
    ) -> list[str] | None:
        """The result JSON of every window when all their sequences are in the memo of the
        current version, else None (then :meth:`submit`). Cheap: for the event loop."""
        memo = self._state.memo
        get = memo.rows.get
        rows = []
        for wid, key in zip(window_ids, keys, strict=True):
            try:
                segs = get(key)
            except TypeError:  # an unhashable item (a list, an object): not a valid window
                return None
            if segs is None:
                return None
            rows.append(_quote(wid).join(segs))
        memo.hits += len(rows)
        return rows

    def submit(self, windows: Sequence[ScoreWindow]) -> Future[list[str]]:
        job = _Job(windows)
        self._queue.put(job)
        return job.future

    def score(self, windows: Sequence[ScoreWindow]) -> list[dict[str, Any]]:
        """Blocking :meth:`submit`, results as objects (library use and tests)."""
        return [json.loads(r) for r in self.submit(windows).result()]

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
            self._run(self._state, jobs)
            if stop:
                return

    def _keys(self, st: _State, job: _Job) -> list[tuple[str, ...]]:
        keys = []
        for w in job.windows:
            if w.event_ids is not None:
                keys.append(tuple(str(e) for e in w.event_ids))
            else:
                if st.parser is None:
                    st.parser = st.pipe.parser()
                keys.append(tuple(_parse_lines(st.parser, w.lines or [])))
        return keys

    def _run(self, st: _State, jobs: list[_Job]) -> None:
        try:
            results = self._results(st, jobs)
        except LogsieveError as exc:  # bad windows in one request must not fail the others
            if len(jobs) > 1:
                for j in jobs:
                    self._run(st, [j])
                return
            jobs[0].future.set_exception(exc)
            return
        except Exception as exc:  # never leave a request waiting
            logger.exception("scoring failed")
            for j in jobs:
                j.future.set_exception(exc)
            return
        for j, rows in zip(jobs, results, strict=True):
            j.future.set_result(rows)

    def _results(self, st: _State, jobs: list[_Job]) -> list[list[str]]:
        keyed = [(j, self._keys(st, j)) for j in jobs]
        # the distinct sequences no request found in the memo, each scored once
        todo: dict[tuple[str, ...], str] = {}
        hits = 0
        for j, keys in keyed:
            for w, key in zip(j.windows, keys, strict=True):
                if key in todo:
                    continue
                if st.memo.get(key) is None:
                    todo[key] = w.window_id
                else:
                    hits += 1
        fresh: dict[tuple[str, ...], tuple[str, str, tuple[str, ...] | None]] = {}
        if todo:
            table = st.pipe.detect(_frame(list(todo.values()), [list(k) for k in todo])).table
            for key, wid, score, flag, exp in zip(
                todo, table[WINDOW_ID].to_list(), table["score"].to_list(),
                table["is_anomaly"].to_list(), table["explanation"].to_list(), strict=True,
            ):  # fmt: skip
                segs, own = row_segments(wid, score, flag, exp)
                fresh[key] = (wid, own, segs)
                if segs is not None:
                    st.memo.put(key, segs)
            self.batches += 1
            self.windows_scored += len(todo)
        out = []
        for j, keys in keyed:
            rows = []
            for w, key in zip(j.windows, keys, strict=True):
                got = fresh.get(key)
                if got is not None and got[0] == w.window_id:
                    rows.append(got[1])
                    continue
                segs = got[2] if got is not None else st.memo.get(key)
                if segs is not None:
                    rows.append(_quote(w.window_id).join(segs))
                else:  # not memoisable, or dropped from the memo meanwhile
                    rows.append(self._alone(st, w.window_id, key))
            out.append(rows)
        st.memo.hits += hits
        st.memo.misses += sum(len(j.windows) for j in jobs) - hits
        return out

    def _alone(self, st: _State, wid: str, key: tuple[str, ...]) -> str:
        """One window scored by itself (a row the memo cannot hold): its result JSON."""
        table = st.pipe.detect(_frame([wid], [list(key)])).table
        return row_segments(wid, table["score"][0], table["is_anomaly"][0],
                            table["explanation"][0])[1]  # fmt: skip
