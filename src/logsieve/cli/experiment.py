"""Thin functions behind ``logsieve experiment`` and ``logsieve report`` (wired in app.py).

``logsieve experiment CONFIG.toml -o RUN_DIR [--max-cells N] [--dry-run] [--only ASPECT]
[--jobs N] [--retry-errors] [--no-report]`` runs (or resumes) the grid of an experiment
config and, unless told otherwise, writes the report at the end.
``logsieve report RUN_DIR`` rebuilds ``report.md`` / ``report.html`` at any time.

Both return a JSON-able summary (nan becomes None).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from logsieve.evaluation.experiment import CellEvent, run_experiment
from logsieve.evaluation.report import build_report

__all__ = ["experiment_command", "parse_only", "report_command"]


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def parse_only(values: Sequence[str] | None) -> list[str] | None:
    """``--only a --only b,c`` -> ``["a", "b", "c"]`` (None when not given)."""
    if not values:
        return None
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


def experiment_command(
    config: str | Path,
    run_dir: str | Path,
    *,
    max_cells: int | None = None,
    dry_run: bool = False,
    only: Sequence[str] | None = None,
    jobs: int | None = None,
    retry_errors: bool = False,
    report: bool = True,
    progress: Callable[[CellEvent], None] | None = None,
) -> dict[str, Any]:
    """Run or resume an experiment; write the report unless ``dry_run`` or ``report=False``.

    With ``dry_run`` nothing is written: the summary gives the grid size per aspect,
    the distinct cells, those already finished in ``run_dir`` and, when earlier runs
    left timings there, ``estimated_seconds`` for the rest.
    """
    summary = run_experiment(
        config,
        run_dir,
        only=parse_only(only),
        max_cells=max_cells,
        dry_run=dry_run,
        retry_errors=retry_errors,
        jobs=jobs,
        progress=progress,
    ).to_dict()
    if report and not dry_run:
        built = build_report(run_dir)
        summary["report_md"] = built["report_md"]
        summary["report_html"] = built["report_html"]
    return _clean(summary)


def report_command(run_dir: str | Path) -> dict[str, Any]:
    """Rebuild ``results.parquet``, ``report.md``, ``report.html`` and ``plots/`` of a run."""
    return _clean(build_report(run_dir))
