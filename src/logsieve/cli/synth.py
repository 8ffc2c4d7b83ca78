"""``logsieve synth``: a synthetic HDFS-like log with labelled anomalies
(:func:`logsieve.synth.generate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import Json, Quiet, app, emit


@app.command()
def synth(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Log file to write (.gz compresses).")
    ],
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=1, help="Exact number of lines.")
    ] = 100_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    anomaly_ratio: Annotated[
        float, typer.Option("--anomaly-ratio", help="Fraction of anomalous blocks.")
    ] = 0.03,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Generate a realistic HDFS-like log with labelled, injected anomalies."""
    from logsieve.synth import generate

    stats = generate(output, lines=lines, seed=seed, anomaly_ratio=anomaly_ratio)
    emit(stats.to_dict(), as_json, quiet, "synth")
