"""The online detector behind ``logsieve watch``: :class:`Watcher`.

One loop, one process: read what the inputs hold (:mod:`.sources`), parse it with the
model's parser state in mining mode (a new message becomes a new template with a new event
id, kept in the state), append the lines to their windows (:mod:`.windows`), score the
micro-batch (:mod:`.scoring`), write the alerts, and checkpoint (:mod:`.state`) every
``checkpoint_lines`` lines or ``checkpoint_seconds`` seconds and at shutdown.

Exactly once: a checkpoint is taken only between batches, after the alert file has been
fsynced, and records each input's offset and line count, the open windows, the parser
state, the alert counter and the alert file's length. A restart cuts the alert file back to
that length and reads the inputs again from those offsets; parsing, grouping and scoring
are deterministic, so the same alerts (same ids) are written again, once. ``--exec`` and
``--webhook`` hooks run after their alert is written and may run again for alerts replayed
after a crash (at least once).

Alerts: a window is alerted once, at the first line whose rank breaks the pattern
(next-event models; ``trigger.kind == "line"``) or when it closes (``"window_end"``). A later,
higher finding on an alerted window updates its record in the state (``alert_updates``),
not the alert file. The model directory is watched between batches: when ``pipeline.json``
changes (``model_version``, or its mtime) the pipeline is reloaded and scoring goes on with
the open windows, the parser state and the counters unchanged.
"""

from __future__ import annotations

import gc
import json
import logging
import shlex
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.grouping.specs import AnySpec
from logsieve.io.reader import DEFAULT_MAX_LINE_BYTES, ReadStats, _decode_lines
from logsieve.parsing.parser import LogParser, ParseStats
from logsieve.pipeline import Pipeline
from logsieve.pipeline.core import PIPELINE_FILE, clean_json
from logsieve.schema import EVENT_ID, LINE_ID
from logsieve.streaming.scoring import (
    KnownPrefixes,
    NextEventScorer,
    clamp_known,
    is_next_event,
    line_explanations,
)
from logsieve.streaming.sources import Source, SourceState, open_source
from logsieve.streaming.state import (
    STATE_VERSION,
    STATUS_FILE,
    AlertSink,
    Background,
    CheckpointWriter,
    load_checkpoint,
    write_json_synced,
)
from logsieve.streaming.windows import (
    BatchTexts,
    LineMap,
    OnlineGrouper,
    OpenWindow,
    Segment,
    kept_refs,
    windows_frame,
)

logger = logging.getLogger(__name__)

__all__ = ["WatchConfig", "Watcher", "model_version"]

UPDATES_KEPT = 10_000
LINEMAP_SPANS = 4096
"""Spans of the line map beyond which a checkpoint forgets those before every kept line."""


def model_version(model_dir: Path) -> tuple[int, int]:
    """(``model_version`` of pipeline.json, missing = 1; its mtime in ns)."""
    file = model_dir / PIPELINE_FILE
    try:
        st = file.stat()
        desc = json.loads(file.read_text(encoding="utf-8"))
        return int(desc.get("model_version", 1) or 1), st.st_mtime_ns
    except (OSError, ValueError, TypeError):
        return 1, 0


@dataclass
class WatchConfig:
    """Options of :class:`Watcher` (the ``logsieve watch`` options)."""

    inputs: Sequence[str]
    model_dir: Path
    state_dir: Path
    alerts: Path | None = None
    follow: bool = True
    format: str | None = None
    grouping: AnySpec | None = None
    max_open: int = 1_000_000
    max_window_lines: int = 100_000
    max_window_seconds: float | None = None
    keep_lines: int = 20
    batch_bytes: int = 16 * 1024 * 1024  # the largest read (one micro-batch)
    follow_batch_bytes: int = 64 * 1024  # following: the first read after a short one
    checkpoint_lines: int = 1_000_000
    checkpoint_seconds: float = 10.0
    poll_seconds: float = 0.005
    exec_cmd: str | None = None
    webhook: str | None = None
    on_alert: Callable[[dict[str, Any]], None] | None = None
    on_progress: Callable[[dict[str, Any]], None] | None = None
    progress_seconds: float = 0.5
    gc_freeze: bool = True  # see Watcher._gc_step
    stop_after_lines: int | None = None  # tests: stop (as on SIGTERM) after this many lines
    extra: dict[str, Any] = field(default_factory=dict)


class Watcher:
    """Follow inputs and alert online through a :class:`Pipeline` (module docstring)."""

    def __init__(self, cfg: WatchConfig) -> None:
        self.cfg = cfg
        self.stop = False
        self.state_dir = Path(cfg.state_dir)
        ckpt = load_checkpoint(self.state_dir)
        self.pipe = Pipeline.load(cfg.model_dir)
        self.version, self.version_mtime = model_version(Path(cfg.model_dir))
        self._check_model()
        spec = cfg.grouping if cfg.grouping is not None else self.pipe.grouping
        if spec is None:
            raise LogsieveError("the model does not know its grouping: pass --session, "
                                "--session-field, --window or --time")  # fmt: skip
        self.grouper = OnlineGrouper(spec, max_open=cfg.max_open, max_lines=cfg.max_window_lines,
                                     max_seconds=cfg.max_window_seconds,
                                     keep_lines=cfg.keep_lines, wall_idle=cfg.follow)  # fmt: skip
        self.scorer = NextEventScorer(self.pipe) if is_next_event(self.pipe) else None
        self.known = KnownPrefixes.of(self.pipe.detector) if self.scorer is not None else None
        self.held: dict[str, list[Any]] = {}  # wid -> [window, trie node, events walked]
        self.stats = ParseStats()
        self.read_stats = ReadStats()
        self.lines = 0
        self.alerts_emitted = 0
        self.updates: dict[str, dict[str, Any]] = {}
        self.seq = 0
        self._eids: dict[str, str] = {}
        self.linemap = LineMap()  # line id -> (source, line number) of the kept lines
        self._batch: BatchTexts | None = None  # the batch being processed (its texts)
        states = {p: SourceState(path=p) for p in cfg.inputs}
        committed = None
        fmt = cfg.format
        self.ckpt = CheckpointWriter(self.state_dir)
        if ckpt is not None:
            meta, rows, parser_state = ckpt
            for d in meta["sources"]:
                if d["path"] in states and d["path"] != "-":
                    states[d["path"]] = SourceState.from_dict(d)
            self.lines = int(meta["lines"])
            self.alerts_emitted = int(meta["alerts"])
            self.updates = dict(meta.get("alert_updates", {}))
            self.seq = int(meta["seq"])
            self.ckpt = CheckpointWriter(self.state_dir, meta["windows"])
            committed = int(meta["alerts_committed"])
            for k in ("malformed_lines", "blank_lines", "new_templates"):
                setattr(self.stats, k, int(meta["parse"].get(k, 0)))
            self.read_stats.invalid_utf8_lines = int(meta["parse"].get("invalid_utf8_lines", 0))
            self.parser = self._parser(parser_state, fmt)
            self.linemap = LineMap.of(
                (lid, src, int(n)) for r in rows
                for lid, (src, n, _) in zip(r["line_ids"][len(r["line_ids"]) - len(r["refs"]):],
                                            r["refs"], strict=True))  # fmt: skip
            wins = [OpenWindow.from_row(r) for r in rows]
            self.grouper.restore(meta["grouping"], wins)
            if self.scorer is not None:
                for w in wins:
                    self.scorer.encode(w)
                    if w.alert_id is None and (w.trigger or {}).get("kind") == "held":
                        self.held[w.wid] = [w, None, 0]
            logger.info("resumed from %s: %d lines, %d open windows", self.state_dir,
                        self.lines, len(wins))  # fmt: skip
        else:
            self.parser = self.pipe.parser(fmt, mine=True)
        self.sources: list[Source] = [open_source(states[p]) for p in cfg.inputs]
        first = cfg.batch_bytes if not cfg.follow else min(cfg.follow_batch_bytes,
                                                           cfg.batch_bytes)  # fmt: skip
        self._caps = [first] * len(self.sources)
        self.sink = AlertSink(Path(cfg.alerts) if cfg.alerts else None, committed)
        self.bg = Background(self.ckpt, paced=cfg.follow)
        self.started = time.monotonic()
        self.lines_at_start = self.lines
        self._last_ckpt_lines = self.lines
        self._last_ckpt_time = time.monotonic()
        self._last_progress = 0.0
        self._last_model_check = time.monotonic()
        self._model_sig: tuple[int, int, int] | None = None
        self.hook_failures = 0
        if ckpt is None:
            # checkpoint 0 before any line: a crash before the first periodic checkpoint
            # resumes from here (the alert file cut back to its length now; each file known
            # by its fingerprint, so one rotated away meanwhile is still found and read)
            self.checkpoint()

    def _check_model(self) -> None:
        if self.pipe.detector.input_kind == "raw" or not self.pipe.templates_mined:
            raise LogsieveError(
                f"watch scores models that read event ids; {self.pipe.name} reads raw messages"
            )
        needs_http = getattr(self.pipe.detector, "needs_http", None)
        if callable(needs_http) and needs_http():
            raise LogsieveError(
                f"watch does not build HTTP features; this {self.pipe.name} reads them "
                "(features=http): score its log with `logsieve detect`"
            )

    def _parser(self, state: dict[str, Any] | None, fmt: str | None) -> LogParser:
        if state is None:
            return self.pipe.parser(fmt, mine=True)
        pipe = Pipeline(self.pipe.detector, format=self.pipe.format, parser_state=state)
        return pipe.parser(fmt, mine=True)

    # ------------------------------------------------------------------ main loop
    def run(self) -> dict[str, Any]:
        """Process until the end of input (``follow=False``) or SIGTERM/SIGINT; checkpoint."""
        handlers = self._install_signals()
        wake = self._start_notify()
        gc_was = gc.isenabled()
        if self.cfg.gc_freeze:  # start-up's objects collected and frozen now, not in the
            self._gc_step()  # first batch of a followed input (its latency)
        try:
            while not self.stop:
                got = self._step()
                if self.cfg.stop_after_lines is not None and self.lines >= \
                        self.cfg.stop_after_lines:  # fmt: skip
                    break
                if got:
                    continue
                if not self.cfg.follow and self._all_read():
                    self.grouper.close_all()
                    self._score_closed()
                    self.sink.flush()
                    break
                self._idle_work()
                if wake is not None:
                    wake.wait(self.cfg.poll_seconds * 10)
                    wake.clear()
                else:
                    time.sleep(self.cfg.poll_seconds)
            self.checkpoint()
        finally:
            try:
                self.bg.wait()  # a background checkpoint still writing (after an error)
            except Exception as exc:  # the error that stopped the loop matters more
                logger.warning("background checkpoint failed: %s", exc)
            if self.cfg.gc_freeze:
                gc.unfreeze()
                if gc_was:
                    gc.enable()
            self._stop_notify()
            for src in self.sources:
                src.close()
            self.sink.close()
            self._restore_signals(handlers)
        return self.status()

    def _all_read(self) -> bool:
        return all(s.exhausted or s.kind == "file" for s in self.sources)

    def _step(self) -> bool:
        """Read and process one batch from each input with data; True when any had some."""
        got = False
        final = not self.cfg.follow
        caps = self._caps
        for i, src in enumerate(self.sources):
            cap = caps[i]
            data = src.read(cap, final)
            if not data:
                continue
            got = True
            self._process(src, data)
            caps[i] = self._next_cap(cap, len(data))
        if got:
            self._score_closed()
            self.sink.flush()
            self._maybe_checkpoint()
            self._maybe_reload()
            self._maybe_progress()
            if self.cfg.gc_freeze:
                self._gc_step()
        return got

    def _next_cap(self, cap: int, got: int) -> int:
        """The size of an input's next read. Following, reads start small (a batch of
        what a writer appended in a few ms is processed in a few ms: the latency) and
        double while they come back full (catching up: bigger batches cost less per line),
        up to ``batch_bytes``; a read that comes back less than half full starts over.
        Without ``follow`` every read is ``batch_bytes``."""
        cfg = self.cfg
        if not cfg.follow:
            return cfg.batch_bytes
        if got * 2 < cap:
            return min(cfg.follow_batch_bytes, cfg.batch_bytes)
        if got * 4 >= cap * 3:
            return min(cap * 2, cfg.batch_bytes)
        return cap

    @staticmethod
    def _gc_step() -> None:
        """The open windows are millions of small lists and tuples, none in a cycle: a
        collection that traverses them all costs more than the batch. The cycle collector
        runs by hand after each batch over what the batch allocated (young generations),
        then the survivors are frozen out of later passes (they are still freed by
        reference counting when their window closes)."""
        gc.disable()
        gc.collect(1)
        gc.freeze()

    def _idle_work(self) -> None:
        self.grouper.advance()
        if self.grouper.closed:
            self._score_closed()
            self.sink.flush()
        self._maybe_checkpoint()
        self._maybe_reload()
        self._maybe_progress()

    # ------------------------------------------------------------------ one batch
    def _process(self, src: Source, data: bytes) -> None:
        body = data[:-1] if data.endswith(b"\n") else data
        src_first = src.state.lines + 1
        lines = _decode_lines(src.name, body, src_first, self.read_stats, DEFAULT_MAX_LINE_BYTES)
        n = len(lines)
        first = self.lines + 1
        events = self.parser.parse_lines(lines, first, src.name, self.stats)
        src.state.lines += n
        self.lines += n
        if events.height == 0:
            return
        self.linemap.add(first, src.name, src_first - first)
        texts = BatchTexts(first, events[LINE_ID].to_numpy(), lines)
        eids, uniq, idx = self._intern(events[EVENT_ID])
        segs = self.grouper.add_batch(events, eids, texts)
        if self.scorer is not None and segs:
            inp, tgt = self.scorer.code_arrays(uniq, idx)
            seg, pos, ranks = self.scorer.rank_segments(segs, inp, tgt)
            self._batch = texts  # alerts show lines of the batch a window no longer keeps
            try:
                self._line_alerts(segs, seg, pos, ranks)
            finally:
                self._batch = None

    def _intern(self, eids: pl.Series) -> tuple[Any, list[str], np.ndarray]:
        """The batch's event ids as shared string objects (one per distinct id: open windows
        hold pointers, not copies; an object array); also the distinct ids and each row's
        index into them (found by a join, not a Python loop over the rows)."""
        table = self._eids
        if eids.null_count():
            seen: dict[str, int] = {}
            at = [seen.setdefault(e, len(seen)) for e in eids.to_list()]
            names = [table.setdefault(e, e) for e in seen]
            idx = np.asarray(at, dtype=np.int64)
        else:
            uniq = eids.unique(maintain_order=True).alias("e")
            names = [table.setdefault(e, e) for e in uniq.to_list()]
            idx = eids.alias("e").to_frame().join(
                uniq.to_frame().with_row_index("k"), on="e", how="left", maintain_order="left"
            )["k"].to_numpy().astype(np.int64)  # fmt: skip
        obj = np.empty(len(names), dtype=object)
        obj[:] = names
        return obj[idx], names, idx

    def _line_alerts(self, segs: list[Segment], seg: np.ndarray, pos: np.ndarray,
                     ranks: np.ndarray) -> None:  # fmt: skip
        """Per window, the first pair above the threshold alerts (once); a later, higher
        rank on an alerted window updates its record. Only windows whose best rank in the
        batch beats their score are looked at in Python. A window whose events so far may
        still become a marked-normal window (:class:`KnownPrefixes`) is held instead, and
        alerted (same trigger line) when it leaves every marked-normal sequence."""
        held = self._diverged() if self.held else []
        if not len(ranks):
            self._line_emit(held, [])
            return
        thr = self.scorer.threshold if self.scorer is not None else 0.0
        best = np.full(len(segs), -np.inf)
        np.maximum.at(best, seg, ranks)
        scores = np.fromiter((w.score for w, _, _ in segs), np.float64, len(segs))
        above = np.flatnonzero(ranks > thr)
        first_above = dict(zip(*np.unique(seg[above], return_index=True), strict=True))
        fresh: list[tuple[OpenWindow, int, float]] = list(held)
        later: list[tuple[OpenWindow, float]] = []
        taken = {id(w) for w, _, _ in held}
        for j in np.flatnonzero(best > scores).tolist():
            w = segs[j][0]
            if w.alert_id is None and j in first_above and id(w) not in taken \
                    and w.wid not in self.held:  # fmt: skip
                i = int(above[first_above[j]])
                if self.known is not None and self._hold(w, int(pos[i]), float(ranks[i])):
                    w.score = float(best[j])
                    continue
                w.score = float(ranks[i])
                fresh.append((w, int(pos[i]), w.score))
                if best[j] > w.score:
                    later.append((w, float(best[j])))
            else:
                w.score = float(best[j])
                if w.alert_id is not None and w.score > thr:
                    self._update(w, "line")
        later += [(w, w.score) for w, _, rank in held if w.score > rank]
        self._line_emit(fresh, later)

    def _line_emit(self, fresh: list[tuple[OpenWindow, int, float]],
                   later: list[tuple[OpenWindow, float]]) -> None:  # fmt: skip
        """Alert ``fresh`` windows at their trigger line; then record ``later`` updates."""
        if fresh:
            fresh.sort(key=lambda x: x[0].line_ids[x[1]])  # alert ids in trigger line order
            for w, _, _ in fresh:
                w.alert_id = self._next_alert_id()
            for w, score in later:  # a higher rank later in the batch: an update
                w.score = score
                self._update(w, "line")
            if self.scorer is not None:
                self.scorer.share_memo()
            for (w, p, rank), exp in zip(fresh, line_explanations(self.pipe, fresh),
                                         strict=True):  # fmt: skip
                shown = self._shown(w, p)
                t = w.trigger or {}
                if t.get("kind") == "held" and t.get("position") == p:  # held since
                    src, line_no = t["source"], int(t["line_no"])
                    if self._text_of(w, p) is None and t.get("text") is not None:
                        shown.append((src, line_no, t["text"]))  # scrolled out meanwhile
                else:
                    src, line_no = self.linemap.locate(w.line_ids[p])
                w.trigger = {"kind": "line", "source": src, "line_no": line_no,
                             "line_id": w.line_ids[p]}  # fmt: skip
                self._emit(w, rank, exp, shown)

    def _text_of(self, w: OpenWindow, q: int) -> str | None:
        """The text of position ``q`` of ``w``: kept by the window, or in the batch being
        processed (a window keeps its last lines only: a batch may bring more after it)."""
        kept = q - (len(w.line_ids) - len(w.refs))
        if kept >= 0:
            return w.refs[kept]
        return None if self._batch is None else self._batch.text_of(w.line_ids[q])

    def _shown(self, w: OpenWindow, p: int) -> list[tuple[str, int, str]]:
        """The lines of an alert at position ``p``: the window's last lines up to and with
        it (``keep_lines`` at most), those whose text is at hand."""
        out = []
        for q in range(max(0, p - self.cfg.keep_lines + 1), p + 1):
            text = self._text_of(w, q)
            if text is not None:
                src, n = self.linemap.locate(w.line_ids[q])
                out.append((src, n, text))
        return out

    def _hold(self, w: OpenWindow, p: int, rank: float) -> bool:
        """Hold ``w``'s line alert at position ``p`` while its events are a prefix of a
        marked-normal window; False when they are not."""
        assert self.known is not None
        node = self.known.walk(None, w.eids)
        if node is None:
            return False
        src, line_no = self.linemap.locate(w.line_ids[p])
        text = self._text_of(w, p)
        w.trigger = {"kind": "held", "position": p, "rank": rank, "source": src,
                     "line_no": line_no, "text": text}  # fmt: skip
        self.held[w.wid] = [w, node, len(w.eids)]
        return True

    def _diverged(self) -> list[tuple[OpenWindow, int, float]]:
        """Held windows whose new events left every marked-normal sequence (no longer held):
        ``(window, trigger position, rank)``."""
        out = []
        for wid, entry in list(self.held.items()):
            w, node, n = entry
            if len(w.eids) == n:
                continue
            node = None if self.known is None else self.known.walk(node, w.eids[n:])
            if node is None:
                del self.held[wid]
                t = w.trigger or {}
                out.append((w, int(t.get("position", len(w.eids) - 1)), float(t.get("rank", 0))))
            else:
                entry[1], entry[2] = node, len(w.eids)
        return out

    def _score_closed(self) -> None:
        closed = self.grouper.take_closed()
        if not closed:
            return
        if self.held:
            for w in closed:
                if self.held.get(w.wid, [None])[0] is w:
                    del self.held[w.wid]  # decided below, on the whole window
        if self.scorer is not None:
            ends = self.scorer.rank_ends(closed)
            final = np.fromiter((max(w.score, r) for w, r in zip(closed, ends.tolist(),
                                                                 strict=True)), np.float64)
            final = clamp_known(self.pipe.detector, closed, final)  # marked windows
            for w, score in zip(closed, final.tolist(), strict=True):
                w.score = score
            thr = self.scorer.threshold
            flagged = [w for w in closed if w.score > thr]
            new = [w for w in flagged if w.alert_id is None]
            for w in flagged:
                if w.alert_id is not None:
                    self._update(w, "window_end")
            if new:
                self.scorer.share_memo()
                exps = self.pipe.explain(windows_frame(new))
                for w, exp in zip(new, exps, strict=True):
                    w.alert_id = self._next_alert_id()
                    self._end_trigger(w)
                    self._emit(w, w.score, exp)
            return
        frame = windows_frame(closed)
        result = self.pipe.detect(frame)
        table = result.table
        for w, score, flag, exp in zip(closed, table["score"].to_list(),
                                       table["is_anomaly"].to_list(),
                                       table["explanation"].to_list(), strict=True):  # fmt: skip
            w.score = float(score)
            if flag:
                w.alert_id = self._next_alert_id()
                self._end_trigger(w)
                self._emit(w, w.score, None if exp is None else json.loads(exp))

    def _end_trigger(self, w: OpenWindow) -> None:
        src, line_no, _ = kept_refs(w, self.linemap, -1)[0] if w.refs else ("", 0, "")
        w.trigger = {"kind": "window_end", "source": src, "line_no": line_no,
                     "line_id": w.line_ids[-1] if w.line_ids else None}  # fmt: skip

    def _next_alert_id(self) -> str:
        self.alerts_emitted += 1
        return f"a{self.alerts_emitted:08d}"

    def _update(self, w: OpenWindow, kind: str) -> None:
        assert w.alert_id is not None
        self.updates[w.alert_id] = {"window_id": w.wid, "score": w.score, "finding": kind,
                                    "model_version": self.version}  # fmt: skip
        while len(self.updates) > UPDATES_KEPT:
            self.updates.pop(next(iter(self.updates)))

    def _emit(self, w: OpenWindow, score: float, explanation: Any,
              refs: list[tuple[str, int, str]] | None = None) -> None:  # fmt: skip
        record = clean_json({  # the explanation is clean JSON already (Pipeline.explain)
            "alert_id": w.alert_id,
            "window_id": w.wid,
            "score": score,
            "threshold": float(self.pipe.threshold),
            "model": self.pipe.name,
            "model_version": self.version,
            "emitted_at": time.time(),
            "trigger": w.trigger,
            "label": w.label,
            "lines": [{"source": s, "line_no": n, "text": t}
                      for s, n, t in (kept_refs(w, self.linemap) if refs is None else refs)],
        })  # fmt: skip
        record["explanation"] = explanation
        self.sink.write(record)
        if self.cfg.on_alert is not None:
            self.cfg.on_alert(record)
        if self.cfg.exec_cmd or self.cfg.webhook:
            self.sink.flush()
            self._hooks(record)

    def _hooks(self, record: dict[str, Any]) -> None:
        body = json.dumps(record).encode()
        if self.cfg.exec_cmd:
            try:
                subprocess.run(shlex.split(self.cfg.exec_cmd), input=body, timeout=30,
                               check=True, capture_output=True)  # fmt: skip
            except (OSError, subprocess.SubprocessError) as exc:
                self.hook_failures += 1
                logger.warning("--exec failed for alert %s: %s", record["alert_id"], exc)
        if self.cfg.webhook:
            req = urllib.request.Request(self.cfg.webhook, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    resp.read()
            except OSError as exc:
                self.hook_failures += 1
                logger.warning("--webhook failed for alert %s: %s", record["alert_id"], exc)

    # ------------------------------------------------------------------ model reload
    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._last_model_check < 0.2:
            return
        self._last_model_check = now
        try:  # the file is read only when it changed (replaced, rewritten)
            st = (Path(self.cfg.model_dir) / PIPELINE_FILE).stat()
        except OSError:
            return
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        if sig == self._model_sig:
            return
        version, mtime = model_version(Path(self.cfg.model_dir))
        if (version, mtime) == (self.version, self.version_mtime):
            self._model_sig = sig
            return
        try:
            pipe = Pipeline.load(self.cfg.model_dir)
        except LogsieveError as exc:  # a half-swapped directory: try again later
            logger.warning("model reload deferred: %s", exc)
            return
        self.pipe = pipe
        self._check_model()
        self.version, self.version_mtime = version, mtime
        self._model_sig = sig
        if self.scorer is not None:
            self.scorer = NextEventScorer(pipe)
            for w in self.grouper.open.values():
                self.scorer.encode(w)
            self.known = KnownPrefixes.of(pipe.detector)
            for entry in self.held.values():  # walked again, through the new marks
                entry[1:] = [None, 0]
            self._line_emit(self._diverged(), [])
            self.sink.flush()
        logger.info("model reloaded: version %d", version)

    # ------------------------------------------------------------------ state
    def _maybe_checkpoint(self) -> None:
        cfg = self.cfg
        if self.bg.busy:  # the one before is still being written: take this one later
            return
        if (self.lines - self._last_ckpt_lines >= cfg.checkpoint_lines
                or time.monotonic() - self._last_ckpt_time >= cfg.checkpoint_seconds):
            self.checkpoint(background=True)

    def checkpoint(self, background: bool = False) -> None:
        """Take a checkpoint between batches. What later batches change is copied here
        (cheap); serialising, fsyncing the alert file and the window files, and switching
        ``state.json`` run in a background thread when ``background`` (one at a time;
        until it is switched in, a restart resumes from the checkpoint before, which is
        still whole), else now."""
        self.bg.wait()
        committed = self.sink.mark()
        self.seq += 1
        meta = {
            "state_version": STATE_VERSION,
            "seq": self.seq,
            "sources": [s.state.to_dict() for s in self.sources],
            "lines": self.lines,
            "alerts": self.alerts_emitted,
            "alerts_committed": committed,
            "model_version": self.version,
            "grouping": self.grouper.state(),
            "alert_updates": dict(self.updates),
            "parse": {
                "malformed_lines": self.stats.malformed_lines,
                "blank_lines": self.stats.blank_lines,
                "new_templates": self.stats.new_templates,
                "invalid_utf8_lines": self.read_stats.invalid_utf8_lines,
            },
        }
        updated, gone = self.grouper.take_changes()
        if len(self.linemap) > LINEMAP_SPANS:  # many inputs, interleaved: forget old spans
            self.linemap.prune(min((w.line_ids[len(w.line_ids) - len(w.refs)]
                                    for w in self.grouper.open.values() if w.refs),
                                   default=self.lines + 1))  # fmt: skip
        snap = self.ckpt.snapshot(self.seq, meta, updated, gone,
                                  lambda: list(self.grouper.open.values()),
                                  self.parser.state_dict(), self.linemap.copy())  # fmt: skip
        snap.sync = self.sink.sync
        if background:
            self.bg.start(snap)
        else:
            self.ckpt.write_snapshot(snap)
        logger.debug("checkpoint %d (%s): %d updated, %d closed", self.seq, snap.kind,
                     len(updated), len(gone))  # fmt: skip
        self._last_ckpt_lines = self.lines
        self._last_ckpt_time = time.monotonic()
        self.write_status()

    def status(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        drain = self.parser.drain_
        return {
            "lines_processed": self.lines,
            "sources": [
                {"path": s.state.path, "offset": s.state.offset, "lines": s.state.lines,
                 "rotations": s.state.rotations, "truncations": s.state.truncations}
                for s in self.sources
            ],
            "open_windows": len(self.grouper.open),
            "alerts_emitted": self.alerts_emitted,
            "alert_updates": len(self.updates),
            "lines_per_second": round((self.lines - self.lines_at_start) / elapsed, 1),
            "malformed_lines": self.stats.malformed_lines,
            "invalid_utf8_lines": self.read_stats.invalid_utf8_lines,
            "templates": 0 if drain is None else len(drain.clusters),
            "windows": dict(self.grouper.counts),
            "model": self.pipe.name,
            "model_version": self.version,
            "hook_failures": self.hook_failures,
            "memo": None if self.scorer is None else
            {"hits": self.scorer.hits, "misses": self.scorer.misses},
            "checkpoint": self.seq,
            "updated_at": time.time(),
        }  # fmt: skip

    def write_status(self) -> None:
        write_json_synced(self.state_dir / STATUS_FILE, self.status(), sync=False)

    def _maybe_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < self.cfg.progress_seconds:
            return
        self._last_progress = now
        status = self.status()
        write_json_synced(self.state_dir / STATUS_FILE, status, sync=False)  # for operators
        if self.cfg.on_progress is not None:
            self.cfg.on_progress(status)

    # ------------------------------------------------------------------ signals, notify
    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, frame: Any) -> None:
            self.stop = True

        old: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, handler)
        return old

    @staticmethod
    def _restore_signals(old: dict[int, Any]) -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    def _start_notify(self) -> threading.Event | None:
        """Wake the loop on file changes (watchfiles, when installed); else poll."""
        self._notify_stop = threading.Event()
        if not self.cfg.follow:
            return None
        try:
            import watchfiles
        except ImportError:
            return None
        dirs = sorted({str(Path(p).resolve().parent) for p in self.cfg.inputs if p != "-"})
        if not dirs:
            return None
        wake = threading.Event()
        stop = self._notify_stop

        def loop() -> None:
            try:
                for _ in watchfiles.watch(*dirs, stop_event=stop, debounce=0, step=1,
                                          rust_timeout=200, yield_on_timeout=True,
                                          raise_interrupt=False):  # fmt: skip
                    wake.set()
            except Exception as exc:  # notification is an optimisation: fall back to polling
                logger.debug("file notification off: %s", exc)

        self._notify_thread = threading.Thread(target=loop, daemon=True, name="watch-notify")
        self._notify_thread.start()
        return wake

    def _stop_notify(self) -> None:
        self._notify_stop.set()
        t = getattr(self, "_notify_thread", None)
        if t is not None:
            t.join(timeout=2)

