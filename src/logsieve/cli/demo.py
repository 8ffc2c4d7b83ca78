"""``logsieve demo``: every stage once, end to end (:func:`logsieve.evaluation.demo.run_demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import Json, app, emit


@app.command()
def demo(
    workdir: Annotated[
        Path, typer.Option("--workdir", "-w", help="Where the demo writes its files.")
    ] = Path("out/demo"),
    lines: Annotated[int, typer.Option("--lines", "-n", help="Synthetic log size.")] = 200_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    dataset: Annotated[
        Path | None,
        typer.Option(
            "--dataset", help="Use this HDFS log (plain or .gz) instead of a synthetic one."
        ),
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Labels for --dataset (BlockId,Label CSV).")
    ] = None,
    as_json: Json = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Then serve the demo's model (`logsieve serve` on 127.0.0.1) and stream its "
            "held-out test lines in, so alerts appear on the page.",
        ),
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Port for --serve.")] = 8321,
) -> None:
    """Generate (or take) an HDFS log, parse it, group it by block, and summarise."""
    from logsieve.cli.ui import byte_progress, epoch_progress, print_alerts, print_table
    from logsieve.errors import LogsieveError
    from logsieve.evaluation.demo import DEMO_EPOCHS, run_demo

    if serve and not (0 < port < 65536):
        raise LogsieveError(f"--port must be 1..65535, not {port}")
    if serve:
        try:
            import logsieve.service.demo  # noqa: F401  (fail before the demo's minutes of work)
        except ImportError as exc:
            raise LogsieveError(
                f"--serve needs the serve extra: pip install 'logsieve[serve]' ({exc.name} missing)"
            ) from exc
    show = not as_json
    with (
        byte_progress("parsing", enabled=show) as parse_progress,
        epoch_progress("training DeepLog", total=DEMO_EPOCHS, enabled=show) as train_progress,
    ):
        summary, alerts = run_demo(
            workdir, lines=lines, seed=seed, dataset=dataset, labels=labels, top=3,
            parse_progress=parse_progress, train_progress=train_progress,
        )  # fmt: skip
    if show:
        print_alerts(alerts)
    kinds = summary.pop("caught_by_kind", None) if show else None
    notes = summary.pop("by_design", None) if show else None
    emit(summary, as_json, False, "demo")
    if kinds:
        print_table(
            "caught per injected kind (test windows)",
            [{"kind": kind, **row} for kind, row in kinds.items()],
        )
    for kind, note in (notes or {}).items():
        typer.echo(f"{kind}: {note}")
    if serve:
        from logsieve.service.demo import serve_demo

        def announce(url: str, n: int, state: Path) -> None:
            typer.echo(f"logsieve demo: serving the demo model at {url} (OpenAPI at {url}docs); "
                       f"streaming its {n:,} held-out test lines in; state in {state}; "
                       "Ctrl-C stops", err=True)  # fmt: skip

        serve_demo(workdir, summary, port=port, announce=announce)
