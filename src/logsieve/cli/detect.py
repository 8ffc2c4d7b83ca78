"""``logsieve detect``: score windows, events or a raw log with a trained model
(:func:`logsieve.pipeline.jobs.detect_job`) and show the worst windows, explained."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import Json, Quiet, app, echo_json, quiet_logs
from logsieve.cli.options import Engine, Scheduler, Workers


@app.command()
def detect(
    input: Annotated[
        Path, typer.Argument(help="Windows or events table (.parquet), or a raw log.")
    ],
    model: Annotated[
        Path, typer.Option("--model", "-m", help="Model directory from `logsieve train`.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Scores to write (.parquet).")],
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="Format of a raw log (default: the model's)."),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option("--events", help="Events table, to show raw lines and feed text models."),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="Parser state for a raw log (default: the model's)."),
    ] = None,
    session: Annotated[
        str | None,
        typer.Option("--session", help="Session regex (default: the model's grouping)."),
    ] = None,
    session_field: Annotated[
        str | None, typer.Option("--session-field", help="Sessions keyed by a format field.")
    ] = None,
    window: Annotated[str | None, typer.Option("--window", help="Count windows N[,STEP].")] = None,
    time: Annotated[str | None, typer.Option("--time", help="Time windows DUR[,STEP].")] = None,
    idle: Annotated[
        str | None, typer.Option("--idle", help="Cut sessions at a gap longer than DUR.")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Side-file labels for a raw log.")
    ] = None,
    top: Annotated[
        int,
        typer.Option(
            "--top",
            help="Print the N highest-scoring windows (flagged or not), explained, with raw lines.",
        ),
    ] = 0,
    templates: Annotated[
        Path | None,
        typer.Option("--templates", help="Templates file: semantic models embed new templates."),
    ] = None,
    engine: Engine = "local",
    scheduler: Scheduler = None,
    workers: Workers = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Score windows, events or a raw log with a trained model; explain the worst ones."""
    from logsieve.grouping.specs import build_spec
    from logsieve.pipeline.jobs import detect_job
    from logsieve.scale.cluster import check_engine

    quiet_logs(quiet or as_json)
    given = session or window or time or session_field or idle
    grouping = (
        build_spec(
            session=session, window=window, time=time, idle=idle, session_field=session_field
        )
        if given
        else None
    )
    if check_engine(engine, scheduler, workers) == "dask":
        from logsieve.errors import LogsieveError
        from logsieve.scale.jobs import dask_detect_job

        if given or format or events or state or labels or templates:
            raise LogsieveError(
                "--engine dask scores a windows table as the model sees it: drop --format, "
                "--events, --state, grouping options, --labels and --templates"
            )
        summary, shown = dask_detect_job(
            input, model, output, top=top, scheduler=scheduler, workers=workers
        )
    else:
        summary, shown = detect_job(
            input, model, output, format=format, events=events, state=state,
            grouping=grouping, labels=labels, top=top, templates=templates,
        )  # fmt: skip
    if as_json:
        echo_json({**summary, "top": shown})
        return
    if not quiet:
        from logsieve.cli.ui import print_alerts, print_summary

        print_summary("detect", summary)
        print_alerts(shown)
