"""``logsieve workflow``: DeepLog's workflow picture of a model
(:func:`logsieve.pipeline.workflow.workflow_job`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import Json, Quiet, app, emit, quiet_logs


@app.command()
def workflow(
    model: Annotated[Path, typer.Argument(help="Model directory (from `logsieve train`).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output: .json, .dot, .svg or .html.")
    ],
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Workflow model (DeepLog section 5) of the training windows: divergence, loops, tasks."""
    from logsieve.pipeline.workflow import workflow_job

    quiet_logs(quiet or as_json)
    emit(workflow_job(model, output), as_json, quiet, "workflow")
