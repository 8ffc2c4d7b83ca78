"""STAND-IN for ``logsieve.pipeline.feedback`` (issue 12, branch h-feedback) until it lands.

DELETE THIS MODULE when :mod:`logsieve.pipeline.feedback` is on main: the adapter in
:mod:`logsieve.service.feedback` imports the real ``apply_feedback`` and
``windows_for_alerts`` first and falls back to these while that import fails. They follow
the interface and the version convention of that branch (``pipeline.json`` gets an integer
``model_version``; the new version is built in a temporary sibling and swapped in whole) but
learn crudely: "normal" raises the detector's threshold to the highest score of the marked
windows (so they are no longer flagged), "anomaly" changes nothing but the version. There is
no history and no rollback.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.pipeline import Pipeline
from logsieve.pipeline.core import PIPELINE_FILE
from logsieve.schema import EVENT_ID, EVENT_IDS, LINE_IDS, WINDOW_ID

__all__ = ["apply_feedback", "windows_for_alerts"]

MODEL_FILE = "model.json"


def windows_for_alerts(
    pipe: Pipeline, alerts: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None
) -> pl.DataFrame:
    """One window per alert: its lines parsed with the model's parser, in order."""
    parser = pipe.parser()
    wids, eids = [], []
    for alert in alerts:
        if ids is not None and str(alert["alert_id"]) not in ids:
            continue
        texts = [str(x["text"]) for x in alert.get("lines", [])]
        if not texts:
            raise LogsieveError(f"alert {alert['alert_id']}: no lines to rebuild its window from")
        events = parser.parse_lines(pl.Series("line", texts))
        wids.append(str(alert["window_id"]))
        eids.append([str(e) for e in events.get_column(EVENT_ID).to_list()])
    return pl.DataFrame(
        {WINDOW_ID: wids, EVENT_IDS: eids, LINE_IDS: [list(range(1, len(e) + 1)) for e in eids]},
        schema={WINDOW_ID: pl.String, EVENT_IDS: pl.List(pl.String), LINE_IDS: pl.List(pl.Int64)},
    )


def _version(model_dir: Path) -> int:
    desc = json.loads((model_dir / PIPELINE_FILE).read_text("utf-8"))
    return int(desc.get("model_version") or 1)


def apply_feedback(
    model_dir: str | Path, windows: pl.DataFrame, label: str, out_dir: str | Path | None = None
) -> dict[str, Any]:
    """Write the next model version (module docstring); returns ``{"model_version", ...}``."""
    if label not in ("normal", "anomaly"):
        raise LogsieveError(f"label must be 'normal' or 'anomaly', not {label!r}")
    source = Path(model_dir)
    target = Path(out_dir) if out_dir is not None else source
    pipe = Pipeline.load(source)
    previous = _version(source)
    model = json.loads((source / MODEL_FILE).read_text("utf-8"))
    threshold = float(model["threshold"])
    if label == "normal" and windows.height:
        threshold = max(threshold, float(pipe.score(windows).max()))
    tmp = Path(tempfile.mkdtemp(prefix=f".logsieve-model-{os.getpid()}-", dir=target.parent))
    try:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        model["threshold"] = threshold
        (tmp / MODEL_FILE).write_text(json.dumps(model), "utf-8")
        desc = json.loads((tmp / PIPELINE_FILE).read_text("utf-8"))
        desc.update({"model_version": previous + 1, "parent_version": previous})
        (tmp / PIPELINE_FILE).write_text(json.dumps(desc, indent=1), "utf-8")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"model_version": previous + 1, "previous_version": previous, "label": label,
            "threshold": threshold, "stand_in": True}  # fmt: skip
