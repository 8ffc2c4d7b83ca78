"""What a run did and found: its summary, the time estimate of a dry run, results.parquet."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import polars as pl

from logsieve.errors import InputError, LogsieveError
from logsieve.evaluation.experiment.plan import Cell
from logsieve.evaluation.experiment.store import read_cell
from logsieve.io.atomic import write_parquet


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
        frame = read_cell(p)
        col = "cpu_seconds" if "cpu_seconds" in frame.columns else "seconds"
        frames.append(
            frame.select(
                "model", "dataset", "grouping", pl.col(col).cast(pl.Float64).alias("seconds")
            )
        )
    done = pl.concat(frames, how="vertical_relaxed")
    by_cell = {
        (r["model"], r["dataset"], r["grouping"]): r["seconds"]
        for r in done.group_by("model", "dataset", "grouping")
        .agg(pl.col("seconds").mean())
        .to_dicts()
    }
    by_model = {
        r["model"]: r["seconds"]
        for r in done.group_by("model").agg(pl.col("seconds").mean()).to_dicts()
    }
    fallback = float(cast("float | None", done.get_column("seconds").mean()) or 0.0)
    total = 0.0
    for c in pending:
        total += by_cell.get((c.model, c.dataset, c.grouping), by_model.get(c.model, fallback))
    return total


def read_plan(run_dir: str | Path) -> dict[str, Any]:
    """``plan.json`` of a run directory, checked (one-line error naming a damaged one)."""
    path = Path(run_dir) / "plan.json"
    if not path.exists():
        raise LogsieveError(
            f"{run_dir}: not a run directory (no plan.json); run `logsieve experiment` first"
        )
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"damaged plan ({exc}); run `logsieve experiment` again") from exc
    cells = plan.get("cells", []) if isinstance(plan, dict) else None
    good = isinstance(cells, list) and all(
        isinstance(c, dict)
        and isinstance(c.get("aspect"), str)
        and isinstance(c.get("key"), str)
        and c["key"]
        and Path(c["key"]).name == c["key"]
        and not c["key"].startswith(".")
        for c in cells
    )
    if not good:
        raise InputError(
            path,
            "damaged plan (expected an object with a 'cells' list of {aspect, key} objects); "
            "run `logsieve experiment` again",
        )
    return {**plan, "cells": cells}


def collect_results(run_dir: str | Path, write: bool = True) -> pl.DataFrame:
    """``results.parquet``: one row per (aspect, cell) of ``plan.json`` that is stored.

    Pending cells are left out. Written atomically when ``write``.
    """
    run_dir = Path(run_dir)
    plan = read_plan(run_dir)
    pairs = plan["cells"]
    keys = sorted({p["key"] for p in pairs})
    rows = []
    for key in keys:
        path = run_dir / "cells" / f"{key}.parquet"
        if path.exists():
            rows.append(read_cell(path).drop("aspect", strict=False))
    if rows:
        stored = pl.concat(rows, how="diagonal_relaxed")
        mapping = pl.DataFrame(
            {"aspect": [p["aspect"] for p in pairs], "key": [p["key"] for p in pairs]}
        ).unique(maintain_order=True)
        results = mapping.join(stored, on="key", how="inner", maintain_order="left")
    else:
        results = pl.DataFrame(schema={"aspect": pl.String, "key": pl.String, "status": pl.String})
    if write:
        write_parquet(results, run_dir / "results.parquet")
    return results
