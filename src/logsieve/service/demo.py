"""``logsieve demo --serve``: the demo's model served, its held-out lines streamed in.

After :func:`logsieve.evaluation.demo.run_demo` has trained DeepLog, :func:`serve_demo`
starts the service on that model with a fresh state directory beside it and feeds the raw
lines of the demo's test windows (which the model never trained on) into the stream as
``POST /v1/ingest`` would, a little at a time, so alerts arrive on the page live.

The demo trains DeepLog with its parameter-value model. Neither the streaming engine nor
``/v1/score`` (whose windows carry event ids only) can give that model parameter values, so
the service gets the demo's trained pipeline with the value model set aside: its key model,
the one the demo's "caught per kind" table calls "DeepLog's key model", saved as
``WORKDIR/serve-model`` (feedback from the page rewrites that copy, not the demo's model).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.evaluation.demo import held_out_lines
from logsieve.io.tables import read_table
from logsieve.pipeline import Pipeline
from logsieve.pipeline.core import TEST_WINDOWS_FILE, TRAIN_WINDOWS_FILE
from logsieve.service.app import ServiceConfig
from logsieve.service.server import check_bind, serve

__all__ = ["MODEL_DIR", "STATE_DIR", "serve_demo", "servable_model"]

MODEL_DIR = "serve-model"
"""The served copy of the demo's model under the demo's workdir."""
STATE_DIR = "serve-state"
"""The demo service's state directory under the demo's workdir (emptied at each start: the
model is retrained by every demo run, so old alerts and checkpoints would not match it)."""


def serve_demo(
    workdir: str | Path,
    summary: Mapping[str, Any],
    *,
    host: str = "127.0.0.1",
    port: int = 8321,
    lines_per_second: float = 2_000.0,
    announce: Callable[[str, int, Path], None] | None = None,
) -> None:
    """Serve the model of a demo run (``summary``: what :func:`run_demo` returned) until
    SIGINT/SIGTERM, feeding it the demo's held-out lines. ``announce`` gets the page's URL,
    the number of lines to feed and the state directory before the server starts."""
    check_bind(host, None)
    lines = held_out_lines(summary["log"], summary["model"])
    if not lines:
        raise LogsieveError(f"the demo in {workdir} has no test lines to stream")
    model_dir = servable_model(summary["model"], Path(workdir) / MODEL_DIR)
    state = Path(workdir) / STATE_DIR
    if state.exists():
        shutil.rmtree(state)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    if announce is not None:
        announce(url, len(lines), state)
    serve(ServiceConfig(model_dir=model_dir, state_dir=state), host, port, feed=lines,
          feed_lines_per_second=lines_per_second)  # fmt: skip


def servable_model(model_dir: str | Path, target: str | Path) -> Path:
    """The demo's trained pipeline, written to ``target`` without its parameter-value model
    (module docstring), with its training and test windows (feedback reads the former)."""
    pipe = Pipeline.load(model_dir)
    det = pipe.detector
    needs = getattr(det, "needs_values", None)
    if callable(needs) and needs():
        det.values_ = None  # type: ignore[attr-defined]
        det.parameter_model = False  # type: ignore[attr-defined]
    source = Path(model_dir)
    train, meta = (read_table(source / TRAIN_WINDOWS_FILE) if (source / TRAIN_WINDOWS_FILE)
                   .is_file() else (None, {}))  # fmt: skip
    test = pl.read_parquet(source / TEST_WINDOWS_FILE)
    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    pipe.save(target, test_windows=test, test_meta=meta, train_windows=train)
    return target
