"""The evaluation study as one command: a TOML grid of cells, run resumably into a run directory.

``logsieve experiment CONFIG.toml -o RUN_DIR`` runs every *cell* of the grid that is
not finished yet; ``logsieve report RUN_DIR`` turns the results into ``report.md`` /
``report.html`` (:mod:`logsieve.evaluation.report`). Every key of the config file is
documented in ``experiments/README.md``; in short::

    [run]                      # name, description, seeds, valid, jobs
    [params.MODEL]             # model parameters for every aspect
    [datasets.NAME]            # a raw log (log, format, labels, ...) or pre-parsed sequences
    [datasets.NAME.params.MODEL]
    [aspects.NAME]             # one question of the study: a grid over the knobs below
    [aspects.NAME.params.MODEL]

A cell is one combination of (dataset, grouping, parsing noise, split method, train
fraction, class ratio, label noise, robust training, model, seed) inside an aspect.

What happens in a cell (nothing is chosen on the test part):

1. the windows of (dataset, grouping, parsing noise) come from the data cache in
   ``RUN_DIR/data/`` (parsed and grouped once, Parquet);
2. :func:`logsieve.grouping.split_windows` cuts train / validation / test
   (chronologically, or at random with the cell's seed); anomalous windows stay in
   train and validation, the detectors themselves train unsupervised and
   semi-supervised models on the normal windows (their contract);
3. optional class-ratio resampling of the training part
   (:mod:`logsieve.evaluation.resample`) and label noise on the training and
   validation labels (:func:`logsieve.evaluation.noise.flip_labels`); test labels
   stay clean;
4. ``create_detector(model, random_state=seed, **params).fit(train, valid=valid,
   templates=...)``: thresholds, top-g and early stopping come from the validation
   part; raw-text models get ``messages`` attached from the events table;
5. the test part is scored once; metrics (:func:`logsieve.evaluation.metrics.evaluate`)
   on the labelled test windows; optional early detection
   (:mod:`logsieve.evaluation.early`).

Store (resumable): a finished cell is one row in ``RUN_DIR/cells/<key>.parquet``,
written atomically after its test scores (``scores/<key>.parquet``) and early-detection
list (``early/<key>.parquet``). The key hashes the cell's resolved settings plus the
checksum of the dataset's input files and the model's defaults for every parameter the
config leaves unset, so identical cells of two aspects are computed once, a rerun skips
every finished cell, and a cell whose model default has changed since is computed again
rather than reused. ``plan.json`` lists the (aspect, key)
pairs of the current config; ``results.parquet`` is their rows (written at the end of
every run, also an interrupted one, and by ``logsieve report``).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import importlib.metadata
import inspect
import itertools
import json
import logging
import math
import multiprocessing
import os
import re
import threading
import time
import tomllib
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.io.atomic import atomic_path, write_json, write_parquet
from logsieve.schema import EVENT_ID, EVENT_IDS, LABEL, TEMPLATE, WINDOW_ID

logger = logging.getLogger(__name__)

__all__ = [
    "AspectSpec",
    "Cell",
    "CellEvent",
    "DatasetSpec",
    "ExperimentConfig",
    "RunSummary",
    "collect_results",
    "load_config",
    "parse_grouping",
    "plan_cells",
    "run_experiment",
]

HDFS_BLOCK_PATTERN = r"blk_-?\d+"
SPLITS = ("chronological", "random")
EARLY_METHODS = ("auto", "positions", "prefix")
SCOPES = ("train", "all")
ORDERS = ("file", "window_id")
#: early detection reads at most this many normal test windows (a seeded sample) to
#: measure the false alarms of alerting line by line
EARLY_NORMAL_MAX = 2000

# --------------------------------------------------------------------------------------
# config: small typed readers that raise one-line errors naming the file and section


class _Where:
    def __init__(self, path: Path, section: str) -> None:
        self.path, self.section = path, section

    def error(self, message: str) -> LogsieveError:
        return LogsieveError(f"{self.path}: [{self.section}] {message}")

    def sub(self, name: str) -> _Where:
        return _Where(self.path, f"{self.section}.{name}" if self.section else name)


def _keys(table: Any, allowed: Iterable[str], where: _Where) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise where.error(f"must be a table, not {type(table).__name__}")
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            raise where.error(f"unknown key {key!r} (allowed: {', '.join(allowed)})")
    return table


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table"}.get(
        type(value), type(value).__name__
    )


def _str(value: Any, key: str, where: _Where) -> str:
    if not isinstance(value, str):
        raise where.error(f"{key} must be a string, not {_type_name(value)} {value!r}")
    return value


def _bool(value: Any, key: str, where: _Where) -> bool:
    if not isinstance(value, bool):
        raise where.error(f"{key} must be true or false, not {_type_name(value)} {value!r}")
    return value


def _int(value: Any, key: str, where: _Where, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(f"{key} must be an integer, not {_type_name(value)} {value!r}")
    if low is not None and value < low:
        raise where.error(f"{key} must be at least {low}, not {value}")
    return value


def _num(value: Any, key: str, where: _Where, low: float, high: float, *, high_open: bool = False, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise where.error(f"{key} must be a number, not {_type_name(value)} {value!r}")
    v = float(value)
    if v < low or v > high or (high_open and v == high) or (low_open and v == low):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise where.error(f"{key} must be in {lo}{low:g}, {high:g}{hi}, not {value!r}")
    return v


def _list(value: Any, key: str, where: _Where, item: Callable[[Any, str, _Where], Any]) -> tuple[Any, ...]:
    """A list of items (a single item is accepted as a one-element list); never empty."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise where.error(f"{key} must not be empty")
    out = tuple(item(v, key, where) for v in items)
    if len(set(map(repr, out))) != len(out):
        raise where.error(f"{key} lists a value twice: {value!r}")
    return out


def _path(value: Any, key: str, where: _Where) -> Path:
    text = _str(value, key, where)
    path = Path(os.path.expandvars(text)).expanduser()
    if not path.is_absolute():
        path = (where.path.parent / path).resolve()
    if not path.exists():
        raise where.error(f"{key}: no such file {text!r} (paths are relative to the config file)")
    return path


def _paths(value: Any, key: str, where: _Where) -> tuple[Path, ...]:
    return _list(value, key, where, _path)


# --------------------------------------------------------------------------------------
# grouping strings


def parse_grouping(text: str) -> Any:
    """``"session"``, ``"count:N[,STEP]"``, ``"time:DUR[,STEP]"`` -> a grouping spec.

    ``"sequence"`` (pre-grouped sequences) returns None. Sessions use the HDFS block
    pattern here; datasets may set their own (``session`` key).
    """
    from logsieve.grouping.windows import CountWindows, Sessions, TimeWindows

    kind, _, arg = str(text).partition(":")
    kind = kind.strip()
    parts = [p.strip() for p in arg.split(",")] if arg else []
    if kind == "sequence" and not parts:
        return None
    if kind == "session" and not parts:
        return Sessions()
    if kind == "count" and 1 <= len(parts) <= 2 and all(p.isdigit() for p in parts):
        return CountWindows(int(parts[0]), int(parts[1]) if len(parts) == 2 else None)
    if kind == "time" and 1 <= len(parts) <= 2 and all(parts):
        return TimeWindows(parts[0], parts[1] if len(parts) == 2 else None)
    raise LogsieveError(
        f"bad grouping {text!r}: expected session, count:N, count:N,STEP, time:DUR or time:DUR,STEP "
        "(e.g. count:20, count:100,20, time:30m, time:1h,10m), or sequence for pre-parsed sequences"
    )


def _grouping_str(value: Any, key: str, where: _Where) -> str:
    text = _str(value, key, where).strip()
    try:
        parse_grouping(text)
    except LogsieveError as exc:
        raise where.error(f"{key}: {exc}") from None
    return text


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "x"


# --------------------------------------------------------------------------------------
# config objects


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: a raw log to parse and group, or pre-parsed sequences.

    ``data_id`` hashes the content of every input file and the settings that shape the
    data (format, patterns, Drain settings, order), never the paths: moving the data
    keeps finished cells valid, changing a byte recomputes them.
    """

    name: str
    kind: Literal["log", "sequences"]
    log: tuple[Path, ...] = ()
    format: str | None = None
    labels: Path | None = None
    session: str = HDFS_BLOCK_PATTERN
    key_pattern: str = HDFS_BLOCK_PATTERN
    parser: tuple[tuple[str, Any], ...] = ()
    sequences: tuple[tuple[Path, int | None], ...] = ()
    templates: Path | None = None
    order: str = "file"
    family: str = ""
    description: str = ""
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    data_id: str = ""

    def inputs(self) -> list[Path]:
        files = list(self.log) + [p for p, _ in self.sequences]
        files += [p for p in (self.labels, self.templates) if p is not None]
        return files

    def settings(self) -> dict[str, Any]:
        """What shapes the data, without paths (part of every cell key)."""
        return {
            "kind": self.kind,
            "format": self.format,
            "session": self.session if self.kind == "log" else None,
            "key_pattern": self.key_pattern if self.kind == "log" and self.labels else None,
            "parser": dict(self.parser),
            "sequence_labels": [lab for _, lab in self.sequences],
            "order": self.order,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "files": [str(p) for p in self.inputs()],
            "data_id": self.data_id,
            **self.settings(),
        }


@dataclass(frozen=True)
class AspectSpec:
    """One aspect of the study: a grid over its knobs (every list is a grid axis)."""

    name: str
    datasets: tuple[str, ...]
    grouping: Mapping[str, tuple[str, ...]]
    models: tuple[str, ...]
    split: tuple[str, ...] = ("chronological",)
    train: tuple[float, ...] = (0.6,)
    valid: float = 0.1
    test: float | None = None
    class_ratio: tuple[float | None, ...] = (None,)
    class_ratio_scope: str = "train"
    label_noise: tuple[float, ...] = (0.0,)
    robust: tuple[str, ...] = ("none",)
    parsing_noise: tuple[str, ...] = ("none",)
    early: bool = False
    early_method: str = "auto"
    early_max_prefix: int = 0
    seeds: tuple[int, ...] = (0,)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    description: str = ""
    #: (model, dataset) pairs of the grid that cannot run (raw-text model on sequences, ...): skipped
    incompatible: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment config (see :func:`load_config`)."""

    path: Path
    name: str
    datasets: Mapping[str, DatasetSpec]
    aspects: Mapping[str, AspectSpec]
    seeds: tuple[int, ...] = (0,)
    valid: float = 0.1
    jobs: int = 1
    description: str = ""
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    text: str = ""


_RUN_KEYS = ("name", "description", "seeds", "valid", "jobs")
_DATASET_KEYS = (
    "log",
    "format",
    "labels",
    "session",
    "key_pattern",
    "parser",
    "sequences",
    "templates",
    "order",
    "family",
    "description",
    "params",
)
_ASPECT_KEYS = (
    "description",
    "datasets",
    "grouping",
    "split",
    "train",
    "valid",
    "test",
    "class_ratio",
    "class_ratio_scope",
    "label_noise",
    "robust",
    "parsing_noise",
    "early",
    "early_method",
    "early_max_prefix",
    "models",
    "seeds",
    "params",
)
_PARSER_KEYS = ("depth", "sim_th", "max_children")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _hash_json(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _regex(value: Any, key: str, where: _Where) -> str:
    text = _str(value, key, where)
    try:
        re.compile(text)
    except re.error as exc:
        raise where.error(f"{key}: bad regular expression {text!r} ({exc})") from None
    return text


def _model_params(value: Any, where: _Where, known: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{model: {param: value}}``, checked against each detector's parameters."""
    if not isinstance(value, dict):
        raise where.error(f"must be a table of [MODEL] tables, not {_type_name(value)}")
    out: dict[str, dict[str, Any]] = {}
    for model, params in value.items():
        sub = where.sub(model)
        if model not in known:
            raise where.error(f"unknown model {model!r}; available: {', '.join(known) or 'none'}")
        if not isinstance(params, dict):
            raise sub.error(f"must be a table of parameters, not {_type_name(params)}")
        names = _param_names(model, sub)
        for key, v in params.items():
            if key == "random_state":
                raise sub.error("random_state is set from the seeds; remove it")
            if key not in names:
                raise sub.error(f"unknown parameter {key!r} for {model} (valid: {', '.join(names)})")
            if isinstance(v, dict):
                raise sub.error(f"{key} must be a number, string, boolean or list, not a table")
        out[model] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()}
    return out


def _param_names(model: str, where: _Where) -> list[str]:
    from logsieve.detectors.registry import get_detector_class

    try:
        return list(get_detector_class(model)._get_param_names())
    except LogsieveError as exc:
        raise where.error(str(exc)) from None


def _known_models() -> list[str]:
    from logsieve.detectors.registry import list_detectors

    return list_detectors()


def _model_name(value: Any, key: str, where: _Where) -> str:
    name = _str(value, key, where).lower()
    known = _known_models()
    if name not in known:
        raise where.error(f"unknown model {name!r}; available: {', '.join(known) or 'none'}")
    return name


def _guess_family(name: str) -> str:
    low = name.lower()
    for fam in ("hdfs", "bgl", "thunderbird", "spirit", "hadoop", "openstack"):
        if low.startswith(fam):
            return fam
    return low


def _load_dataset(name: str, table: Any, where: _Where, models: Sequence[str]) -> DatasetSpec:
    table = _keys(table, _DATASET_KEYS, where)
    has_log, has_seq = "log" in table, "sequences" in table
    if has_log == has_seq:
        raise where.error("give exactly one of log (a raw log to parse) or sequences (pre-parsed sequences)")
    common: dict[str, Any] = {
        "name": name,
        "family": _str(table.get("family", _guess_family(name)), "family", where).lower(),
        "description": _str(table.get("description", ""), "description", where),
        "params": _model_params(table.get("params", {}), where.sub("params"), models),
    }
    if has_log:
        for key in ("templates", "order"):
            if key in table:
                raise where.error(f"{key} applies to sequences datasets only")
        parser = _keys(table.get("parser", {}), _PARSER_KEYS, where.sub("parser"))
        pw = where.sub("parser")
        checked = {}
        for key, v in parser.items():
            checked[key] = _num(v, key, pw, 0.0, 1.0) if key == "sim_th" else _int(v, key, pw, low=1)
        spec = DatasetSpec(
            kind="log",
            log=_paths(table["log"], "log", where),
            format=_str(table.get("format", "hdfs"), "format", where),
            labels=_path(table["labels"], "labels", where) if "labels" in table else None,
            session=_regex(table.get("session", HDFS_BLOCK_PATTERN), "session", where),
            key_pattern=_regex(table.get("key_pattern", HDFS_BLOCK_PATTERN), "key_pattern", where),
            parser=tuple(sorted(checked.items())),
            **common,
        )
        try:
            from logsieve.parsing.parser import LogParser

            LogParser(spec.format, **dict(spec.parser))
        except LogsieveError as exc:
            raise where.error(f"format: {exc}") from None
    else:
        for key in ("format", "labels", "session", "key_pattern", "parser"):
            if key in table:
                raise where.error(f"{key} applies to raw-log datasets only")
        seq = table["sequences"]
        files: list[tuple[Path, int | None]] = []
        if isinstance(seq, dict):
            sw = where.sub("sequences")
            _keys(seq, ("normal", "abnormal", "unlabelled"), sw)
            for key, lab in (("normal", 0), ("abnormal", 1), ("unlabelled", None)):
                if key in seq:
                    files += [(p, lab) for p in _paths(seq[key], key, sw)]
        else:
            files = [(p, None) for p in _paths(seq, "sequences", where)]
        order = _str(table.get("order", "file"), "order", where)
        if order not in ORDERS:
            raise where.error(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
        spec = DatasetSpec(
            kind="sequences",
            sequences=tuple(files),
            templates=_path(table["templates"], "templates", where) if "templates" in table else None,
            order=order,
            **common,
        )
    digest = _hash_json({"files": [_file_sha256(p) for p in spec.inputs()], **spec.settings()})
    return replace(spec, data_id=digest[:16])


def _class_ratio(value: Any, key: str, where: _Where) -> float | None:
    if isinstance(value, str) and value == "natural":
        return None
    return _num(value, key, where, 0.0, 1.0, high_open=True)


def _noise_str(value: Any, key: str, where: _Where) -> str:
    from logsieve.evaluation.noise import ParsingNoise

    try:
        return str(ParsingNoise.parse(_str(value, key, where)))
    except LogsieveError as exc:
        raise where.error(f"{key}: {exc}") from None


def _robust(value: Any, key: str, where: _Where) -> str:
    """``false`` -> "none", ``true`` -> "confident" (confident learning), or a method name of the robust option."""
    if isinstance(value, bool):
        return "confident" if value else "none"
    text = _str(value, key, where)
    from logsieve.detectors.neural.robust import (
        ROBUST_METHODS,  # imports torch: only when a method is named
    )

    if text not in ("none", *ROBUST_METHODS):
        raise where.error(f"{key} must be false, true or one of {', '.join(ROBUST_METHODS)}, not {text!r}")
    return text


def _load_aspect(
    name: str, table: Any, where: _Where, datasets: Mapping[str, DatasetSpec], run: dict[str, Any], models_known: Sequence[str]
) -> AspectSpec:
    from logsieve.detectors.registry import detector_info

    table = _keys(table, _ASPECT_KEYS, where)
    for key in ("datasets", "models"):
        if key not in table:
            raise where.error(f"missing key {key!r}")
    names = _list(table["datasets"], "datasets", where, _str)
    for ds in names:
        if ds not in datasets:
            raise where.error(f"unknown dataset {ds!r}; defined: {', '.join(datasets) or 'none'}")
    models = _list(table["models"], "models", where, _model_name)
    grouping_raw = table.get("grouping", ["session"])
    grouping: dict[str, tuple[str, ...]] = {}
    if isinstance(grouping_raw, dict):
        gw = where.sub("grouping")
        _keys(grouping_raw, names, gw)
        for ds in names:
            if datasets[ds].kind == "sequences":
                values = _list(grouping_raw.get(ds, "sequence"), ds, gw, _grouping_str)
            elif ds not in grouping_raw:
                raise gw.error(f"no grouping for dataset {ds!r}")
            else:
                values = _list(grouping_raw[ds], ds, gw, _grouping_str)
            grouping[ds] = values
    else:
        values = _list(grouping_raw, "grouping", where, _grouping_str)
        for ds in names:
            grouping[ds] = ("sequence",) if datasets[ds].kind == "sequences" else values
    for ds, values in grouping.items():
        kind = datasets[ds].kind
        for g in values:
            if (g == "sequence") != (kind == "sequences"):
                what = "pre-parsed sequences only take grouping 'sequence'" if kind == "sequences" else (
                    "'sequence' grouping is for pre-parsed sequences; use session, count:N or time:DUR"
                )
                raise where.error(f"dataset {ds!r}: {what}")
    split = _list(table.get("split", ["chronological"]), "split", where, _str)
    for s in split:
        if s not in SPLITS:
            raise where.error(f"split must be chronological or random, not {s!r}")
    train = _list(table.get("train", [0.6]), "train", where, lambda v, k, w: _num(v, k, w, 0.0, 1.0, low_open=True, high_open=True))
    valid = _num(table.get("valid", run["valid"]), "valid", where, 0.0, 1.0, high_open=True)
    test = table.get("test")
    if test is not None:
        test = _num(test, "test", where, 0.0, 1.0, low_open=True)
    for t in train:
        total = t + valid + (test or 0.0)
        if total > 1 + 1e-9 or (test is None and t + valid >= 1 - 1e-9):
            raise where.error(f"train {t:g} + valid {valid:g}{f' + test {test:g}' if test else ''} leaves no test windows")
    class_ratio = _list(table.get("class_ratio", "natural"), "class_ratio", where, _class_ratio)
    scope = _str(table.get("class_ratio_scope", "train"), "class_ratio_scope", where)
    if scope not in SCOPES:
        raise where.error(f"class_ratio_scope must be train or all, not {scope!r}")
    label_noise = _list(table.get("label_noise", [0.0]), "label_noise", where, lambda v, k, w: _num(v, k, w, 0.0, 1.0, high_open=True))
    if any(r > 0 for r in label_noise):
        from logsieve.evaluation.noise import label_noise_available

        if not label_noise_available():
            raise where.error("label_noise needs logsieve.detectors.robust.flip_labels, which is not available yet")
    robust = _list(table.get("robust", [False]), "robust", where, _robust)
    parsing_noise = _list(table.get("parsing_noise", ["none"]), "parsing_noise", where, _noise_str)
    for noise in parsing_noise:
        if noise.startswith("tokens"):
            seq = [ds for ds in names if datasets[ds].kind == "sequences"]
            if seq:
                raise where.error(f"parsing_noise {noise!r} re-parses raw logs; dataset {seq[0]!r} has none")
    early = _bool(table.get("early", False), "early", where)
    early_method = _str(table.get("early_method", "auto"), "early_method", where)
    if early_method not in EARLY_METHODS:
        raise where.error(f"early_method must be one of {', '.join(EARLY_METHODS)}, not {early_method!r}")
    early_max_prefix = _int(table.get("early_max_prefix", 0), "early_max_prefix", where, low=0)
    seeds = _list(table.get("seeds", list(run["seeds"])), "seeds", where, lambda v, k, w: _int(v, k, w, low=0))
    params = _model_params(table.get("params", {}), where.sub("params"), models_known)
    incompatible: list[tuple[str, str]] = []
    for model in models:
        info = detector_info(model)
        why = ""
        for ds in names:
            spec = datasets[ds]
            if info.input_kind == "raw" and spec.kind == "sequences":
                why = f"model {model!r} reads raw log text; dataset {ds!r} is pre-parsed sequences"
            elif info.input_kind == "semantic" and spec.kind == "sequences" and spec.templates is None:
                why = f"model {model!r} needs templates; give dataset {ds!r} a templates file"
            else:
                continue
            incompatible.append((model, ds))
        if sum(m == model for m, _ in incompatible) == len(names):
            raise where.error(why)
        if any(r != "none" for r in robust) and "robust" in params.get(model, {}):
            raise where.error(f"robust is an aspect knob here; remove it from [{where.section}.params.{model}]")
    return AspectSpec(
        name=name,
        description=_str(table.get("description", ""), "description", where),
        datasets=names,
        grouping=grouping,
        models=models,
        split=split,
        train=train,
        valid=valid,
        test=test,
        class_ratio=class_ratio,
        class_ratio_scope=scope,
        label_noise=label_noise,
        robust=robust,
        parsing_noise=parsing_noise,
        early=early,
        early_method=early_method,
        early_max_prefix=early_max_prefix,
        seeds=seeds,
        params=params,
        incompatible=tuple(incompatible),
    )


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment config (TOML).

    Unknown keys, wrong types, unknown datasets or models, bad parameter names and
    missing files raise :class:`LogsieveError` with a one-line message naming the
    file, the section and the key. Paths are relative to the config file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LogsieveError(f"{path}: no such config file") from None
    except OSError as exc:
        raise LogsieveError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LogsieveError(f"{path}: invalid TOML ({exc})") from None
    path = path.resolve()
    top = _Where(path, "")
    _keys(doc, ("run", "params", "datasets", "aspects"), _Where(path, "top level"))
    rw = top.sub("run")
    run_t = _keys(doc.get("run", {}), _RUN_KEYS, rw)
    run = {
        "name": _str(run_t.get("name", path.stem), "name", rw),
        "description": _str(run_t.get("description", ""), "description", rw),
        "seeds": _list(run_t.get("seeds", [0]), "seeds", rw, lambda v, k, w: _int(v, k, w, low=0)),
        "valid": _num(run_t.get("valid", 0.1), "valid", rw, 0.0, 1.0, high_open=True),
        "jobs": _int(run_t.get("jobs", 1), "jobs", rw, low=1),
    }
    models_known = _known_models()
    params = _model_params(doc.get("params", {}), top.sub("params"), models_known)
    ds_table = doc.get("datasets", {})
    if not isinstance(ds_table, dict) or not ds_table:
        raise top.sub("datasets").error("define at least one dataset, e.g. [datasets.hdfs]")
    datasets = {name: _load_dataset(name, t, top.sub(f"datasets.{name}"), models_known) for name, t in ds_table.items()}
    asp_table = doc.get("aspects", {})
    if not isinstance(asp_table, dict) or not asp_table:
        raise top.sub("aspects").error("define at least one aspect, e.g. [aspects.split]")
    aspects = {
        name: _load_aspect(name, t, top.sub(f"aspects.{name}"), datasets, run, models_known)
        for name, t in asp_table.items()
    }
    return ExperimentConfig(
        path=path,
        name=run["name"],
        description=run["description"],
        seeds=run["seeds"],
        valid=run["valid"],
        jobs=run["jobs"],
        datasets=datasets,
        aspects=aspects,
        params=params,
        text=text,
    )


# --------------------------------------------------------------------------------------
# cells


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass(frozen=True)
class Cell:
    """One computation: everything that determines its result (the key hashes it)."""

    dataset: str
    data_id: str
    grouping: str
    parsing_noise: str
    split: str
    train: float
    valid: float
    test: float | None
    class_ratio: float | None
    class_ratio_scope: str
    label_noise: float
    robust: str
    model: str
    params: tuple[tuple[str, Any], ...]
    seed: int
    early: bool = False
    early_method: str = "auto"
    early_max_prefix: int = 0
    #: digest of the model's defaults for the parameters not in ``params`` (see _defaults_digest)
    defaults: str = ""

    def settings(self) -> dict[str, Any]:
        """JSON-able resolved settings (what the key hashes, plus nothing else)."""
        out = {k: _jsonable(v) for k, v in asdict(self).items() if k != "params"}
        out["params"] = {k: _jsonable(v) for k, v in self.params}
        return out

    @property
    def key(self) -> str:
        return _hash_json(self.settings())[:20]

    @property
    def data_key(self) -> tuple[str, str, str, int | None]:
        """Which prepared windows the cell reads (the noise realisation depends on the seed)."""
        return (self.dataset, self.grouping, self.parsing_noise, None if self.parsing_noise == "none" else self.seed)

    def label(self) -> str:
        bits = [self.model, self.dataset, self.grouping, self.split, f"train={self.train:g}"]
        if self.class_ratio is not None:
            bits.append(f"ratio={self.class_ratio:g}")
        if self.label_noise:
            bits.append(f"label_noise={self.label_noise:g}")
        if self.robust != "none":
            bits.append(f"robust={self.robust}")
        if self.parsing_noise != "none":
            bits.append(f"parsing={self.parsing_noise}")
        bits.append(f"seed={self.seed}")
        return " ".join(bits)


def _defaults_digest(model: str, configured: Iterable[str]) -> str:
    """Digest of ``model``'s constructor defaults for the parameters not in ``configured``.

    Part of every cell key: a cell finished before such a default changed (a new default
    number of folds, say) is computed again instead of being reused. ``random_state`` is
    left out: the cell's seed sets it.
    """
    from logsieve.detectors.registry import get_detector_class

    skip = {"self", "random_state", *configured}
    signature = inspect.signature(get_detector_class(model).__init__)
    defaults = {name: _jsonable(p.default) for name, p in signature.parameters.items() if name not in skip}
    return _hash_json(defaults)[:16]


def _resolved_params(config: ExperimentConfig, aspect: AspectSpec, dataset: DatasetSpec, model: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in (config.params, dataset.params, aspect.params):
        out.update(layer.get(model, {}))
    return out


def plan_cells(config: ExperimentConfig, only: Sequence[str] | None = None) -> list[tuple[str, Cell]]:
    """Every (aspect, cell) of the grid, in a data-friendly order.

    ``only`` restricts to the named aspects. Cells asking robust training of a model
    without a ``robust`` parameter are left out (logged); for the others the method
    becomes the model's ``robust`` parameter.
    """
    from logsieve.detectors.registry import get_detector_class

    if only:
        unknown = [a for a in only if a not in config.aspects]
        if unknown:
            raise LogsieveError(f"unknown aspect {unknown[0]!r}; the config defines: {', '.join(config.aspects)}")
    out: list[tuple[str, Cell]] = []
    skipped = 0
    for name, asp in config.aspects.items():
        if only and name not in only:
            continue
        for ds_name in asp.datasets:
            ds = config.datasets[ds_name]
            for grouping, noise, split, train, ratio, lnoise, robust, model, seed in itertools.product(
                asp.grouping[ds_name],
                asp.parsing_noise,
                asp.split,
                asp.train,
                asp.class_ratio,
                asp.label_noise,
                asp.robust,
                asp.models,
                asp.seeds,
            ):
                if (model, ds_name) in asp.incompatible:
                    skipped += 1
                    continue
                params = _resolved_params(config, asp, ds, model)
                has_robust = "robust" in get_detector_class(model)._get_param_names()
                if robust != "none":
                    if not has_robust:
                        skipped += 1
                        continue
                    params["robust"] = robust
                out.append(
                    (
                        name,
                        Cell(
                            dataset=ds_name,
                            data_id=ds.data_id,
                            grouping=grouping,
                            parsing_noise=noise,
                            split=split,
                            train=train,
                            valid=asp.valid,
                            test=asp.test,
                            class_ratio=ratio,
                            class_ratio_scope=asp.class_ratio_scope if ratio is not None else "train",
                            label_noise=lnoise,
                            robust=robust,
                            model=model,
                            params=tuple(sorted(params.items())),
                            seed=seed,
                            early=asp.early,
                            early_method=asp.early_method if asp.early else "auto",
                            early_max_prefix=asp.early_max_prefix if asp.early else 0,
                            defaults=_defaults_digest(model, params),
                        ),
                    )
                )
    if skipped:
        logger.info(
            "%d cells left out: robust training asked of a model without a robust option, or a model "
            "that cannot read the dataset (raw-text model on sequences, semantic model without templates)",
            skipped,
        )
    return out


# --------------------------------------------------------------------------------------
# data preparation (cached per dataset / grouping / parsing noise)


@dataclass
class Prepared:
    """The windows a cell reads, their templates and provenance."""

    windows: pl.DataFrame
    templates: dict[str, str]
    events_path: Path | None
    windows_checksum: str
    info: dict[str, Any]


def windows_checksum(windows: pl.DataFrame) -> str:
    """sha256 of the windows' ids, event ids and labels (order-sensitive), first 16 hex digits."""
    if windows.height == 0:
        return hashlib.sha256(b"").hexdigest()[:16]
    text = windows.select(
        pl.concat_str(
            [
                pl.col(WINDOW_ID).cast(pl.String).fill_null(""),
                pl.col(EVENT_IDS).list.join(" "),
                pl.col(LABEL).cast(pl.String).fill_null("?"),
            ],
            separator="\t",
        ).str.join("\n")
    ).item()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _templates_from_events(events: pl.DataFrame) -> dict[str, str]:
    t = events.select(EVENT_ID, TEMPLATE).unique(EVENT_ID, keep="first", maintain_order=True)
    return dict(zip(t.get_column(EVENT_ID).to_list(), t.get_column(TEMPLATE).to_list(), strict=True))


def _seed_for(seed: int, what: str) -> int:
    """A seed for one random step of a cell, derived from the cell seed (independent streams)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{what}".encode()).digest()[:4], "little")


class DataStore:
    """Parses, groups and perturbs each dataset once; Parquet cache under ``RUN_DIR/data``.

    Files live in ``data/<dataset>-<data_id>/`` so changed inputs never reuse old data.
    A small in-memory LRU keeps the last few windows tables.
    """

    def __init__(self, config: ExperimentConfig, run_dir: Path, memory: int = 4) -> None:
        self.config = config
        self.root = Path(run_dir) / "data"
        self._lru: OrderedDict[tuple[Any, ...], Prepared] = OrderedDict()
        self._memory = memory

    def _dir(self, ds: DatasetSpec) -> Path:
        return self.root / f"{_slug(ds.name)}-{ds.data_id}"

    def _parser(self, ds: DatasetSpec) -> Any:
        from logsieve.parsing.parser import LogParser

        return LogParser(ds.format, **dict(ds.parser))

    def events_path(self, ds: DatasetSpec, noise: str = "none", seed: int | None = None) -> Path:
        """Parquet events table of a raw-log dataset (re-parsed with token noise when asked)."""
        from logsieve.evaluation.noise import ParsingNoise, reparse_with_token_noise

        spec = ParsingNoise.parse(noise)
        clean = self._dir(ds) / "events.parquet"
        if not clean.exists():
            t = time.perf_counter()
            events, _ = self._parser(ds).parse_files(list(ds.log))
            assert events is not None
            write_parquet(events, clean)
            logger.info("%s: parsed %d lines in %.1f s", ds.name, events.height, time.perf_counter() - t)
        if spec.level != "events":
            return clean
        noisy = self._dir(ds) / f"events__{_slug(noise)}__s{seed}.parquet"
        if not noisy.exists():
            events = pl.read_parquet(clean)
            protect = ds.session if ds.session else None
            out, info = reparse_with_token_noise(
                list(ds.log), events, lambda: self._parser(ds), spec.rate, _seed_for(seed or 0, "tokens"),
                workdir=self._dir(ds), protect=protect,
            )
            write_parquet(out, noisy)
            write_json(noisy.with_suffix(".json"), info)
        return noisy

    def _group(self, ds: DatasetSpec, events_path: Path, grouping: str) -> pl.DataFrame:
        from logsieve.grouping.labels import read_labels
        from logsieve.grouping.windows import Sessions, group

        spec = parse_grouping(grouping)
        if isinstance(spec, Sessions):
            spec = Sessions(pattern=ds.session)
        labels = read_labels(ds.labels) if ds.labels is not None else None
        result = group(events_path, spec, labels=labels, key_pattern=ds.key_pattern)
        if result.windows.height == 0:
            raise LogsieveError(f"dataset {ds.name!r}: grouping {grouping!r} gives no windows")
        return result.windows

    def _sequences(self, ds: DatasetSpec) -> tuple[pl.DataFrame, dict[str, str]]:
        from logsieve.grouping.sequences import concat_windows, read_sequences, read_templates

        windows = concat_windows([read_sequences(p, label=lab) for p, lab in ds.sequences])
        if ds.order == "window_id":
            windows = windows.sort(WINDOW_ID, maintain_order=True)
        templates: dict[str, str] = {}
        if ds.templates is not None:
            t = read_templates(ds.templates)
            templates = dict(zip(t.get_column("event_id").to_list(), t.get_column(TEMPLATE).to_list(), strict=True))
        return windows, templates

    def get(self, dataset: str, grouping: str, noise: str = "none", seed: int | None = None) -> Prepared:
        """The windows (after parsing noise) for a cell's data key; built once, then cached."""
        from logsieve.evaluation.noise import ParsingNoise, noisy_templates

        key = (dataset, grouping, noise, seed)
        if key in self._lru:
            self._lru.move_to_end(key)
            return self._lru[key]
        ds = self.config.datasets[dataset]
        spec = ParsingNoise.parse(noise)
        base = self._dir(ds) / f"windows__{_slug(grouping)}"
        name = base.name + ("" if spec.kind == "none" else f"__{_slug(noise)}__s{seed}")
        path = base.with_name(name + ".parquet")
        meta_path = path.with_suffix(".json")
        events_path: Path | None = None
        if ds.kind == "log":
            events_path = self.events_path(ds, noise, seed)
        if path.exists() and meta_path.exists():
            windows = pl.read_parquet(path)
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            templates = meta.pop("templates")
        else:
            t = time.perf_counter()
            info: dict[str, Any] = {}
            if spec.level == "windows":  # merge / split: from the clean windows
                clean = self.get(dataset, grouping)
                windows, info = spec.apply_to_windows(clean.windows, _seed_for(seed or 0, spec.kind))
                templates = noisy_templates(clean.templates, info)
            elif ds.kind == "log":
                assert events_path is not None
                windows = self._group(ds, events_path, grouping)
                templates = _templates_from_events(pl.read_parquet(events_path, columns=[EVENT_ID, TEMPLATE]))
                if spec.level == "events":
                    info = json.loads(events_path.with_suffix(".json").read_text(encoding="utf-8"))
            else:
                windows, templates = self._sequences(ds)
            lab = windows.get_column(LABEL)
            meta = {
                "dataset": ds.describe(),
                "grouping": grouping,
                "parsing_noise": noise,
                "seed": seed,
                "windows": windows.height,
                "anomalous": int((lab == 1).sum()),
                "unlabelled": int(lab.null_count()),
                "windows_checksum": windows_checksum(windows),
                "noise_info": info,
                "seconds": time.perf_counter() - t,
            }
            write_parquet(windows, path)
            write_json(meta_path, {**meta, "templates": templates})
            logger.info(
                "%s %s %s: %d windows (%d anomalous) in %.1f s",
                dataset, grouping, noise, windows.height, meta["anomalous"], meta["seconds"],
            )
        prepared = Prepared(
            windows=windows,
            templates=templates,
            events_path=events_path,
            windows_checksum=meta["windows_checksum"],
            info={k: meta[k] for k in ("windows", "anomalous", "unlabelled", "noise_info")},
        )
        self._lru[key] = prepared
        while len(self._lru) > self._memory:
            self._lru.popitem(last=False)
        return prepared


# --------------------------------------------------------------------------------------
# one cell


def versions() -> dict[str, str | None]:
    """Versions of logsieve and the libraries that shape results."""
    from logsieve._version import __version__

    out: dict[str, str | None] = {"logsieve": __version__}
    for dist, key in (("torch", "torch"), ("numpy", "numpy"), ("polars", "polars"), ("scikit-learn", "sklearn")):
        try:
            out[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[key] = None
    return out


def _finite_scores(scores: np.ndarray) -> np.ndarray:
    """Ranking metrics need finite scores: +inf -> max + 1, -inf and nan -> min - 1."""
    s = np.asarray(scores, dtype=np.float64)
    if np.isfinite(s).all():
        return s
    finite = s[np.isfinite(s)]
    hi = float(finite.max()) + 1.0 if finite.size else 1.0
    lo = float(finite.min()) - 1.0 if finite.size else 0.0
    return np.where(np.isposinf(s), hi, np.where(np.isfinite(s), s, lo))


def _part_counts(windows: pl.DataFrame) -> tuple[int, int]:
    return windows.height, int((windows.get_column(LABEL) == 1).sum())


def run_cell(cell: Cell, data: Prepared, run_dir: Path) -> dict[str, Any]:
    """Compute one cell; writes its scores / early files and returns its row (not yet stored)."""
    from logsieve.detectors.registry import create_detector, detector_info
    from logsieve.evaluation.early import early_summary, lines_to_first_alert, resolve_method
    from logsieve.evaluation.metrics import evaluate
    from logsieve.evaluation.noise import flip_labels
    from logsieve.evaluation.resample import resample_anomalies
    from logsieve.grouping.split import split_windows

    row: dict[str, Any] = {}
    split = split_windows(
        data.windows,
        train=cell.train,
        valid=cell.valid,
        test=cell.test,
        method=cell.split,  # type: ignore[arg-type]
        seed=_seed_for(cell.seed, "split"),
        train_normal_only=False,
    )
    summary = split.summary()
    train, valid, test = split.train, split.valid, split.test
    row["n_train_natural"], row["n_train_anomalous_natural"] = _part_counts(train)
    row["leakage_count"] = int(summary["leakage"]["count"])
    row["leakage_fraction"] = float(summary["leakage"]["fraction"])
    if cell.class_ratio is not None:
        train = resample_anomalies(train, cell.class_ratio, _seed_for(cell.seed, "ratio-train")).windows
        if cell.class_ratio_scope == "all":
            valid = resample_anomalies(valid, cell.class_ratio, _seed_for(cell.seed, "ratio-valid")).windows
            test = resample_anomalies(test, cell.class_ratio, _seed_for(cell.seed, "ratio-test")).windows
    flipped = 0
    if cell.label_noise > 0:
        train, n1 = flip_labels(train, cell.label_noise, _seed_for(cell.seed, "label-noise-train"))
        valid, n2 = flip_labels(valid, cell.label_noise, _seed_for(cell.seed, "label-noise-valid"))
        flipped = n1 + n2
    row["labels_flipped"] = flipped
    if detector_info(cell.model).input_kind == "raw":
        from logsieve.grouping.text import attach_messages

        if data.events_path is None:
            raise LogsieveError(f"{cell.model} reads raw text; dataset {cell.dataset} has no events table")
        train, valid, test = (attach_messages(w, data.events_path) for w in (train, valid, test))
    for part, frame in (("train", train), ("valid", valid), ("test", test)):
        row[f"n_{part}"], row[f"n_{part}_anomalous"] = _part_counts(frame)
    row["n_test_unlabelled"] = int(test.get_column(LABEL).null_count())
    if test.height == 0:
        raise LogsieveError("the test part is empty")

    detector = create_detector(cell.model, **dict(cell.params), random_state=cell.seed)
    t0 = time.perf_counter()
    detector.fit(train, valid=valid if valid.height else None, templates=data.templates or None)
    row["train_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = np.asarray(detector.decision_function(test), dtype=np.float64)
    row["detect_seconds"] = time.perf_counter() - t0
    threshold = float(detector.threshold_)
    pred = (scores > threshold).astype(np.int8)
    row["threshold"] = threshold
    row["threshold_source"] = str(getattr(detector, "threshold_source_", ""))
    row["n_train_used"] = int(getattr(detector, "n_train_windows_", -1))

    labels = test.get_column(LABEL)
    known = labels.is_not_null().to_numpy()
    y = labels.fill_null(0).to_numpy().astype(np.int8)
    metrics = evaluate(y[known], pred[known], _finite_scores(scores)[known])
    for k in ("precision", "recall", "specificity", "f1", "mcc", "roc_auc", "pr_auc"):
        row[k] = float(metrics.get(k, math.nan))
    for k in ("tp", "fp", "tn", "fn"):
        row[k] = int(metrics[k])
    ids = test.get_column(WINDOW_ID).cast(pl.String) if WINDOW_ID in test.columns else pl.Series([str(i) for i in range(test.height)])
    scores_df = pl.DataFrame(
        {WINDOW_ID: ids, LABEL: labels.cast(pl.Int8), "score": scores, "pred": pred},
    )
    write_parquet(scores_df, run_dir / "scores" / f"{cell.key}.parquet")

    if cell.early:
        t0 = time.perf_counter()
        hit = test.filter(pl.Series((y == 1) & known & (pred == 1)))
        normal = test.filter(pl.Series((y == 0) & known))
        if normal.height > EARLY_NORMAL_MAX:
            rows = np.sort(np.random.default_rng(_seed_for(cell.seed, "early-normal")).choice(normal.height, EARLY_NORMAL_MAX, replace=False))
            normal = normal[pl.Series(rows)]
        method = resolve_method(detector, hit if hit.height else normal, cell.early_method)  # type: ignore[arg-type]
        max_prefix = cell.early_max_prefix or None
        early = lines_to_first_alert(detector, hit, method=method, max_prefix=max_prefix)  # type: ignore[arg-type]
        early_normal = lines_to_first_alert(detector, normal, method=method, max_prefix=max_prefix)  # type: ignore[arg-type]
        row["early_seconds"] = time.perf_counter() - t0
        both = pl.concat(
            [
                early.with_columns(pl.lit(1, dtype=pl.Int8).alias(LABEL)),
                early_normal.with_columns(pl.lit(0, dtype=pl.Int8).alias(LABEL)),
            ]
        )
        write_parquet(both, run_dir / "early" / f"{cell.key}.parquet")
        for k, v in early_summary(early).items():
            row[f"early_{k}"] = v
        row["early_method"] = method
        row["early_normal_windows"] = early_normal.height
        alarms = int(early_normal.get_column("lines_seen").is_not_null().sum())
        row["early_false_alarm_rate"] = alarms / early_normal.height if early_normal.height else math.nan
    return row


def _cell_row(cell: Cell, aspect: str, data: Prepared | None, config: ExperimentConfig) -> dict[str, Any]:
    ds = config.datasets[cell.dataset]
    return {
        "key": cell.key,
        "aspect": aspect,
        "dataset": cell.dataset,
        "family": ds.family,
        "grouping": cell.grouping,
        "parsing_noise": cell.parsing_noise,
        "split": cell.split,
        "train_fraction": cell.train,
        "valid_fraction": cell.valid,
        "test_fraction": cell.test,
        "class_ratio": cell.class_ratio,
        "class_ratio_scope": cell.class_ratio_scope,
        "label_noise": cell.label_noise,
        "robust": cell.robust,
        "model": cell.model,
        "seed": cell.seed,
        "early": cell.early,
        "params_json": json.dumps({k: _jsonable(v) for k, v in cell.params}, sort_keys=True),
        "config_json": json.dumps({**cell.settings(), "dataset_spec": ds.describe()}, sort_keys=True, default=str),
        "data_checksum": ds.data_id,
        "windows_checksum": data.windows_checksum if data else None,
        "noise_json": json.dumps(data.info.get("noise_info", {}), sort_keys=True, default=str) if data else None,
    }


def _store_row(run_dir: Path, row: dict[str, Any]) -> None:
    frame = pl.DataFrame([row], infer_schema_length=None, strict=False)
    write_parquet(frame, run_dir / "cells" / f"{row['key']}.parquet")


def _execute(cell: Cell, aspect: str, store: DataStore, run_dir: Path, vers: dict[str, Any]) -> dict[str, Any]:
    """Run one cell, never raising for an ordinary error (it becomes an ``error`` row)."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    data: Prepared | None = None
    try:
        data = store.get(*cell.data_key)
        extra = run_cell(cell, data, run_dir)
        status, error = "ok", None
    except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the study
        logger.warning("cell %s failed: %s", cell.label(), exc)
        logger.debug("traceback of %s:\n%s", cell.key, traceback.format_exc())
        extra = {}
        status, error = "error", f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    row = _cell_row(cell, aspect, data, store.config)
    row.update(extra)
    row.update(
        status=status,
        error=error,
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions_json=json.dumps(vers, sort_keys=True),
        **{f"version_{k}": v for k, v in vers.items()},
    )
    _store_row(run_dir, row)
    return row


# --------------------------------------------------------------------------------------
# worker processes (jobs > 1)

_WORKER: dict[str, Any] = {}


def _exit_with_parent() -> None:
    """In a worker process: exit as soon as the parent process ends.

    A parent killed by a signal runs no clean-up, and an idle pool worker would then wait
    on its task queue forever. A daemon thread waits on the parent's sentinel instead.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="logsieve-parent-watch", daemon=True).start()


def _worker_init(config_path: str, run_dir: str) -> None:
    _exit_with_parent()
    try:  # one torch thread per worker: the workers already use the cores
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is optional
        pass
    config = load_config(config_path)
    _WORKER.update(config=config, store=DataStore(config, Path(run_dir)), run_dir=Path(run_dir), versions=versions())


def _worker_run(aspect: str, cell_settings: dict[str, Any]) -> dict[str, Any]:
    settings = dict(cell_settings)
    settings["params"] = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in settings["params"].items()))
    cell = Cell(**settings)
    row = _execute(cell, aspect, _WORKER["store"], _WORKER["run_dir"], _WORKER["versions"])
    return {k: row[k] for k in ("key", "status", "error", "seconds")}


# --------------------------------------------------------------------------------------
# the run


@dataclass(frozen=True)
class CellEvent:
    """Progress report: sent when a cell starts (``status="running"``) and when it ends."""

    done: int
    total: int
    aspect: str
    label: str
    status: str  # running | ok | error
    seconds: float = 0.0


@dataclass
class RunSummary:
    """What a run did (JSON-able through :meth:`to_dict`)."""

    run_dir: str
    config: str
    aspects: dict[str, int]
    planned: int
    unique: int
    done_before: int
    computed: int = 0
    errors: int = 0
    remaining: int = 0
    stopped_early: bool = False
    dry_run: bool = False
    estimated_seconds: float | None = None  # dry run: CPU estimate / jobs (idle machine)
    estimated_cpu_seconds: float | None = None
    seconds: float = 0.0
    results: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finished(run_dir: Path, retry_errors: bool) -> set[str]:
    """Keys of stored cells (error cells too unless ``retry_errors``)."""
    cells = run_dir / "cells"
    if not cells.is_dir():
        return set()
    files = sorted(cells.glob("*.parquet"))
    if not retry_errors:
        return {p.stem for p in files}
    return {p.stem for p in files if pl.read_parquet(p, columns=["status"]).item() == "ok"}


def _estimate(run_dir: Path, pending: Sequence[Cell]) -> float | None:
    """CPU seconds the pending cells should take, from finished cells of the same model/dataset.

    CPU time (``cpu_seconds``) rather than wall time: it does not grow when other
    processes share the machine, and on an idle machine a one-thread cell takes about
    its CPU time. Divide by the number of jobs for the wall time.
    """
    cells = run_dir / "cells"
    files = sorted(cells.glob("*.parquet")) if cells.is_dir() else []
    if not files or not pending:
        return None if pending else 0.0
    frames = []
    for p in files:
        frame = pl.read_parquet(p)
        col = "cpu_seconds" if "cpu_seconds" in frame.columns else "seconds"
        frames.append(frame.select("model", "dataset", "grouping", pl.col(col).cast(pl.Float64).alias("seconds")))
    done = pl.concat(frames, how="vertical_relaxed")
    by_cell = {
        (r["model"], r["dataset"], r["grouping"]): r["seconds"]
        for r in done.group_by("model", "dataset", "grouping").agg(pl.col("seconds").mean()).to_dicts()
    }
    by_model = {r["model"]: r["seconds"] for r in done.group_by("model").agg(pl.col("seconds").mean()).to_dicts()}
    fallback = float(done.get_column("seconds").mean() or 0.0)
    total = 0.0
    for c in pending:
        total += by_cell.get((c.model, c.dataset, c.grouping), by_model.get(c.model, fallback))
    return total


def _write_plan(config: ExperimentConfig, run_dir: Path, planned: Sequence[tuple[str, Cell]]) -> None:
    write_json(
        run_dir / "plan.json",
        {
            "name": config.name,
            "description": config.description,
            "config": str(config.path),
            "aspects": {
                name: {"description": a.description, "datasets": list(a.datasets), "models": list(a.models), "early": a.early}
                for name, a in config.aspects.items()
            },
            "datasets": {name: d.describe() for name, d in config.datasets.items()},
            "cells": [{"aspect": a, "key": c.key, "label": c.label()} for a, c in planned],
        },
    )
    with atomic_path(run_dir / "config.toml", suffix=".toml") as tmp:
        tmp.write_text(config.text, encoding="utf-8")


def collect_results(run_dir: str | Path, write: bool = True) -> pl.DataFrame:
    """``results.parquet``: one row per (aspect, cell) of ``plan.json`` that is stored.

    Pending cells are left out. Written atomically when ``write``.
    """
    run_dir = Path(run_dir)
    plan_path = run_dir / "plan.json"
    if not plan_path.exists():
        raise LogsieveError(f"{run_dir}: not a run directory (no plan.json); run `logsieve experiment` first")
    plan = json.loads(plan_path.read_text(encoding="utf-8"))
    pairs = plan.get("cells", [])
    keys = sorted({p["key"] for p in pairs})
    rows = []
    for key in keys:
        path = run_dir / "cells" / f"{key}.parquet"
        if path.exists():
            rows.append(pl.read_parquet(path).drop("aspect", strict=False))
    if rows:
        stored = pl.concat(rows, how="diagonal_relaxed")
        mapping = pl.DataFrame({"aspect": [p["aspect"] for p in pairs], "key": [p["key"] for p in pairs]}).unique(maintain_order=True)
        results = mapping.join(stored, on="key", how="inner", maintain_order="left")
    else:
        results = pl.DataFrame(schema={"aspect": pl.String, "key": pl.String, "status": pl.String})
    if write:
        write_parquet(results, run_dir / "results.parquet")
    return results


def run_experiment(
    config: ExperimentConfig | str | Path,
    run_dir: str | Path,
    *,
    only: Sequence[str] | None = None,
    max_cells: int | None = None,
    dry_run: bool = False,
    retry_errors: bool = False,
    jobs: int | None = None,
    progress: Callable[[CellEvent], None] | None = None,
) -> RunSummary:
    """Run (or resume) an experiment.

    Parameters
    ----------
    config
        An :class:`ExperimentConfig` or the path of a TOML config.
    run_dir
        Where the data cache, the per-cell results and ``results.parquet`` go.
    only
        Aspect names to run (others are kept in the plan, not computed).
    max_cells
        Stop after computing this many cells (finished ones do not count).
    dry_run
        Plan only: count cells and finished ones, and estimate the time of the rest
        from the CPU time of finished cells of the same model and dataset
        (``estimated_cpu_seconds``; ``estimated_seconds`` = that / jobs, the wall time
        on an otherwise idle machine); writes nothing.
    retry_errors
        Recompute cells stored with ``status = "error"`` (they are skipped otherwise).
    jobs
        Worker processes (default: the config's ``[run] jobs``). Each uses one
        torch thread. They are *spawned* (fresh interpreters), so a script that calls
        this with ``jobs > 1`` needs the usual ``if __name__ == "__main__":`` guard; the
        ``logsieve`` command and ``python -m logsieve`` are fine. Detectors registered
        at run time (not importable by name) need ``jobs=1``.
    progress
        Called with a :class:`CellEvent` when each cell starts and ends.
    """
    if not isinstance(config, ExperimentConfig):
        config = load_config(config)
    run_dir = Path(run_dir)
    if max_cells is not None and max_cells < 0:
        raise LogsieveError(f"max_cells must be >= 0, not {max_cells}")
    started = time.perf_counter()
    all_cells = plan_cells(config)
    planned = plan_cells(config, only) if only else all_cells
    aspects_count: dict[str, int] = {}
    for a, _ in planned:
        aspects_count[a] = aspects_count.get(a, 0) + 1
    unique: OrderedDict[str, tuple[str, Cell]] = OrderedDict()
    for a, c in planned:
        unique.setdefault(c.key, (a, c))
    finished = _finished(run_dir, retry_errors) if run_dir.exists() else set()
    todo = [(a, c) for k, (a, c) in unique.items() if k not in finished]
    todo.sort(key=lambda ac: (ac[1].data_key[0], ac[1].data_key[1], ac[1].data_key[2], ac[1].data_key[3] or 0))
    summary = RunSummary(
        run_dir=str(run_dir),
        config=str(config.path),
        aspects=aspects_count,
        planned=len(planned),
        unique=len(unique),
        done_before=len(unique) - len(todo),
        remaining=len(todo),
        dry_run=dry_run,
    )
    n_jobs = max(1, int(jobs or config.jobs))
    if dry_run:
        cpu = _estimate(run_dir, [c for _, c in todo])
        summary.estimated_cpu_seconds = cpu
        summary.estimated_seconds = None if cpu is None else cpu / n_jobs
        return summary
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_plan(config, run_dir, all_cells)
    if max_cells is not None:
        todo = todo[:max_cells]
    logger.info(
        "experiment %s: %d cells planned (%d distinct), %d finished, running %d with %d job(s)",
        config.name, len(planned), len(unique), summary.done_before, len(todo), n_jobs,
    )
    total = len(todo)
    done = 0

    def report(event: CellEvent) -> None:
        if progress is not None:
            progress(event)

    try:
        if n_jobs == 1 or total <= 1:
            store = DataStore(config, run_dir)
            vers = versions()
            for aspect, cell in todo:
                report(CellEvent(done, total, aspect, cell.label(), "running"))
                row = _execute(cell, aspect, store, run_dir, vers)
                done += 1
                summary.computed += 1
                summary.errors += row["status"] == "error"
                report(CellEvent(done, total, aspect, cell.label(), row["status"], row["seconds"]))
        else:
            store = DataStore(config, run_dir)
            for key in dict.fromkeys(c.data_key for _, c in todo):  # prepare every dataset once, here
                try:
                    store.get(*key)
                except Exception as exc:  # noqa: BLE001 - the cells report it
                    logger.warning("data %s: %s", key, exc)
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(
                n_jobs, mp_context=ctx, initializer=_worker_init, initargs=(str(config.path), str(run_dir))
            ) as pool:
                futures = {pool.submit(_worker_run, a, c.settings()): (a, c) for a, c in todo}
                try:
                    for fut in cf.as_completed(futures):
                        aspect, cell = futures[fut]
                        out = fut.result()
                        done += 1
                        summary.computed += 1
                        summary.errors += out["status"] == "error"
                        report(CellEvent(done, total, aspect, cell.label(), out["status"], out["seconds"]))
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        summary.remaining = len(unique) - len(_finished(run_dir, False) & set(unique))
        summary.stopped_early = summary.remaining > 0
        results = collect_results(run_dir)
        summary.results = str(run_dir / "results.parquet")
        summary.seconds = time.perf_counter() - started
        write_json(run_dir / "run.json", {**summary.to_dict(), "rows": results.height, "versions": versions()})
    return summary
