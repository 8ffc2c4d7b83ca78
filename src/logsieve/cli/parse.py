"""``logsieve parse``: raw logs -> an events table (:func:`logsieve.pipeline.jobs.parse_job`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import Json, Quiet, app, emit, quiet_logs
from logsieve.cli.options import Engine, Scheduler, Workers


@app.command()
def parse(
    inputs: Annotated[
        list[Path], typer.Argument(help="Log files, plain or .gz, parsed as one stream.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Events table to write (.parquet).")
    ],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="Built-in format name or a format string like '<Date> <Time> <Content>'.",
        ),
    ] = "hdfs",
    mask: Annotated[
        list[str] | None,
        typer.Option("--mask", help="Extra mask NAME=REGEX (repeatable), applied first."),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state", help="Parser state JSON: loaded if it exists, saved after parsing."
        ),
    ] = None,
    match_only: Annotated[
        bool,
        typer.Option(
            "--match-only", help="Never create templates; unseen messages get E0 <unseen>."
        ),
    ] = False,
    templates_out: Annotated[
        Path | None, typer.Option("--templates-out", help="Write event_id,template,count CSV.")
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="Loghub *_structured.csv ground truth: print GA, PA, F1-GA."),
    ] = None,
    depth: Annotated[
        int | None, typer.Option(help="Drain tree depth (default: the format's preset).")
    ] = None,
    sim_th: Annotated[
        float | None, typer.Option(help="Drain similarity threshold (default: preset).")
    ] = None,
    no_templates: Annotated[
        bool,
        typer.Option(
            "--no-templates",
            help="Skip template mining: raw messages only (for raw-text models).",
        ),
    ] = False,
    values: Annotated[
        bool,
        typer.Option(
            "--values",
            help="Also record each line's parameter values (for DeepLog's value model).",
        ),
    ] = False,
    engine: Engine = "local",
    scheduler: Scheduler = None,
    workers: Workers = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Parse raw logs into an events table with stable template ids."""
    from logsieve.cli.ui import byte_progress
    from logsieve.parsing.masks import Mask
    from logsieve.pipeline.jobs import parse_job
    from logsieve.scale.cluster import check_engine

    quiet_logs(quiet or as_json)
    masks = [Mask.parse(m) for m in mask or []]
    if check_engine(engine, scheduler, workers) == "dask":
        from logsieve.errors import LogsieveError
        from logsieve.scale.jobs import dask_parse_job

        if values:
            raise LogsieveError("--values is not available with --engine dask yet: parse locally")

        summary = dask_parse_job(
            inputs, output, scheduler=scheduler, workers=workers, format=format, masks=masks,
            state=state, match_only=match_only, templates_out=templates_out, truth=truth,
            no_templates=no_templates, depth=depth, sim_th=sim_th,
        )  # fmt: skip
        emit(summary, as_json, quiet, "parse")
        return
    with byte_progress("parsing", enabled=not (quiet or as_json)) as progress:
        summary = parse_job(
            inputs, output, format=format, masks=masks, state=state, match_only=match_only,
            templates_out=templates_out, truth=truth, no_templates=no_templates,
            progress=progress, depth=depth, sim_th=sim_th, values=values,
        )  # fmt: skip
    emit(summary, as_json, quiet, "parse")
