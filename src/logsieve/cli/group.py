"""``logsieve group`` and ``logsieve sequences``: events or key sequences -> a windows table
(:func:`logsieve.pipeline.jobs.group_job`, :func:`logsieve.pipeline.jobs.sequences_job`).

Grouping options (at most one kind; see :func:`logsieve.grouping.specs.build_spec`):

- ``--session REGEX``: sessions keyed by the regex (default: HDFS block ids);
- ``--window "N[,STEP]"``: count windows of N lines every STEP lines;
- ``--time "DUR[,STEP]"``: time windows, e.g. ``"30m"`` or ``"1h,10m"``;
- ``--idle DUR``: cut sessions at gaps longer than DUR (sessions only);
- ``--session-field FIELD``: sessions keyed by a column of the events table (a format field,
  e.g. ``IP`` of ``weblog``), cut after ``--idle`` (default 30m); labels come from the lines;
- ``--labels FILE``: side-file key labels (``BlockId,Label`` CSV or a list of anomalous ids).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import Json, Quiet, app, emit, quiet_logs
from logsieve.cli.options import Engine, Scheduler, Workers


@app.command()
def group(
    events: Annotated[Path, typer.Argument(help="Events table from `logsieve parse`.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Windows table to write (.parquet).")
    ],
    session: Annotated[
        str | None, typer.Option("--session", help=r"Session key regex (HDFS: blk_-?\d+).")
    ] = None,
    window: Annotated[str | None, typer.Option("--window", help="Count windows N[,STEP].")] = None,
    time: Annotated[
        str | None, typer.Option("--time", help="Time windows DUR[,STEP], e.g. 30m or 1h,10m.")
    ] = None,
    idle: Annotated[
        str | None, typer.Option("--idle", help="Cut sessions at a gap longer than DUR.")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels", help="Side-file labels: BlockId,Label CSV or anomalous ids, one per line."
        ),
    ] = None,
    session_field: Annotated[
        str | None,
        typer.Option(
            "--session-field",
            help="Sessions keyed by a field of the format instead, e.g. IP (weblog); "
            "--idle 30m by default.",
        ),
    ] = None,
    engine: Engine = "local",
    scheduler: Scheduler = None,
    workers: Workers = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Group events into sessions or count/time windows."""
    from logsieve.grouping.specs import build_spec
    from logsieve.pipeline.jobs import group_job
    from logsieve.scale.cluster import check_engine

    quiet_logs(quiet or as_json)
    spec = build_spec(session, window, time, idle, session_field=session_field)
    if check_engine(engine, scheduler, workers) == "dask":
        from logsieve.scale.jobs import dask_group_job

        summary = dask_group_job(
            events, output, spec, labels=labels, scheduler=scheduler, workers=workers
        )
    else:
        summary = group_job(events, output, spec, labels=labels)
    emit(summary, as_json, quiet, "group")


@app.command()
def sequences(
    inputs: Annotated[list[Path], typer.Argument(help="DeepLog key files or id,keys files.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Windows table to write (.parquet).")
    ],
    label: Annotated[
        int | None, typer.Option("--label", help="Label for every sequence (0 or 1).")
    ] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Import pre-parsed key sequences as a windows table."""
    from logsieve.pipeline.jobs import sequences_job

    if label is not None and label not in (0, 1):
        raise typer.BadParameter("--label must be 0 or 1")
    summary = sequences_job(inputs, output, label=label)
    emit(summary, as_json, quiet, "sequences")
