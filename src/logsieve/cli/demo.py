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
) -> None:
    """Generate (or take) an HDFS log, parse it, group it by block, and summarise."""
    from logsieve.cli.ui import byte_progress, epoch_progress, print_alerts, print_table
    from logsieve.evaluation.demo import DEMO_EPOCHS, run_demo

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
