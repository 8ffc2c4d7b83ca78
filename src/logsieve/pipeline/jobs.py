"""File-level jobs over the pipeline: what ``parse``, ``group``, ``train`` and ``detect`` do.

Each job reads its inputs, runs the library, writes its outputs atomically with their
provenance (:mod:`logsieve.io.tables`) and returns a JSON-able summary. The CLI only turns
options into these calls and renders the summaries; benchmarks and docs/results.md call
the same jobs, so every documented figure is what the CLI gives.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.detectors.registry import create_detector, get_detector_class
from logsieve.errors import InputError, LogsieveError
from logsieve.features.http import attach_http, is_http
from logsieve.grouping.labels import read_labels
from logsieve.grouping.specs import AnySpec, group_any, spec_to_dict
from logsieve.grouping.text import attach_messages
from logsieve.grouping.values import attach_values, has_values
from logsieve.io.atomic import (
    atomic_path,
    check_output_not_input,
    prepare_output,
    sweep_stale_temp,
)
from logsieve.io.tables import read_meta, read_table, scan_table, table_parts, write_table
from logsieve.parsing.parser import parse_file, template_counts
from logsieve.pipeline.core import (
    Pipeline,
    clean_json,
    read_state_file,
    read_templates_file,
    read_windows,
)
from logsieve.schema import CONTENT, EVENT_ID, EVENT_IDS, LINE_ID, LINE_IDS

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

__all__ = [
    "detect_job",
    "group_job",
    "is_parquet",
    "parse_job",
    "parse_split",
    "sequences_job",
    "train_job",
]


def is_parquet(path: str | Path) -> bool:
    """True when ``path`` is a Parquet file (by its magic bytes, not its name)."""
    p = Path(path)
    if p.is_dir():  # a partitioned table: its first part decides
        p = table_parts(p)[0]
    if not p.is_file():
        return False
    try:
        with open(p, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def parse_split(split: str | tuple[float, ...] | None) -> tuple[float, float, float | None] | None:
    """``"0.8,0.1,0.1"`` / ``"0.8,0.1"`` (test = the rest) -> fractions; None stays None."""
    if split is None:
        return None
    parts = (
        split if isinstance(split, tuple) else tuple(p for p in str(split).split(",") if p.strip())
    )
    bad = f"bad split {split!r}: expected TRAIN,VALID[,TEST] fractions, e.g. 0.8,0.1,0.1"
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise LogsieveError(bad) from exc
    if len(values) not in (2, 3):
        raise LogsieveError(bad)
    return values[0], values[1], values[2] if len(values) == 3 else None


def _outputs(inputs: Sequence[str | Path | None], *outputs: str | Path | None) -> None:
    """Refuse outputs that are inputs, each other, or not regular files; sweep dead runs' temps."""
    given = [Path(p) for p in inputs if p is not None]
    seen: list[Path] = []
    for out in outputs:
        if out is None:
            continue
        target = prepare_output(out)
        check_output_not_input(target, [*given, *seen])
        sweep_stale_temp(target.parent)
        seen.append(target)


# ----------------------------------------------------------------------------- parse
def parse_job(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    format: str = "hdfs",
    masks: Sequence[Any] = (),
    state: str | Path | None = None,
    match_only: bool = False,
    templates_out: str | Path | None = None,
    truth: str | Path | None = None,
    no_templates: bool = False,
    progress: Progress | None = None,
    values: bool = False,
    **drain: Any,
) -> dict[str, Any]:
    """Raw logs -> an events table with its provenance (and optionally a templates CSV)."""
    params = {k: v for k, v in drain.items() if v is not None}
    _outputs([*inputs, state, truth], output, templates_out)
    if no_templates:
        if state is not None or match_only or params:
            raise LogsieveError("--no-templates mines no templates: drop --state, --match-only, "
                                "--depth and --sim-th")
        params["mine_templates"] = False
    _, stats, _parser = parse_file(
        list(inputs), format=format, output=output, state=state, match_only=match_only,
        extra_masks=list(masks), progress=progress, values=values and not no_templates, **params,
    )  # fmt: skip
    summary: dict[str, Any] = {"output": str(output), **stats.to_dict()}
    if templates_out is not None:
        if no_templates:
            raise LogsieveError("--templates-out needs templates: drop --no-templates")
        counts = template_counts(scan_table(output))
        with atomic_path(templates_out, suffix=".csv") as tmp:
            counts.write_csv(tmp)
        summary["templates_out"] = str(templates_out)
    if truth is not None:
        from logsieve.parsing.accuracy import evaluate, load_truth

        pred = scan_table(output).select(LINE_ID, EVENT_ID, "template").collect()
        summary["accuracy"] = evaluate(load_truth(truth), pred)
    return summary


# ----------------------------------------------------------------------------- group
def windows_meta(events_meta: Mapping[str, Any], spec: AnySpec, labels: Any) -> dict[str, Any]:
    """The provenance of windows grouped from an events table."""
    meta = {k: v for k, v in events_meta.items() if k != "table"}
    meta.update(
        table="windows",
        grouping=spec_to_dict(spec),
        labels=None if labels is None else str(labels),
    )
    return meta


def group_job(
    events_path: str | Path,
    output: str | Path,
    spec: AnySpec,
    *,
    labels: str | Path | None = None,
) -> dict[str, Any]:
    """An events table -> a windows table that remembers its format, templates and grouping.

    Windows of an events table parsed without templates carry their raw ``messages``, so
    the raw-text models need no parser at all.
    """
    events = Path(events_path)
    if not (events.is_file() or events.is_dir()):
        raise InputError(events, "events file not found (run `logsieve parse` first)")
    _outputs([events, labels], output)
    meta = read_meta(events)
    label_table = read_labels(labels) if labels is not None else None
    result = group_any(events, spec, labels=label_table)
    windows = result.windows
    if not meta.get("templates_mined", True):
        windows = attach_messages(windows, events)
    if has_values(events):
        windows = attach_values(windows, events)
    if is_http(events):  # status, method, URL shape and pace, for `--set features=http`
        windows = attach_http(windows, events)
    write_table(windows, output, windows_meta(meta, spec, labels))
    return {"grouping": spec_to_dict(spec), **result.summary(), "output": str(output)}


def sequences_job(
    paths: Sequence[str | Path], output: str | Path, label: int | None = None
) -> dict[str, Any]:
    """Pre-parsed sequence files (DeepLog keys, ``id,keys``) -> one windows table."""
    from logsieve.grouping.sequences import concat_windows, read_sequences

    if not paths:
        raise LogsieveError("no sequence files given")
    _outputs(list(paths), output)
    tables = [read_sequences(p, label=label) for p in paths]
    windows = concat_windows(*tables)
    write_table(windows, output, {"table": "windows", "grouping": None, "sequences": True})
    lab = windows["label"]
    return {
        "windows": windows.height,
        "anomalous": int((lab == 1).sum()),
        "normal": int((lab == 0).sum()),
        "unlabelled": int(lab.null_count()),
        "files": {str(p): t.height for p, t in zip(paths, tables, strict=True)},
        "output": str(output),
    }


# ----------------------------------------------------------------------------- train
def train_job(
    windows_path: str | Path,
    model: str,
    params: Mapping[str, Any] | None,
    output_dir: str | Path,
    *,
    split: str | tuple[float, ...] | None = None,
    valid: str | Path | None = None,
    split_method: str = "chronological",
    seed: int = 0,
    train_normal_only: bool = False,
    include_anomalies: bool = False,
    templates: str | Path | None = None,
    events: str | Path | None = None,
    state: str | Path | None = None,
    progress: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` on a windows file and write the whole model directory atomically.

    Templates, format, masks, parser state and grouping come from the windows table's
    provenance; ``templates`` and ``state`` files, when given, take precedence. Validation
    data: the ``valid`` windows file, else the validation part of ``split`` (the test part
    is kept as ``test_windows.parquet``), else the model's own ``valid_fraction``.
    """
    if split_method not in ("chronological", "random"):
        raise LogsieveError(f"--split is chronological or random, not {split_method!r}")
    fractions = parse_split(split)
    if valid is not None and fractions is not None and fractions[1] > 0:
        raise LogsieveError("give either a validation file or a validation fraction, not both")
    state_dict = read_state_file(state) if state is not None else None  # validated up front
    template_map = read_templates_file(templates) if templates is not None else None
    if events is not None:
        read_meta(events)  # a missing or non-Parquet events file: one line, before training
    windows, meta = read_windows(windows_path)
    params = dict(params or {})
    if include_anomalies:
        params["include_anomalies"] = True
    cls = get_detector_class(model)
    if "random_state" in cls().get_params() and "random_state" not in params:
        params["random_state"] = seed
    pipe = Pipeline.for_windows(create_detector(model, **params), meta)
    if state_dict is not None:
        pipe.parser_state = state_dict
    windows = pipe.prepare(windows, meta, events)
    valid_windows = pipe.prepare(*read_windows(valid), events) if valid is not None else None
    result = pipe.train(
        windows, split=fractions, valid=valid_windows, split_method=split_method, seed=seed,
        train_normal_only=train_normal_only, templates=template_map, progress=progress,
    )  # fmt: skip
    out = Path(output_dir)
    summary = {
        **result.summary,
        "output_dir": str(out),
        "test_windows": str(out / "test_windows.parquet") if result.test is not None else None,
    }
    pipe.save(
        out, summary=summary, test_windows=result.test, test_meta=meta, train_windows=result.seen
    )
    return summary


# ----------------------------------------------------------------------------- detect
def detect_job(
    input: str | Path | Sequence[str | Path],
    model_dir: str | Path,
    output: str | Path,
    *,
    format: str | None = None,
    events: str | Path | None = None,
    state: str | Path | None = None,
    grouping: AnySpec | None = None,
    labels: str | Path | None = None,
    top: int = 0,
    templates: str | Path | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score a windows table, an events table or raw log files with a saved pipeline.

    A raw log is parsed with the model's parser state and grouped as its training windows
    were (``format``, ``state`` and ``grouping`` override). Writes ``window_id, score,
    is_anomaly, label, explanation`` and returns the summary plus the ``top`` highest-
    scoring windows, explained, with their raw lines when the events are known.
    """
    inputs = [Path(p) for p in ([input] if isinstance(input, (str, Path)) else input)]
    for path in inputs:
        if str(path) != "-" and not path.exists():
            raise InputError(path, "not found")
    model_files = [p for p in Path(model_dir).glob("*") if p.is_file()]
    _outputs([*inputs, events, state, templates, labels, *model_files], output)
    pipe = Pipeline.load(model_dir)
    if state is not None:
        pipe.parser_state = read_state_file(state)
    if templates is not None:
        pipe.add_templates(read_templates_file(templates))
    events_df: pl.DataFrame | None = None
    first = inputs[0]
    if len(inputs) == 1 and is_parquet(first) and format is None:
        table, meta = read_table(first)
        if EVENT_IDS in table.columns:
            windows = table
        elif EVENT_ID in table.columns and LINE_ID in table.columns:
            events_df = table
            windows = pipe.group(events_df, labels=labels, grouping=grouping)
        else:
            raise InputError(first, "neither a windows nor an events table")
        if meta.get("templates"):
            pipe.add_templates(meta["templates"])
    else:
        meta = {}
        # mining mode, as `logsieve watch` parses online: a new message gets a new event
        # id (the model directory is not changed), so watch --no-follow equals detect
        windows, events_df = pipe.windows_from_log(
            inputs, format=format, labels=labels, grouping=grouping, mine=True
        )
    if events is not None and events_df is None:
        events_df = read_table(events)[0]
    windows = pipe.prepare(windows, meta, events_df)
    result = pipe.detect(windows, explain_top=max(top, 0))
    write_table(result.table, output, {"table": "scores", "model": pipe.name})
    summary = {**result.summary(pipe.name), "output": str(output)}
    return summary, _shown(result.table, result.windows, events_df, top)


def _shown(
    scores: pl.DataFrame, windows: pl.DataFrame, events: pl.DataFrame | None, top: int
) -> list[dict[str, Any]]:
    """The ``top`` highest scores, flagged or not, with explanations and raw lines."""
    if top <= 0:
        return []
    ranked = scores.with_row_index("__row")
    worst = ranked.sort(["score", "__row"], descending=[True, False]).head(top)
    shown: list[dict[str, Any]] = []
    for row in worst.iter_rows(named=True):
        entry: dict[str, Any] = {
            "window_id": row["window_id"],
            "score": row["score"],
            "is_anomaly": row["is_anomaly"],
            "label": row["label"],
            "explanation": json.loads(row["explanation"]) if row["explanation"] else None,
        }
        if events is not None and LINE_IDS in windows.columns:
            ids = windows[LINE_IDS][row["__row"]].to_list()
            lines = events.filter(pl.col(LINE_ID).is_in(ids)).sort(LINE_ID)
            entry["lines"] = [
                {"line_id": r[LINE_ID], "content": r[CONTENT], "event_id": r[EVENT_ID]}
                for r in lines.select(LINE_ID, CONTENT, EVENT_ID).iter_rows(named=True)
            ]
        shown.append(clean_json(entry))
    return shown
