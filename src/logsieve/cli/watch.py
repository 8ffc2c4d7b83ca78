"""``logsieve watch``: online detection on live logs (:class:`logsieve.streaming.watcher.Watcher`),
crash-safe and exactly once; alerts as JSON lines and on the terminal."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from logsieve.cli._common import Json, Quiet, app, echo_json, quiet_logs


@app.command()
def watch(
    inputs: Annotated[
        list[str], typer.Argument(help="Log files to follow (`-`: stdin; .gz: read once).")
    ],
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory.")],
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Checkpoints and status.json (resumed on restart).")
    ],
    alerts: Annotated[
        Path | None, typer.Option("--alerts", help="Append one JSON object per alert here.")
    ] = None,
    no_follow: Annotated[
        bool, typer.Option("--no-follow", help="Read to the end, close every window, exit.")
    ] = False,
    format: Annotated[str | None, typer.Option("--format", "-f", help="Log format.")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Session regex.")] = None,
    session_field: Annotated[
        str | None, typer.Option("--session-field", help="Sessions keyed by a format field.")
    ] = None,
    window: Annotated[str | None, typer.Option("--window", help="Count windows N[,STEP].")] = None,
    time: Annotated[str | None, typer.Option("--time", help="Time windows DUR[,STEP].")] = None,
    idle: Annotated[
        str | None, typer.Option("--idle", help="Close a session after DUR without a line.")
    ] = None,
    max_open: Annotated[
        int, typer.Option("--max-open", help="Open windows kept; the oldest is closed beyond.")
    ] = 1_000_000,
    max_window_lines: Annotated[
        int, typer.Option("--max-window-lines", help="Close a window at this many lines.")
    ] = 100_000,
    max_window_seconds: Annotated[
        float | None,
        typer.Option("--max-window-seconds", help="Close a window spanning more log seconds."),
    ] = None,
    checkpoint_lines: Annotated[
        int, typer.Option("--checkpoint-lines", help="Checkpoint every N lines...")
    ] = 1_000_000,
    checkpoint_seconds: Annotated[
        float, typer.Option("--checkpoint-seconds", help="...or every T seconds.")
    ] = 10.0,
    exec_cmd: Annotated[
        str | None, typer.Option("--exec", help="Run CMD per alert (the alert JSON on stdin).")
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST each alert's JSON to URL.")
    ] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Follow logs like `tail -F` and alert online; SIGTERM/SIGINT checkpoint and exit 0."""
    from logsieve.errors import LogsieveError
    from logsieve.grouping.specs import build_spec
    from logsieve.pipeline import Pipeline

    quiet_logs(quiet or as_json)
    grouping = None
    if session or window or time or session_field or idle:
        default = None
        if idle and not (session or session_field):
            default = Pipeline.load(model).grouping
        grouping = build_spec(session=session, window=window, time=time, idle=idle,
                              session_field=session_field, default=default)  # fmt: skip
    if max_open < 1 or max_window_lines < 1 or checkpoint_lines < 1:
        raise LogsieveError("--max-open, --max-window-lines and --checkpoint-lines must be >= 1")
    show = not (quiet or as_json)
    console: Any = None
    if show:
        from logsieve.cli.ui import err_console

        console = err_console()

    def on_alert(rec: dict[str, Any]) -> None:
        if console is not None:
            if sys.stderr.isatty():
                sys.stderr.write("\r\033[K")  # the alert replaces the progress line
            trig = rec.get("trigger") or {}
            console.print(
                f"[bold red]ALERT[/] {rec['alert_id']} window {rec['window_id']} "
                f"score {rec['score']:.4g} > {rec['threshold']:.4g} "
                f"({trig.get('kind')} {trig.get('source')}:{trig.get('line_no')})",
                highlight=False,
            )

    def on_progress(st: dict[str, Any]) -> None:
        if console is not None and sys.stderr.isatty():
            sys.stderr.write(
                f"\r{st['lines_processed']:,} lines  {st['lines_per_second']:,.0f} lines/s  "
                f"{st['open_windows']:,} open windows  {st['alerts_emitted']:,} alerts\033[K"
            )
            sys.stderr.flush()

    gc_was = gc.isenabled()
    gc.disable()  # no cycle collections while torch and the model load (~0.2 s of them);
    try:  # Watcher.run collects by hand between batches
        from logsieve.streaming.watcher import WatchConfig, Watcher

        cfg = WatchConfig(
            inputs=inputs, model_dir=model, state_dir=state_dir, alerts=alerts,
            follow=not no_follow, format=format, grouping=grouping, max_open=max_open,
            max_window_lines=max_window_lines, max_window_seconds=max_window_seconds,
            checkpoint_lines=checkpoint_lines,
            checkpoint_seconds=checkpoint_seconds, exec_cmd=exec_cmd, webhook=webhook,
            on_alert=on_alert, on_progress=on_progress,
        )  # fmt: skip
        status = Watcher(cfg).run()
    finally:
        if gc_was:
            gc.enable()
    if console is not None and sys.stderr.isatty():
        sys.stderr.write("\n")
    if as_json:
        echo_json(status)
    elif show:
        from logsieve.cli.ui import print_summary

        print_summary("watch", {k: v for k, v in status.items() if not isinstance(v, (list, dict))})
