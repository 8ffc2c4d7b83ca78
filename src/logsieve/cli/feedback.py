"""``logsieve feedback``: teach a model that windows or alerts are normal (or anomalous)
(:func:`logsieve.pipeline.feedback.apply_feedback`), or roll back to the previous version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import Json, Quiet, app, emit, quiet_logs


@app.command()
def feedback(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory to teach.")],
    windows: Annotated[
        Path | None, typer.Option("--windows", help="Windows table holding the marked windows.")
    ] = None,
    window: Annotated[
        list[str] | None, typer.Option("--window", help="Window id to mark (repeatable).")
    ] = None,
    alerts: Annotated[
        Path | None, typer.Option("--alerts", help="Alerts JSONL file (as the watcher writes).")
    ] = None,
    alert: Annotated[
        list[str] | None, typer.Option("--alert", help="Alert id to mark (repeatable).")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="What the marked windows are: normal|anomaly.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the new version here (default: in place)."),
    ] = None,
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="window: the marked windows exactly, plus the model's guarded learning; "
            "pattern: also clear windows like them (generalises; may cost recall).",
        ),
    ] = "window",
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Restore the previous version (a new number).")
    ] = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Teach a model from marked windows or alerts; a new model version, atomically."""
    from logsieve.errors import LogsieveError
    from logsieve.pipeline import Pipeline
    from logsieve.pipeline.core import read_windows
    from logsieve.pipeline.feedback import (
        apply_feedback,
        read_alerts,
        select_windows,
        windows_for_alerts,
    )
    from logsieve.pipeline.feedback import rollback as do_rollback

    quiet_logs(quiet or as_json)
    if rollback:
        if windows or window or alerts or alert or label:
            raise LogsieveError("--rollback takes only -m MODEL_DIR [-o OUT_DIR]")
        emit(do_rollback(model, output), as_json, quiet, "feedback")
        return
    if label not in ("normal", "anomaly"):
        raise LogsieveError("--label normal|anomaly is required")
    if alerts is not None:
        if window:
            raise LogsieveError("give --window with --windows, --alert with --alerts")
        pipe = Pipeline.load(model)
        marked = windows_for_alerts(pipe, read_alerts(alerts), alert or None, windows)
    elif windows is not None:
        if not window:
            raise LogsieveError("--windows needs at least one --window ID")
        table, _ = read_windows(windows)
        marked = select_windows(table, window, windows)
    else:
        raise LogsieveError("give --windows W.parquet --window ID... or --alerts A.jsonl")
    emit(apply_feedback(model, marked, label, output, scope=scope), as_json, quiet, "feedback")
