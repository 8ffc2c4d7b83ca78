"""One object from raw log lines to explained alerts: :class:`Pipeline`.

A pipeline holds everything a detector needs to score a new log: the log format and masks,
the parser state (optional: raw-text models skip template mining), the grouping spec, the
event id -> template map, and the fitted detector. It trains from a windows table, scores
raw lines, an events table or a windows table, explains its alerts, and saves all of it as
ONE model directory. The CLI, experiments, benchmarks, the online watcher and the service
all run through it, so a figure measured one way is the figure every other way gives.

Model directory::

    model.json, weights.safetensors   the detector (see logsieve.detectors.persistence)
    pipeline.json                     format, masks, grouping, templates, provenance
    parser_state.json                 Drain state, when templates were mined
    train_summary.json                what training saw and dropped (written by train)
    test_windows.parquet              held-out windows of a split (written by train)
    train_windows.parquet             training and validation windows (column ``part``):
                                      what feedback refits on or rehearses
    history/v<N>/                     earlier versions (written by feedback)

``pipeline.json`` holds ``model_version`` (1 when trained; a missing key means 1) and
``parent_version`` (the version it was made from; see :mod:`logsieve.pipeline.feedback`).

The directory is written whole into a temporary sibling and then swapped in, so a failed
run never leaves a half-written model nor damages the one it would replace.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve._version import __version__
from logsieve.detectors.base import BaseDetector
from logsieve.detectors.registry import create_detector, load_detector
from logsieve.errors import InputError, LogsieveError
from logsieve.features.http import HTTP, attach_http
from logsieve.grouping.specs import AnySpec, group_any, spec_from_dict, spec_to_dict
from logsieve.grouping.split import split_windows
from logsieve.grouping.text import MESSAGES, attach_messages
from logsieve.grouping.values import attach_values, has_values
from logsieve.io.atomic import cleanup_on_sigterm, sweep_stale_temp, write_json
from logsieve.io.jsonable import clean_json, to_json
from logsieve.io.tables import read_meta, read_table, scan_table, state_hash, write_table
from logsieve.parsing.parser import LogParser, ParseStats
from logsieve.schema import EVENT_IDS, LABEL, PART, WINDOW_ID

logger = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.json"
PARSER_STATE_FILE = "parser_state.json"
SUMMARY_FILE = "train_summary.json"
TEST_WINDOWS_FILE = "test_windows.parquet"
TRAIN_WINDOWS_FILE = "train_windows.parquet"
PIPELINE_FORMAT_VERSION = 1
#: share of normal validation windows flagged above which training is reported as failed
#: (a threshold chosen on validation normals flags about ``contamination`` of them, 1%)
FLAG_RATE_WARNING = 0.1
#: relative fall of the validation loss in the last epoch above which a run that used every
#: epoch is reported as not converged
STILL_FALLING = 0.02

ProgressCallback = Callable[[Any], None]

__all__ = [
    "DetectResult",
    "Pipeline",
    "TrainResult",
    "clean_json",
    "read_state_file",
    "read_templates_file",
    "read_windows",
]


# ----------------------------------------------------------------------------- helpers
def read_windows(path: str | Path) -> tuple[pl.DataFrame, dict[str, Any]]:
    """A windows table and its provenance, with a one-line error when it is not one."""
    df, meta = read_table(path)
    if EVENT_IDS not in df.columns:
        raise InputError(
            path, f"no {EVENT_IDS!r} column: not a windows table (run `logsieve group` first)"
        )
    return df, meta


def read_templates_file(path: str | Path) -> dict[str, str]:
    """Event id -> template from a Parquet table or a CSV/TSV templates file.

    Reads what ``parse --templates-out`` writes (``event_id,template,count``), Loghub's
    ``EventId,EventTemplate[,Occurrences]``, an events or windows Parquet file (its
    ``event_id``/``template`` columns or its provenance), and header-less one-template-per-
    line files (ids counted from 1).
    """
    from logsieve.grouping.sequences import read_templates

    path = Path(path)
    if path.suffix == ".parquet" or path.is_dir():
        meta = read_meta(path)
        if meta.get("templates"):
            return dict(meta["templates"])
        try:
            df = scan_table(path).select("event_id", "template").collect()
        except Exception as exc:
            raise InputError(path, f"need 'event_id' and 'template' columns ({exc})") from exc
        df = df.drop_nulls().unique("event_id", keep="first", maintain_order=True)
    else:
        df = read_templates(path)
    return dict(zip(df["event_id"].to_list(), df["template"].to_list(), strict=True))


def _needs_values(detector: BaseDetector) -> bool:
    """True when the detector reads parameter values (DeepLog's value model)."""
    needs = getattr(detector, "needs_values", None)
    return bool(needs()) if callable(needs) else False


def _needs_http(detector: BaseDetector) -> bool:
    """True when the detector reads the windows' HTTP features (``--set features=http``)."""
    needs = getattr(detector, "needs_http", None)
    return bool(needs()) if callable(needs) else False


def _needs_templates(detector: BaseDetector) -> bool:
    needs = getattr(detector, "needs_templates", None)
    if callable(needs):
        return bool(needs())
    return detector.input_kind == "semantic"


# ----------------------------------------------------------------------------- results
@dataclass
class TrainResult:
    """What :meth:`Pipeline.train` did: the summary written as ``train_summary.json``."""

    summary: dict[str, Any]
    test: pl.DataFrame | None = None
    #: training and validation windows (column ``part``), kept for feedback
    seen: pl.DataFrame | None = None


@dataclass
class DetectResult:
    """Scores of every window plus the explanations of the chosen ones."""

    table: pl.DataFrame  # window_id, score, is_anomaly, label, explanation (JSON or null)
    threshold: float
    seconds: float
    explained: int
    windows: pl.DataFrame = field(repr=False)

    def summary(self, model: str) -> dict[str, Any]:
        return clean_json(
            {
                "model": model,
                "windows": self.table.height,
                "anomalies": int(self.table["is_anomaly"].sum()),
                "explained": self.explained,
                "threshold": self.threshold,
                "seconds": self.seconds,
            }
        )


# ----------------------------------------------------------------------------- pipeline
class Pipeline:
    """Format, masks, parser state, grouping and a detector, as one unit.

    Build one with :meth:`for_windows` (from a windows table's provenance) or
    :meth:`load`; train with :meth:`train`; score with :meth:`score` / :meth:`detect` on a
    windows table, an events table or raw log files (:meth:`windows_from_log`).
    """

    def __init__(
        self,
        detector: BaseDetector,
        *,
        format: str | None = None,
        masks: Sequence[Mapping[str, Any]] | None = None,
        parser_state: Mapping[str, Any] | None = None,
        grouping: AnySpec | None = None,
        templates: Mapping[str, str] | None = None,
        templates_mined: bool = True,
        model_version: int = 1,
        parent_version: int | None = None,
    ) -> None:
        self.model_version = int(model_version)
        self.parent_version = parent_version
        self.detector = detector
        self.format = format
        self.masks = [dict(m) for m in masks] if masks else []
        self.parser_state = dict(parser_state) if parser_state else None
        self.grouping = grouping
        self.templates = dict(templates or {})
        self.templates_mined = templates_mined

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_windows(
        cls, detector: BaseDetector | str, meta: Mapping[str, Any], **params: Any
    ) -> Pipeline:
        """A pipeline around ``detector`` that remembers how a windows table was made."""
        if isinstance(detector, str):
            detector = create_detector(detector, **params)
        grouping = meta.get("grouping")
        return cls(
            detector,
            format=meta.get("format"),
            masks=meta.get("masks"),
            parser_state=meta.get("parser_state"),
            grouping=spec_from_dict(grouping) if grouping else None,
            templates=meta.get("templates"),
            templates_mined=bool(meta.get("templates_mined", True)),
        )

    @property
    def name(self) -> str:
        return str(self.detector.name)

    @property
    def threshold(self) -> float:
        return float(self.detector.threshold_)

    def describe(self) -> dict[str, Any]:
        """What ``pipeline.json`` records (and ``GET /v1/model`` shows)."""
        return {
            "format": "logsieve-pipeline",
            "format_version": PIPELINE_FORMAT_VERSION,
            "logsieve_version": __version__,
            "model": self.name,
            "log_format": self.format,
            "masks": self.masks,
            "grouping": None if self.grouping is None else spec_to_dict(self.grouping),
            "templates_mined": self.templates_mined,
            "parser_state_sha256": state_hash(self.parser_state),
            "templates": self.templates,
            "model_version": self.model_version,
            "parent_version": self.parent_version,
        }

    # ------------------------------------------------------------------ stages
    def parser(self, format: str | None = None, *, mine: bool = False) -> LogParser:
        """A parser continuing from the saved state (``format`` overrides): match-only, or
        with ``mine`` learning new templates as ``logsieve parse`` does (new ids, kept in
        the parser's state; the model's own state is not changed)."""
        fmt = format if format is not None else self.format
        if not self.templates_mined:
            return LogParser(format=fmt, mine_templates=False)
        if self.parser_state is None:
            raise LogsieveError(
                "this model has no parser state, so it cannot read a raw log: retrain it from "
                "windows made by `logsieve parse` + `group`, or pass `--state STATE.json`"
            )
        parser = self._state_parser(fmt, mine)
        parser.values = _needs_values(self.detector)
        return parser

    def _state_parser(self, fmt: str | None, mine: bool) -> LogParser:
        with tempfile.TemporaryDirectory(prefix=".logsieve-state-") as tmp:
            path = Path(tmp) / PARSER_STATE_FILE
            path.write_text(json.dumps(self.parser_state), encoding="utf-8")
            return LogParser.load_state(path, format=fmt, match_only=not mine)

    def parse(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        format: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        mine: bool = False,
    ) -> tuple[pl.DataFrame, ParseStats]:
        """Parse raw log files with the model's parser state (new messages get ``E0``, or
        with ``mine`` new templates and ids, as online parsing in ``watch`` does)."""
        parser = self.parser(format, mine=mine)
        events, stats = parser.parse_files(paths, progress=progress)
        assert events is not None
        return events, stats

    def group(
        self,
        events: pl.DataFrame | str | Path,
        *,
        labels: str | Path | pl.DataFrame | None = None,
        grouping: AnySpec | None = None,
    ) -> pl.DataFrame:
        """Group an events table as the training windows were grouped (``grouping`` overrides)."""
        spec = grouping if grouping is not None else self.grouping
        if spec is None:
            raise LogsieveError(
                "this model does not know how its windows were grouped: pass --session, "
                "--session-field, --window or --time"
            )
        windows = group_any(events, spec, labels=labels).windows
        if self.detector.input_kind == "raw" or not self.templates_mined:
            windows = attach_messages(windows, events)
        if _needs_values(self.detector) and has_values(events):
            windows = attach_values(windows, events)
        if _needs_http(self.detector):
            windows = attach_http(windows, events)
        return windows

    def windows_from_log(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        format: str | None = None,
        labels: str | Path | pl.DataFrame | None = None,
        grouping: AnySpec | None = None,
        mine: bool = False,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Raw log files -> (windows, events), parsed and grouped as in training."""
        events, _ = self.parse(paths, format=format, mine=mine)
        return self.group(events, labels=labels, grouping=grouping), events

    def prepare(
        self,
        windows: pl.DataFrame,
        meta: Mapping[str, Any] | None = None,
        events: pl.DataFrame | str | Path | None = None,
    ) -> pl.DataFrame:
        """Check a windows table fits the model and add what it reads (raw messages)."""
        meta = meta or {}
        det = self.detector
        if not meta.get("templates_mined", True) and det.input_kind != "raw":
            raise LogsieveError(
                f"{self.name} reads event ids, but these windows were parsed without templates "
                "(`parse --no-templates`): parse again without it"
            )
        if det.input_kind == "raw" and MESSAGES not in windows.columns:
            if events is None:
                raise LogsieveError(
                    f"{self.name} reads raw messages: pass the events table (--events "
                    "EVENTS.parquet) or group with a model that keeps them"
                )
            windows = attach_messages(windows, events)
        if _needs_http(det) and HTTP not in windows.columns:
            if events is None:
                raise LogsieveError(
                    f"{self.name} with HTTP features reads the windows' status codes, methods "
                    "and URLs: group an HTTP log's events again with this version, or pass the "
                    "events table (--events EVENTS.parquet)"
                )
            windows = attach_http(windows, events)
        return windows

    # ------------------------------------------------------------------ learning
    def train(
        self,
        windows: pl.DataFrame,
        *,
        split: tuple[float, float, float | None] | None = None,
        valid: pl.DataFrame | None = None,
        split_method: str = "chronological",
        seed: int = 0,
        train_normal_only: bool = False,
        templates: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> TrainResult:
        """Fit the detector, choosing its threshold on validation windows only.

        Validation data, in order: ``valid``; else the validation part of ``split`` (the
        test part is returned, for ``detect``/``evaluate``); else the model's own
        chronological ``valid_fraction`` of the training windows. Every window left out of
        training is counted in the summary, whoever dropped it.
        """
        det = self.detector
        if templates:
            self.templates = {**self.templates, **templates}
        if _needs_templates(det) and not self.templates:
            raise LogsieveError(
                f"{self.name} embeds template text, and these windows carry none: pass "
                "--templates FILE (what `logsieve parse --templates-out` writes) or group "
                "an events table written by `logsieve parse`"
            )
        if split is not None and valid is not None and split[1] > 0:
            raise LogsieveError("give either validation windows or a validation fraction, not both")
        split_summary = None
        test = None
        train = windows
        if split is not None:
            parts = split_windows(
                windows, split[0], split[1], split[2], method=split_method,  # type: ignore[arg-type]
                seed=seed, train_normal_only=train_normal_only,
            )  # fmt: skip
            train = parts.train
            if valid is None and parts.valid.height:
                valid = parts.valid
            split_summary = parts.summary()
            test = parts.test
        elif train_normal_only:
            keep = pl.col(LABEL).is_null() | (pl.col(LABEL) != 1)
            before = train.height
            train = train.filter(keep)
            split_summary = {"train_normal_only": True, "dropped_anomalous": before - train.height}
        t0 = time.perf_counter()
        det.fit(train, valid=valid, templates=self.templates or None, progress=progress)
        seconds = time.perf_counter() - t0
        summary = {
            "model": self.name,
            "params": det.get_params(),
            "threshold": det.threshold_,
            "threshold_source": det.threshold_source_,
            "training": self._training_counts(train, valid, split_summary),
            "n_train_windows": det.n_train_windows_,
            "n_valid_windows": None if valid is None else valid.height,
            "train_seconds": seconds,
            "history": getattr(det, "history_", None),
            "split": split_summary,
            "warnings": self._health(det, valid),
        }
        return TrainResult(clean_json(summary), test, _seen(train, valid))

    def _training_counts(
        self, train: pl.DataFrame, valid: pl.DataFrame | None, split: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Windows given to training and every window dropped on the way, with who dropped it."""
        det = self.detector
        by_split = int((split or {}).get("dropped_anomalous", 0) or 0)
        n_train = int(det.n_train_windows_)
        own_valid = valid is None and not det.requires_labels
        given = train.height
        by_model = det.n_dropped_train_windows_
        rule = (
            "supervised: trains on labelled windows"
            if det.requires_labels
            else "keeps anomalous windows (include_anomalies=True)"
            if getattr(det, "include_anomalies", False)
            else "unsupervised: drops windows labelled anomalous (--include-anomalies keeps them)"
        )
        return {
            "windows_given": given + by_split,
            "dropped_anomalous_by_split": by_split,
            "dropped_by_model": int(by_model),
            "model_rule": rule,
            "validation_taken_from_training": own_valid,
            "trained_on": n_train,
        }

    @staticmethod
    def _health(det: BaseDetector, valid: pl.DataFrame | None) -> list[str]:
        """One-line warnings when training looks broken (never fatal)."""
        out: list[str] = []
        history = getattr(det, "history_", None) or []
        losses: list[float] = []
        for h in history:
            x = h.get("valid_loss") if h.get("valid_loss") is not None else h.get("train_loss")
            if isinstance(x, (int, float)) and math.isfinite(x):
                losses.append(float(x))
        stopped = any(h.get("stopped") for h in history)
        if len(losses) >= 3 and losses[-1] > losses[0]:
            out.append(
                f"validation loss rose during training ({losses[0]:.4g} -> {losses[-1]:.4g}): "
                "the model has not converged; try more epochs or a smaller learning rate"
            )
        elif len(losses) >= 2 and not stopped and losses[-1] < losses[-2] * (1 - STILL_FALLING):
            which = "validation" if history[-1].get("valid_loss") is not None else "training"
            out.append(
                f"{which} loss was still falling in the last epoch ({losses[-2]:.4g} -> "
                f"{losses[-1]:.4g}, {losses[-1] / losses[-2] - 1:+.0%}): the model has likely "
                "not converged; train with more epochs"
            )
        if valid is not None and LABEL in valid.columns:
            normal = valid.filter(pl.col(LABEL) == 0)
            if normal.height >= 20:
                rate = float(det.predict(normal).mean())
                if rate > FLAG_RATE_WARNING:
                    out.append(
                        f"the threshold flags {rate:.0%} of the normal validation windows: "
                        "the model has not learned what normal looks like (train longer?)"
                    )
        return out

    # ------------------------------------------------------------------ scoring
    def score(self, windows: pl.DataFrame) -> np.ndarray:
        """Anomaly score per window (higher = more anomalous); identical windows scored once."""
        return self.detector.decision_function(windows)

    def add_templates(self, templates: Mapping[str, str]) -> None:
        """Teach semantic models templates first seen after training (new log statements)."""
        new = {k: v for k, v in templates.items() if k not in self.templates}
        if not new:
            return
        adder = getattr(self.detector, "add_templates", None)
        if callable(adder):
            try:
                adder(new)
            except LogsieveError as exc:
                logger.info("%s: new templates not embedded (%s)", self.name, exc)
                return
        self.templates.update(new)

    def detect(
        self,
        windows: pl.DataFrame,
        *,
        top: int | None = None,
        explain_top: int = 0,
    ) -> DetectResult:
        """Score ``windows``; explain the flagged ones (the ``top`` highest when given) and
        the ``explain_top`` highest-scoring windows, flagged or not."""
        if top is not None and top < 0:
            raise LogsieveError(f"top must be >= 0, not {top}")
        if explain_top < 0:
            raise LogsieveError(f"explain_top must be >= 0, not {explain_top}")
        if WINDOW_ID not in windows.columns:
            windows = windows.with_columns(
                pl.int_range(pl.len()).cast(pl.String).alias(WINDOW_ID)
            )
        det = self.detector
        t0 = time.perf_counter()
        with det.reusing_scores():  # explaining right after scoring reuses the scoring work
            scores = self.score(windows)
            flagged = scores > det.threshold_
            chosen = np.flatnonzero(flagged)
            if top is not None:
                chosen = chosen[np.argsort(-scores[chosen], kind="stable")[:top]]
            if explain_top:
                worst = np.argsort(-scores, kind="stable")[:explain_top]
                chosen = np.union1d(chosen, worst).astype(np.int64)
            explanations: list[str | None] = [None] * windows.height
            if len(chosen):
                for i, exp in zip(chosen.tolist(), det.explain(windows[chosen]), strict=True):
                    explanations[i] = to_json(exp)
        labels = (
            windows[LABEL].cast(pl.Int8)
            if LABEL in windows.columns
            else pl.Series(LABEL, [None] * windows.height, dtype=pl.Int8)
        )
        table = pl.DataFrame(
            {
                WINDOW_ID: windows[WINDOW_ID].cast(pl.String),
                "score": scores,
                "is_anomaly": flagged,
                LABEL: labels,
                "explanation": pl.Series("explanation", explanations, dtype=pl.String),
            }
        )
        return DetectResult(
            table=table,
            threshold=float(det.threshold_),
            seconds=time.perf_counter() - t0,
            explained=int(len(chosen)),
            windows=windows,
        )

    def explain(self, windows: pl.DataFrame) -> list[dict[str, Any]]:
        """The detector's explanation of each window (JSON-able)."""
        return [clean_json(e) for e in self.detector.explain(windows)]

    # ------------------------------------------------------------------ persistence
    def save(
        self,
        path: str | Path,
        *,
        summary: Mapping[str, Any] | None = None,
        test_windows: pl.DataFrame | None = None,
        test_meta: Mapping[str, Any] | None = None,
        train_windows: pl.DataFrame | None = None,
        extra: Callable[[Path], None] | None = None,
    ) -> Path:
        """Write the whole model directory, then swap it in (see the module docstring).

        ``extra(tmp)`` adds files to the new directory before the swap (feedback's history).
        """
        target = Path(path)
        _check_replaceable(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temp(target.parent)
        with cleanup_on_sigterm():
            prefix = f".logsieve-model-{os.getpid()}-"
            tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
            try:
                self._write_dir(tmp, summary, test_windows, test_meta)
                if train_windows is not None:
                    write_table(train_windows, tmp / TRAIN_WINDOWS_FILE, test_meta)
                if extra is not None:
                    extra(tmp)
                _swap_in(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return target

    def _write_dir(
        self,
        tmp: Path,
        summary: Mapping[str, Any] | None,
        test_windows: pl.DataFrame | None,
        test_meta: Mapping[str, Any] | None,
    ) -> None:
        self.detector.save(tmp)
        write_json(tmp / PIPELINE_FILE, clean_json(self.describe()))
        if self.parser_state is not None:
            write_json(tmp / PARSER_STATE_FILE, self.parser_state)
        if summary is not None:
            write_json(tmp / SUMMARY_FILE, clean_json(dict(summary)))
        if test_windows is not None:
            write_table(test_windows, tmp / TEST_WINDOWS_FILE, test_meta)

    @classmethod
    def load(cls, path: str | Path) -> Pipeline:
        """Load a model directory (one written before pipelines existed loads as well)."""
        path = Path(path)
        detector = load_detector(path)
        desc: dict[str, Any] = {}
        file = path / PIPELINE_FILE
        if file.exists() and not file.is_file():  # e.g. a link to /dev/zero: never read it
            raise InputError(file, "not a regular file")
        if file.exists():
            try:
                desc = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(file, f"not a readable pipeline description ({exc})") from exc
            if not isinstance(desc, dict) or desc.get("format") != "logsieve-pipeline":
                raise InputError(file, "not a logsieve pipeline description")
            _check_desc_types(file, desc)
            if (desc.get("format_version") or 0) > PIPELINE_FORMAT_VERSION:
                raise InputError(file, "written by a newer logsieve; upgrade to read it")
        state = None
        state_file = path / PARSER_STATE_FILE
        if state_file.exists():
            state = read_state_file(state_file)
            want = desc.get("parser_state_sha256")
            if want and state_hash(state) != want:
                raise InputError(state_file, "parser state does not match pipeline.json (edited?)")
        grouping = desc.get("grouping")
        try:
            spec = spec_from_dict(grouping) if grouping else None
        except LogsieveError as exc:
            raise InputError(file, str(exc)) from exc
        templates = desc.get("templates") or dict(detector.templates_)
        return cls(
            detector,
            format=desc.get("log_format") or (state or {}).get("format"),
            masks=desc.get("masks") or (state or {}).get("masks"),
            parser_state=state,
            grouping=spec,
            templates=templates,
            templates_mined=bool(desc.get("templates_mined", True)),
            model_version=int(desc.get("model_version") or 1),
            parent_version=desc.get("parent_version"),
        )


def _seen(train: pl.DataFrame, valid: pl.DataFrame | None) -> pl.DataFrame:
    """Training and validation windows in one table with a ``part`` column."""
    parts = [train.with_columns(pl.lit("train").alias(PART))]
    if valid is not None and valid.height:
        parts.append(valid.with_columns(pl.lit("valid").alias(PART)))
    return pl.concat(parts, how="diagonal_relaxed")


#: the JSON type of every ``pipeline.json`` field (each may also be null or absent)
_DESC_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "format_version": ((int,), "an integer"),
    "log_format": ((str,), "a string"),
    "masks": ((list,), "an array"),
    "grouping": ((dict,), "an object"),
    "templates_mined": ((bool,), "true or false"),
    "parser_state_sha256": ((str,), "a string"),
    "templates": ((dict,), "an object"),
    "model_version": ((int,), "an integer"),
    "parent_version": ((int,), "an integer"),
}


def _check_desc_types(file: Path, desc: Mapping[str, Any]) -> None:
    """One-line error for a ``pipeline.json`` field of the wrong JSON type."""
    for key, (types, label) in _DESC_TYPES.items():
        value = desc.get(key)
        bad_bool = isinstance(value, bool) and bool not in types
        if value is not None and (not isinstance(value, types) or bad_bool):
            raise InputError(file, f"field {key!r} must be {label}, not {json.dumps(value)[:40]}")
    if not all(isinstance(m, dict) for m in desc.get("masks") or []):
        raise InputError(file, "field 'masks' must be an array of objects")
    if not all(isinstance(v, str) for v in (desc.get("templates") or {}).values()):
        raise InputError(file, "field 'templates' must map event ids to template text")


def read_state_file(path: str | Path) -> dict[str, Any]:
    """A parser state file, validated at once (one-line error naming the file otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "parser state not found")
    LogParser.load_state(path)  # validates: version, masks, Drain tree
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _check_replaceable(target: Path) -> None:
    """Refuse to replace anything but a model directory (or nothing)."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise LogsieveError(
            f"{target}: exists and is not a model directory; refusing to replace it"
        )
    if target.is_dir() and any(target.iterdir()) and not (target / "model.json").exists():
        raise LogsieveError(
            f"{target}: a non-empty directory that is not a logsieve model; refusing to replace it"
        )


def _swap_in(tmp: Path, target: Path) -> None:
    """Move the finished directory ``tmp`` to ``target``, replacing an older model there."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".logsieve-old-{os.getpid()}-", dir=target.parent))
    old.rmdir()
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)  # put the previous model back
        raise
    shutil.rmtree(old, ignore_errors=True)
