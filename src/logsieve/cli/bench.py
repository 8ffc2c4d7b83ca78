"""``logsieve bench``: speed and accuracy against peer packages
(:mod:`logsieve.evaluation.bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import Json, Quiet, app, echo_json, quiet_logs

bench_app = typer.Typer(
    help="Speed and accuracy against peer packages, side by side.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


@bench_app.command("deeplog")
def bench_deeplog(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Folder with DeepLog's hdfs_train and hdfs_test_abnormal "
            "[default: $LOGSIEVE_SHARED_DATA/hdfs_deeplog, else ../shared/data/hdfs_deeplog].",
        ),
    ] = None,
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="Training epochs of both sides.")
    ] = 10,
    threads: Annotated[
        int, typer.Option("--threads", min=1, help="Torch threads of both sides.")
    ] = 1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[
        str, typer.Option("--device", help="logsieve's device (cpu, cuda, auto).")
    ] = "cpu",
    skip_peer: Annotated[
        bool, typer.Option("--skip-peer", help="Do not run the PyPI deeplog package.")
    ] = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """DeepLog on the paper's HDFS sessions: logsieve against the PyPI deeplog 0.0.3 package."""
    from contextlib import nullcontext

    from logsieve.cli.ui import err_console, print_bench_deeplog
    from logsieve.evaluation.bench import bench_deeplog as run
    from logsieve.evaluation.bench import default_deeplog_data, load_deeplog_hdfs

    quiet_logs(quiet or as_json)
    train, test = load_deeplog_hdfs(data if data is not None else default_deeplog_data())
    what = "logsieve" if skip_peer else "logsieve, then deeplog 0.0.3"
    busy = (
        nullcontext()
        if quiet or as_json
        else err_console().status(f"training and scoring DeepLog: {what}")
    )
    with busy:
        result = run(
            train, test, epochs=epochs, threads=threads, seed=seed, device=device,
            peer=not skip_peer,
        )  # fmt: skip
    if as_json:
        echo_json(result)
    elif not quiet:
        print_bench_deeplog(result)
