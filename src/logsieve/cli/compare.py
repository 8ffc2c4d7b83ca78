"""``logsieve compare``: several detectors fitted on the same windows, side by side
(:func:`logsieve.evaluation.compare.compare_files`).

``logsieve compare windows.parquet --models ae,lstm_ae,iforest_ae --top 10
[--events events.parquet] [--plots DIR] [--output report.json] [--set ae.epochs=20]``

- ``--events``: the parsed events table the windows come from; its raw lines are
  attached to the windows (raw-text models such as ``bursic`` need them, and the
  report then shows raw lines) and its templates are passed to the models.
- ``--plots DIR``: one PNG histogram of scores per model.
- ``--output FILE``: the JSON report (written atomically).
- ``--set MODEL.PARAM=VALUE`` (repeatable): constructor parameters per model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import Json, Quiet, app, echo_json, quiet_logs


@app.command()
def compare(
    windows: Annotated[Path, typer.Argument(help="Windows table to compare the models on.")],
    models_: Annotated[
        str, typer.Option("--models", help="Comma-separated detector names.")
    ] = "ae,lstm_ae,iforest_ae",
    top: Annotated[int, typer.Option("--top", help="Top outliers shown per model.")] = 10,
    events: Annotated[
        Path | None, typer.Option("--events", help="Events table: raw lines and templates.")
    ] = None,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Directory for score histograms (PNG).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the full report as JSON.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Model parameter MODEL.key=value (repeatable)."),
    ] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Fit several detectors on the same windows: top outliers, score distributions, overlap."""
    from logsieve.cli.options import parse_model_params
    from logsieve.evaluation.compare import compare_files
    from logsieve.evaluation.compare import render_text as render_compare

    quiet_logs(quiet or as_json)
    report = compare_files(
        windows, models_, top=top, events_path=events, plot_dir=plots, output=output,
        params=parse_model_params(set_) if set_ else None,
    )  # fmt: skip
    if as_json:
        echo_json(report)
    elif not quiet:
        typer.echo(render_compare(report))
