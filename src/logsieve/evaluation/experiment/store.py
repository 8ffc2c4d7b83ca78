"""The run directory's per-cell store and plan.

A finished cell is one row in ``RUN_DIR/cells/<key>.parquet`` (written atomically);
``plan.json`` lists the (aspect, key) pairs of the current config and ``config.toml``
is a copy of the config file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import InputError
from logsieve.evaluation.experiment.plan import Cell
from logsieve.evaluation.experiment.specs import ExperimentConfig
from logsieve.io.atomic import atomic_path, write_json, write_parquet


def read_run_table(
    path: Path,
    columns: list[str] | None = None,
    *,
    needs: tuple[str, ...] = (),
    fix: str = "delete it to run its cell again",
) -> pl.DataFrame:
    """A Parquet file of a run directory (a cell row, scores, early detection); a damaged
    one is a one-line error naming it, with the way out."""
    try:
        frame = pl.read_parquet(path, columns=columns)
    except Exception as exc:  # polars raises several error types on damaged files
        text = str(exc).strip().splitlines()
        raise InputError(
            path,
            f"damaged run file ({text[0] if text else type(exc).__name__}); {fix}",
        ) from exc
    missing = [c for c in needs if c not in frame.columns]
    if missing:
        raise InputError(
            path,
            f"damaged run file (no {', '.join(missing)} column); {fix}",
        )
    return frame


def read_cell(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """One stored cell row (exactly one row with a ``status``), checked."""
    frame = read_run_table(path, columns, needs=("status",))
    if frame.height != 1:
        raise InputError(
            path, f"damaged cell file ({frame.height} rows, not 1); delete it to run the cell again"
        )
    return frame


def _store_row(run_dir: Path, row: dict[str, Any]) -> None:
    frame = pl.DataFrame([row], infer_schema_length=None, strict=False)
    write_parquet(frame, run_dir / "cells" / f"{row['key']}.parquet")


def _finished(run_dir: Path, retry_errors: bool) -> set[str]:
    """Keys of stored cells (error cells too unless ``retry_errors``)."""
    cells = run_dir / "cells"
    if not cells.is_dir():
        return set()
    files = sorted(cells.glob("*.parquet"))
    if not retry_errors:
        return {p.stem for p in files}
    return {p.stem for p in files if read_cell(p, ["status"]).item() == "ok"}


def _write_plan(
    config: ExperimentConfig, run_dir: Path, planned: Sequence[tuple[str, Cell]]
) -> None:
    write_json(
        run_dir / "plan.json",
        {
            "name": config.name,
            "description": config.description,
            "config": str(config.path),
            "aspects": {
                name: {
                    "description": a.description,
                    "datasets": list(a.datasets),
                    "models": list(a.models),
                    "early": a.early,
                }
                for name, a in config.aspects.items()
            },
            "datasets": {name: d.describe() for name, d in config.datasets.items()},
            "cells": [{"aspect": a, "key": c.key, "label": c.label()} for a, c in planned],
        },
    )
    with atomic_path(run_dir / "config.toml", suffix=".toml") as tmp:
        tmp.write_text(config.text, encoding="utf-8")
