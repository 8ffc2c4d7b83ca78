"""``logsieve workflow``: DeepLog's workflow model (section 5) of a model directory.

Built from the training windows kept with the model (``train_windows.parquet``, normal
ones only): keys are first separated into tasks by co-occurrence, and each task gets its
own workflow when there are several. Written as ``.json``, ``.dot``, ``.svg`` or ``.html``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from logsieve.detectors.deeplog_workflow import Workflow, build_workflow, separate_tasks
from logsieve.detectors.workflow_render import to_dot, to_html, to_svg
from logsieve.errors import LogsieveError
from logsieve.io.atomic import atomic_open
from logsieve.io.tables import read_table
from logsieve.pipeline.core import TRAIN_WINDOWS_FILE, Pipeline
from logsieve.schema import LABEL

__all__ = ["SUFFIXES", "model_workflow", "workflow_job"]

SUFFIXES = (".json", ".dot", ".svg", ".html")


def model_workflow(model_dir: str | Path) -> Workflow:
    """The workflow of the normal training windows kept in ``model_dir``."""
    path = Path(model_dir) / TRAIN_WINDOWS_FILE
    if not path.is_file():
        raise LogsieveError(
            f"{model_dir}: keeps no training windows ({TRAIN_WINDOWS_FILE}); train it again "
            "with this logsieve"
        )
    windows, _ = read_table(path)
    if LABEL in windows.columns:
        windows = windows.filter(pl.col(LABEL).is_null() | (pl.col(LABEL) == 0))
    templates = Pipeline.load(model_dir).templates
    separate = len(separate_tasks(windows)) > 1
    return build_workflow(windows, templates=templates, separate=separate)


def workflow_job(model_dir: str | Path, output: str | Path) -> dict[str, Any]:
    """Write the workflow of ``model_dir`` to ``output`` (format from its suffix)."""
    import json

    out = Path(output)
    if out.suffix not in SUFFIXES:
        raise LogsieveError(f"{out}: the workflow is written as {', '.join(SUFFIXES)}")
    wf = model_workflow(model_dir)
    title = f"workflow of {Path(model_dir).name}"
    if out.suffix == ".json":
        text = json.dumps(wf.to_dict(), indent=1) + "\n"
    else:
        text = {".dot": to_dot, ".svg": to_svg, ".html": to_html}[out.suffix](wf, title)
    with atomic_open(out, "w", encoding="utf-8") as fh:
        fh.write(text)
    d = wf.to_dict()
    return {"output": str(out), "nodes": len(d["nodes"]), "edges": len(d["edges"]),
            "tasks": len(d["tasks"]), "divergence_points": len(d["divergence_points"]),
            "loops": len(d["loops"]), "concurrent_pairs": len(d["concurrent_pairs"])}  # fmt: skip
