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

from logsieve.evaluation.experiment.plan import Cell
from logsieve.evaluation.experiment.specs import ExperimentConfig
from logsieve.io.atomic import atomic_path, write_json, write_parquet


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
    return {p.stem for p in files if pl.read_parquet(p, columns=["status"]).item() == "ok"}


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
