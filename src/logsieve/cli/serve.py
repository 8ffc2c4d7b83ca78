"""``logsieve serve``: the scoring service and the operators' page
(:mod:`logsieve.service`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import app


@app.command()
def serve(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory.")],
    state_dir: Annotated[
        Path,
        typer.Option("--state-dir", help="Alerts, checkpoints and the ingest spool (resumed)."),
    ],
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; not loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8321,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="LOGSIEVE_TOKEN",
            show_envvar=True,
            help="Bearer token every /v1 route and the page require.",
        ),
    ] = None,  # fmt: skip
    watch: Annotated[
        list[str] | None,
        typer.Option("--watch", help="Also follow this log file (repeatable), as `watch` does."),
    ] = None,
    max_windows: Annotated[
        int, typer.Option("--max-windows", help="Windows per /v1/score request at most.")
    ] = 1000,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", help="Request body size limit (MiB).")
    ] = 16.0,
    score_memo_mb: Annotated[
        float,
        typer.Option(
            "--score-memo-mb",
            help="Memory for remembered /v1/score results per model version (MiB; 0: none).",
        ),
    ] = 64.0,
) -> None:
    """Serve /v1/score, /v1/ingest, alerts (with SSE and feedback), /metrics and a live page."""
    from logsieve.errors import InputError, LogsieveError
    from logsieve.service.server import check_bind

    check_bind(host, token)  # before any heavy import: a refused bind fails at once
    if not (0 < port < 65536):
        raise LogsieveError(f"--port must be 1..65535, not {port}")
    if max_windows < 1 or max_body_mb <= 0:
        raise LogsieveError("--max-windows and --max-body-mb must be positive")
    if score_memo_mb < 0:
        raise LogsieveError(f"--score-memo-mb must be >= 0, not {score_memo_mb}")
    if not (model / "pipeline.json").is_file() and not (model / "model.json").is_file():
        raise InputError(model, "not a model directory")
    for path in watch or []:
        if not Path(path).is_file():
            raise InputError(path, "--watch file not found")
    try:
        from logsieve.service.app import ServiceConfig
        from logsieve.service.server import serve as run
    except ImportError as exc:
        raise LogsieveError(
            f"the service needs its extra: pip install 'logsieve[serve]' ({exc.name} missing)"
        ) from exc

    cfg = ServiceConfig(model_dir=model, state_dir=state_dir, watch=list(watch or []),
                        token=token, max_windows=max_windows,
                        max_body_bytes=int(max_body_mb * 1024 * 1024),
                        score_memo_bytes=int(score_memo_mb * 1024 * 1024))  # fmt: skip
    typer.echo(f"logsieve serve: http://{host}:{port}/ (OpenAPI at /docs)", err=True)
    run(cfg, host, port)
