"""``detect --engine dask``: score a windows table with ``map_partitions``-style tasks.

Each task reads one part (or slice) of the windows table and scores it with the saved
:class:`~logsieve.pipeline.Pipeline`, loaded once per worker process and kept for the
following tasks. Scores and flags are per window, so the parts read back in order are the
local scores table; explanations are those of the flagged windows, as locally. (Locally
``--top K`` also explains the K highest-scoring windows that are not flagged; here those
are shown without an explanation.)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import InputError, LogsieveError
from logsieve.io.tables import encode_meta, read_meta, table_parts
from logsieve.pipeline.core import DetectResult, Pipeline
from logsieve.scale.dataset import atomic_dataset, check_dataset_output, part_name
from logsieve.schema import EVENT_IDS

log = logging.getLogger(__name__)

SLICE_ROWS = 200_000
"""Windows one task scores."""

_cache: dict[tuple[str, float], Pipeline] = {}
_lock = threading.Lock()

__all__ = ["SLICE_ROWS", "dask_detect", "worker_pipeline"]


def worker_pipeline(model_dir: str) -> Pipeline:
    """The pipeline saved in ``model_dir``, loaded once per process (reloaded if it changes)."""
    stamp = (Path(model_dir) / "model.json").stat().st_mtime
    key = (str(Path(model_dir).resolve()), stamp)
    with _lock:
        pipe = _cache.get(key)
        if pipe is None:
            _cache.clear()
            pipe = _cache[key] = Pipeline.load(model_dir)
        return pipe


def _score_slice(
    model_dir: str, path: str, start: int, rows: int, meta: dict[str, Any],
    target: str, out_meta: dict[str, str],
) -> dict[str, int]:  # fmt: skip
    import pyarrow.parquet as pq

    pipe = worker_pipeline(model_dir)
    windows = pl.scan_parquet(path).slice(start, rows).collect()
    if meta.get("templates"):
        pipe.add_templates(meta["templates"])
    windows = pipe.prepare(windows, meta, None)
    result = pipe.detect(windows)
    table = result.table.to_arrow()
    pq.write_table(table.replace_schema_metadata(out_meta), target, compression="zstd")
    return {
        "windows": result.table.height,
        "flagged": int(result.table["is_anomaly"].sum()),
    }


def dask_detect(
    client: Any,
    windows_path: str | Path,
    model_dir: str | Path,
    output: str | Path,
    *,
    slice_rows: int = SLICE_ROWS,
) -> dict[str, Any]:
    """Score a windows table (a file or a dataset) into the scores dataset ``output``."""
    start = time.perf_counter()
    windows_path = Path(windows_path)
    if not windows_path.exists():
        raise InputError(windows_path, "not found")
    parts = table_parts(windows_path)
    if EVENT_IDS not in pl.scan_parquet(parts[0]).collect_schema().names():
        raise LogsieveError(
            "--engine dask scores a windows table: group the events first "
            "(logsieve group ... --engine dask)"
        )
    model_files = [p for p in Path(model_dir).glob("*") if p.is_file()]
    target = check_dataset_output(output, [windows_path, *model_files])
    pipe = Pipeline.load(model_dir)  # fails here, once, on a bad model directory
    meta = read_meta(windows_path)
    out_meta = encode_meta({"table": "scores", "model": pipe.name})
    tasks = []
    for part in parts:
        n = int(pl.scan_parquet(part).select(pl.len()).collect().item())
        for s in range(0, max(n, 1), slice_rows):
            tasks.append((str(part), s, min(slice_rows, n - s)))
    width = max(1, math.ceil(len(tasks)))
    with atomic_dataset(target) as tmp:
        futures = [
            client.submit(
                _score_slice, str(model_dir), p, s, n, meta, str(tmp / part_name(i)), out_meta,
                key=f"logsieve-score-{i}-{id(tmp)}",
            )
            for i, (p, s, n) in enumerate(tasks)
        ]  # fmt: skip
        done = client.gather(futures)
    log.info("dask: scored %d windows in %d tasks", sum(d["windows"] for d in done), width)
    scores = pl.scan_parquet(table_parts(target)).collect()
    result = DetectResult(
        table=scores,
        threshold=float(pipe.detector.threshold_),
        seconds=time.perf_counter() - start,
        explained=int(scores["explanation"].is_not_null().sum()),
        windows=pl.DataFrame(),
    )
    return {**result.summary(pipe.name), "output": str(output)}
