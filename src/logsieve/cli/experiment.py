"""``logsieve experiment`` and ``logsieve report``: the study grid and its report
(:func:`logsieve.evaluation.experiment.run_experiment`,
:func:`logsieve.evaluation.report.build_report`).

``logsieve experiment CONFIG.toml -o RUN_DIR [--max-cells N] [--dry-run] [--only ASPECT]
[--jobs N] [--retry-errors]`` runs (or resumes) the grid of an experiment config and
writes the report at the end. ``logsieve report RUN_DIR`` rebuilds ``report.md`` /
``report.html`` at any time. Both print a JSON-able summary (nan becomes None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from logsieve.cli._common import Json, Quiet, app, emit, quiet_logs
from logsieve.cli.options import Engine, Scheduler, Workers

if TYPE_CHECKING:
    from logsieve.evaluation.experiment import CellEvent

__all__ = ["experiment", "experiment_command", "parse_only", "report", "report_command"]


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
    executor: Any = None,
) -> dict[str, Any]:
    """Run or resume an experiment; write the report unless ``dry_run`` or ``report=False``.

    With ``dry_run`` nothing is written: the summary gives the grid size per aspect,
    the distinct cells, those already finished in ``run_dir`` and, when earlier runs
    left timings there, ``estimated_seconds`` for the rest.
    """
    from logsieve.evaluation.experiment import run_experiment
    from logsieve.evaluation.report import build_report
    from logsieve.io.jsonable import clean_json

    summary = run_experiment(
        config,
        run_dir,
        only=parse_only(only),
        max_cells=max_cells,
        dry_run=dry_run,
        retry_errors=retry_errors,
        jobs=jobs,
        progress=progress,
        executor=executor,
    ).to_dict()
    if report and not dry_run:
        built = build_report(run_dir)
        summary["report_md"] = built["report_md"]
        summary["report_html"] = built["report_html"]
    return clean_json(summary)


def report_command(run_dir: str | Path) -> dict[str, Any]:
    """Rebuild ``results.parquet``, ``report.md``, ``report.html`` and ``plots/`` of a run."""
    from logsieve.evaluation.report import build_report
    from logsieve.io.jsonable import clean_json

    return clean_json(build_report(run_dir))


@app.command()
def experiment(
    config: Annotated[
        Path, typer.Argument(help="Experiment grid (TOML), e.g. experiments/quick.toml.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run directory (resumable).")],
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only these aspects (repeatable or a,b)."),
    ] = None,
    max_cells: Annotated[
        int | None, typer.Option("--max-cells", help="Stop after N new cells.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the grid size and exit.")
    ] = False,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="Run failed cells again.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Worker processes (one torch thread each)."),
    ] = None,
    engine: Engine = "local",
    scheduler: Scheduler = None,
    workers: Workers = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Run the study grid (datasets x grouping x split x models x seeds); resumes where it
    stopped."""
    from logsieve.cli.ui import cell_progress
    from logsieve.scale.cluster import check_engine

    quiet_logs(quiet or as_json)
    executor = None
    if check_engine(engine, scheduler, workers) == "dask":
        from logsieve.scale.experiment import dask_executor

        executor = dask_executor(scheduler, workers)
    with cell_progress(enabled=not (quiet or as_json or dry_run)) as cb:
        summary = experiment_command(
            config, output, max_cells=max_cells, dry_run=dry_run, only=only,
            retry_errors=retry_errors, jobs=jobs, progress=cb, executor=executor,
        )  # fmt: skip
    emit(summary, as_json, quiet, "experiment")
    if not dry_run:
        _fail_if_all_failed(output)


def _fail_if_all_failed(run_dir: Path) -> None:
    """Exit 2 with one line when every stored cell of the run is an error."""
    from logsieve.errors import LogsieveError
    from logsieve.evaluation.experiment import collect_results

    results = collect_results(run_dir, write=False)
    if results.height == 0 or "status" not in results.columns:
        return
    failed = results.filter(results["status"] != "ok")
    if failed.height < results.height:
        return
    first = failed["error"][0] if "error" in failed.columns else "unknown error"
    raise LogsieveError(
        f"{run_dir}: all {failed['key'].n_unique()} cells failed (first: {first}); "
        f"{run_dir / 'report.md'} lists every error"
    )


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of `logsieve experiment`.")],
    as_json: Json = False,
) -> None:
    """Rebuild results.parquet, report.md and report.html of an experiment run."""
    emit(report_command(run_dir), as_json, False, "report")
