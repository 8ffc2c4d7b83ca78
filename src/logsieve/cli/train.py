"""``logsieve train``: a windows table -> a model directory
(:func:`logsieve.pipeline.jobs.train_job`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import Json, Quiet, app, emit, quiet_logs


def split_fractions(valid: float, test: float, valid_file: Path | None) -> str | None:
    """``--valid``/``--test`` (and ``--valid-file``) -> the ``train,valid[,test]`` split
    string of :func:`~logsieve.pipeline.jobs.train_job` (None: no split)."""
    if valid_file is not None:
        return None if test == 0 else f"{1 - test},0,{test}"
    return f"{1 - valid - test},{valid}" + (f",{test}" if test else "")


@app.command()
def train(
    windows: Annotated[Path, typer.Argument(help="Windows table (from `group` or `sequences`).")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Detector name (see `logsieve models`).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Model parameter key=value (repeatable; JSON values)."),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            "--split", help="How validation/test windows are cut: chronological or random."
        ),
    ] = "chronological",
    valid: Annotated[
        float,
        typer.Option("--valid", help="Validation fraction (thresholds, early stopping)."),
    ] = 0.1,
    test: Annotated[
        float,
        typer.Option(
            "--test",
            help="Held-out test fraction, written to MODEL_DIR/test_windows.parquet.",
        ),
    ] = 0.0,
    valid_file: Annotated[
        Path | None,
        typer.Option("--valid-file", help="Validation windows from a file instead."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the split and the model.")] = 0,
    normal_only: Annotated[
        bool, typer.Option("--normal-only", help="Drop anomalous windows from training.")
    ] = False,
    include_anomalies: Annotated[
        bool,
        typer.Option(
            "--include-anomalies",
            help="Let (semi-)unsupervised models train on anomalous windows too.",
        ),
    ] = False,
    templates: Annotated[
        Path | None,
        typer.Option(
            "--templates",
            help="Templates file overriding those the windows table carries "
            "(parse --templates-out CSV, Loghub CSV).",
        ),
    ] = None,
    events: Annotated[
        Path | None, typer.Option("--events", help="Events table: raw messages for text models.")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="Parser state overriding the one the windows table carries."),
    ] = None,
    ddp: Annotated[
        int | None,
        typer.Option(
            "--ddp",
            help="Train a neural model data-parallel in N processes (torch DDP: gloo on CPU, "
            "nccl on GPU); also runs under torchrun.",
        ),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint-dir",
            help="With --ddp: per-epoch checkpoints, so a restarted job resumes "
            "(default: beside the output, removed after success).",
        ),
    ] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Train a detector on a windows table; thresholds come from validation windows only."""
    from logsieve.cli.options import parse_sets
    from logsieve.cli.ui import epoch_progress
    from logsieve.pipeline.jobs import train_job

    quiet_logs(quiet or as_json)
    params = parse_sets(set_)
    epochs = params.get("epochs")
    total = epochs if isinstance(epochs, int) else None
    if checkpoint_dir is not None and ddp is None:
        from logsieve.errors import LogsieveError

        raise LogsieveError("--checkpoint-dir goes with --ddp")
    if ddp is not None:
        from logsieve.scale.ddp import ddp_train

        args = dict(
            windows_path=windows, model=model, params=params, output_dir=output,
            split=split_fractions(valid, test, valid_file), valid=valid_file, split_method=split,
            seed=seed, train_normal_only=normal_only, include_anomalies=include_anomalies,
            templates=templates, events=events, state=state,
        )  # fmt: skip
        summary = ddp_train(ddp, args, checkpoint_dir)
        summary.pop("history", None)
        emit(summary, as_json, quiet, "train")
        return
    with epoch_progress(f"training {model}", total=total, enabled=not (quiet or as_json)) as cb:
        summary = train_job(
            windows, model, params, output, split=split_fractions(valid, test, valid_file),
            valid=valid_file, split_method=split, seed=seed, train_normal_only=normal_only,
            include_anomalies=include_anomalies, templates=templates, events=events,
            state=state, progress=cb,
        )  # fmt: skip
    summary.pop("history", None)
    emit(summary, as_json, quiet, "train")
