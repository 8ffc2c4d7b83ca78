"""Operator feedback on a saved model directory: versions, history and rollback.

:func:`apply_feedback` teaches the model of a directory that some windows are normal (or
anomalous), with the policy of its detector family
(:func:`logsieve.detectors.feedback.learn_feedback`), and writes the result as a new
version. The convention, which the CLI, the online watcher and the service share:

- ``pipeline.json`` has an integer ``model_version`` (1 for a freshly trained model; a
  missing key means 1) and ``parent_version`` (the version this one was made from);
- a new version is built whole in a temporary sibling directory and swapped in, as
  :meth:`Pipeline.save` does, so a crash leaves the previous version intact;
- the version it replaces is kept under ``MODEL_DIR/history/v<N>/`` (every file of the
  directory except ``history/`` and ``test_windows.parquet``, which feedback never
  changes: what is needed to restore it);
- :func:`rollback` restores the parent of the current version as a NEW version number
  (history keeps the current one), so successive rollbacks walk back.

The marked windows join ``train_windows.parquet`` with their label, so a later refit or
rehearsal keeps what was taught.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.detectors.feedback import learn_feedback
from logsieve.errors import InputError, LogsieveError
from logsieve.io.tables import read_table
from logsieve.pipeline.core import (
    PART,
    PIPELINE_FILE,
    TEST_WINDOWS_FILE,
    TRAIN_WINDOWS_FILE,
    Pipeline,
    clean_json,
    read_windows,
)
from logsieve.schema import LABEL, LINE_ID, WINDOW_ID

logger = logging.getLogger(__name__)

HISTORY_DIR = "history"
FEEDBACK_LOG = "feedback.jsonl"

__all__ = [
    "HISTORY_DIR",
    "apply_feedback",
    "model_version",
    "read_alerts",
    "rollback",
    "windows_for_alerts",
]


def model_version(model_dir: str | Path) -> int:
    """The ``model_version`` of a model directory (1 when ``pipeline.json`` has none)."""
    file = Path(model_dir) / PIPELINE_FILE
    if not file.is_file():
        return 1
    try:
        return int(json.loads(file.read_text(encoding="utf-8")).get("model_version") or 1)
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(file, f"not a readable pipeline description ({exc})") from exc


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # files are only ever replaced, never edited: links are safe
    except OSError:
        shutil.copy2(src, dst)


def _copy_tree(src: Path, dst: Path, skip: Sequence[str] = ()) -> None:
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if rel.parts[0] in skip or not path.is_file():
            continue
        _link_or_copy(path, dst / rel)


def _history_writer(source: Path, version: int) -> Any:
    """``extra`` for :meth:`Pipeline.save`: old history plus ``source`` as ``v<version>``."""

    def write(tmp: Path) -> None:
        old = source / HISTORY_DIR
        if old.is_dir():
            _copy_tree(old, tmp / HISTORY_DIR)
        _copy_tree(source, tmp / HISTORY_DIR / f"v{version}", skip=(HISTORY_DIR, TEST_WINDOWS_FILE))
        test = source / TEST_WINDOWS_FILE
        if test.is_file():
            _link_or_copy(test, tmp / TEST_WINDOWS_FILE)
        for name in ("train_summary.json", FEEDBACK_LOG):
            if (source / name).is_file() and not (tmp / name).exists():
                _link_or_copy(source / name, tmp / name)

    return write


def _seen_windows(model_dir: Path) -> tuple[pl.DataFrame | None, dict[str, Any]]:
    path = model_dir / TRAIN_WINDOWS_FILE
    if not path.is_file():
        return None, {}
    return read_table(path)


def apply_feedback(
    model_dir: str | Path,
    windows: pl.DataFrame,
    label: str,
    out_dir: str | Path | None = None,
    *,
    scope: str = "window",
) -> dict[str, Any]:
    """Teach the model in ``model_dir`` that ``windows`` are ``label`` ("normal"/"anomaly").

    Writes the next version to ``out_dir`` (default: ``model_dir`` itself, in place),
    atomically, keeping the replaced version under ``history/``. Returns a JSON-able
    report (``model_version``, ``previous_version``, what the detector did, how many
    marked windows were flagged before and after). A detector that cannot learn the
    label raises :class:`~logsieve.detectors.feedback.FeedbackRefused` (one line) and
    nothing is written. ``scope``: ``"window"`` (the marked windows, exactly, and the
    model's guarded learning) or ``"pattern"`` (also generalise; see
    :mod:`logsieve.detectors.feedback`).
    """
    source = Path(model_dir)
    target = Path(out_dir) if out_dir is not None else source
    pipe = Pipeline.load(source)
    seen, meta = _seen_windows(source)
    marked = pipe.prepare(windows)
    train = valid = None
    if seen is not None:
        train = seen.filter(pl.col(PART) != "valid").drop(PART)
        valid = seen.filter(pl.col(PART) == "valid").drop(PART)
    report = learn_feedback(pipe.detector, marked, label, train=train, valid=valid, scope=scope)
    previous = pipe.model_version
    pipe.parent_version = previous
    pipe.model_version = _next_version(source)
    if seen is not None:
        value = 1 if label == "anomaly" else 0
        added = marked.with_columns(
            pl.lit(value, dtype=pl.Int8).alias(LABEL), pl.lit("train").alias(PART)
        )
        cols = [c for c in seen.columns if c in added.columns]
        seen = pl.concat([seen, added.select(cols)], how="diagonal_relaxed")
    report = clean_json(
        {**report, "model_version": pipe.model_version, "previous_version": previous,
         "model_dir": str(target), "window_ids": _ids(marked)}
    )  # fmt: skip
    pipe.save(
        target,
        summary=None,
        train_windows=seen,
        test_meta=meta,
        extra=_with_log(_history_writer(source, previous), source, report),
    )
    return report


def _with_log(inner: Any, source: Path, entry: Mapping[str, Any]) -> Any:
    """Also append ``entry`` to the directory's ``feedback.jsonl`` (a new file each version)."""

    def write(tmp: Path) -> None:
        old = source / FEEDBACK_LOG
        text = old.read_text(encoding="utf-8") if old.is_file() else ""
        (tmp / FEEDBACK_LOG).write_text(text + json.dumps(entry) + "\n", encoding="utf-8")
        inner(tmp)

    return write


def _ids(windows: pl.DataFrame) -> list[str]:
    if WINDOW_ID not in windows.columns:
        return []
    return [str(x) for x in windows.get_column(WINDOW_ID).to_list()]


def _next_version(model_dir: Path) -> int:
    """One above every version the directory has seen (current and history)."""
    versions = [model_version(model_dir)]
    hist = model_dir / HISTORY_DIR
    if hist.is_dir():
        versions += [int(p.name[1:]) for p in hist.glob("v*") if p.name[1:].isdigit()]
    return max(versions) + 1


def rollback(model_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Restore the version the current one was made from, as a new version number."""
    source = Path(model_dir)
    target = Path(out_dir) if out_dir is not None else source
    pipe_now = Pipeline.load(source)
    current = pipe_now.model_version
    parent = pipe_now.parent_version
    if parent is None:
        raise LogsieveError(f"{source}: version {current} has no earlier version to roll back to")
    snapshot = source / HISTORY_DIR / f"v{int(parent)}"
    if not snapshot.is_dir():
        raise LogsieveError(f"{source}: {HISTORY_DIR}/v{parent} is missing; cannot roll back")
    restored = Pipeline.load(snapshot)
    new_version = _next_version(source)
    restored.model_version = new_version
    seen, meta = _seen_windows(snapshot)
    history = _history_writer(source, current)

    def extra(tmp: Path) -> None:
        for name in ("train_summary.json", FEEDBACK_LOG):
            if (snapshot / name).is_file():
                _link_or_copy(snapshot / name, tmp / name)
        history(tmp)

    restored.save(target, train_windows=seen, test_meta=meta, extra=extra)
    return {"model_dir": str(target), "model_version": new_version, "restored_version": parent,
            "previous_version": current}  # fmt: skip


# ----------------------------------------------------------------------------- alerts
def read_alerts(path: str | Path) -> list[dict[str, Any]]:
    """Alerts of an alerts JSONL file (one JSON object per line, as the watcher writes).

    Each alert needs ``alert_id``, ``window_id`` and ``lines``
    (``[{"source", "line_no", "text"}, ...]``); a bad line is a one-line error naming the
    file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "alerts file not found")
    alerts = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                alert = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"not JSON ({exc.msg})", line=n) from exc
            if not isinstance(alert, dict) or not {"alert_id", "window_id"} <= set(alert):
                raise InputError(path, "an alert needs 'alert_id' and 'window_id'", line=n)
            lines = alert.get("lines", [])
            if not isinstance(lines, list) or not all(
                isinstance(x, dict) and "text" in x for x in lines
            ):
                raise InputError(path, "'lines' must be a list of {source, line_no, text}", line=n)
            alert["_line"] = n
            alerts.append(alert)
    return alerts


def windows_for_alerts(
    pipe: Pipeline,
    alerts: Sequence[Mapping[str, Any]],
    ids: Sequence[str] | None = None,
    windows_path: str | Path | None = None,
) -> pl.DataFrame:
    """The windows of the chosen alerts (all when ``ids`` is None).

    Looked up by ``window_id`` in ``windows_path`` when given; otherwise each alert's
    lines are parsed with the model's parser and grouped as in training.
    """
    chosen = [a for a in alerts if ids is None or str(a["alert_id"]) in set(map(str, ids))]
    if ids is not None:
        missing = set(map(str, ids)) - {str(a["alert_id"]) for a in chosen}
        if missing:
            raise LogsieveError(f"alert(s) not found: {', '.join(sorted(missing))}")
    wanted = [str(a["window_id"]) for a in chosen]
    if windows_path is not None:
        table, _ = read_windows(windows_path)
        return select_windows(table, wanted, windows_path)
    parts = []
    parser = pipe.parser()
    for alert in chosen:
        texts = [str(x["text"]) for x in alert.get("lines", [])]
        if not texts:
            raise LogsieveError(f"alert {alert['alert_id']}: no lines to rebuild its window from")
        events = parser.parse_lines(pl.Series("line", texts))
        events = parser.attach_templates(events).collect()
        nums = [x.get("line_no") for x in alert["lines"]]
        if all(isinstance(n, int) for n in nums) and len(set(nums)) == len(nums):
            events = events.with_columns(pl.Series(LINE_ID, nums, dtype=pl.Int64))
        windows = pipe.group(events)
        match = windows.filter(pl.col(WINDOW_ID) == str(alert["window_id"]))
        if match.height == 0:  # grouping named it differently: take all its lines as one
            match = windows.head(1).with_columns(pl.lit(str(alert["window_id"])).alias(WINDOW_ID))
        if match.height == 0:
            raise LogsieveError(f"alert {alert['alert_id']}: its lines form no window")
        parts.append(match)
    return pl.concat(parts, how="diagonal_relaxed")


def select_windows(table: pl.DataFrame, ids: Sequence[str], where: str | Path) -> pl.DataFrame:
    """Rows of ``table`` whose ``window_id`` is in ``ids`` (every id must be there)."""
    if WINDOW_ID not in table.columns:
        raise InputError(where, "no 'window_id' column")
    found = table.filter(pl.col(WINDOW_ID).cast(pl.String).is_in(list(ids)))
    missing = set(ids) - set(found.get_column(WINDOW_ID).cast(pl.String).to_list())
    if missing:
        raise InputError(where, f"window(s) not found: {', '.join(sorted(missing)[:5])}")
    return found

