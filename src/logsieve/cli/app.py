"""The ``logsieve`` command line: a thin layer over the public API.

Every command parses its options, calls library functions, and prints. Library errors
(:class:`~logsieve.errors.LogsieveError`) become one line on stderr and exit code 2. Heavy
modules are imported inside the commands so that ``logsieve --help`` stays instant.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from logsieve._version import __version__


class _Group(TyperGroup):
    """Turns library errors into one line on stderr and exit code 2 (also under CliRunner)."""

    def invoke(self, ctx: typer.Context) -> Any:
        from logsieve.errors import LogsieveError

        try:
            return super().invoke(ctx)
        except LogsieveError as exc:
            typer.echo(f"logsieve: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


app = typer.Typer(
    cls=_Group,
    name="logsieve",
    help="Raw system logs in, explained anomalies out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
datasets_app = typer.Typer(help="Public Loghub datasets: list and download.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
bench_app = typer.Typer(help="Speed and accuracy against peer packages, side by side.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
Json = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"logsieve {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    _setup_logging(level)


def _setup_logging(level: int) -> None:
    from rich.logging import RichHandler

    from logsieve.cli.ui import err_console

    root = logging.getLogger("logsieve")
    root.handlers[:] = [RichHandler(console=err_console(), show_path=False, show_time=False)]
    root.setLevel(level)
    root.propagate = False


def _quiet(quiet: bool) -> None:
    """--quiet / --json: keep stderr for errors only."""
    if quiet:
        logging.getLogger("logsieve").setLevel(logging.ERROR)


def _emit(summary: dict[str, Any], as_json: bool, quiet: bool, title: str) -> None:
    from logsieve.cli.ui import print_summary

    if as_json:
        typer.echo(json.dumps(summary, default=str))
    elif not quiet:
        print_summary(title, summary)


# --------------------------------------------------------------------------- formats
@app.command()
def formats(as_json: Json = False) -> None:
    """List the built-in log formats."""
    from logsieve.formats import list_formats

    rows = [
        {"name": f.name, "pattern": f.pattern, "labels": f.label_field or "", "description": f.description}
        for f in list_formats()
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    from logsieve.cli.ui import print_table

    print_table("Built-in formats (--format NAME, or a custom format string)", rows)


# --------------------------------------------------------------------------- parse
@app.command()
def parse(
    inputs: Annotated[list[Path], typer.Argument(help="Log files, plain or .gz, parsed as one stream.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Events table to write (.parquet).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="Built-in format name or a format string like '<Date> <Time> <Content>'.")
    ] = "hdfs",
    mask: Annotated[
        list[str] | None, typer.Option("--mask", help="Extra mask NAME=REGEX (repeatable), applied first.")
    ] = None,
    state: Annotated[
        Path | None, typer.Option("--state", help="Parser state JSON: loaded if it exists, saved after parsing.")
    ] = None,
    match_only: Annotated[
        bool, typer.Option("--match-only", help="Never create templates; unseen messages get E0 <unseen>.")
    ] = False,
    templates_out: Annotated[
        Path | None, typer.Option("--templates-out", help="Write event_id,template,count CSV.")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Loghub *_structured.csv ground truth: print GA, PA, F1-GA.")
    ] = None,
    depth: Annotated[int | None, typer.Option(help="Drain tree depth (default: the format's preset).")] = None,
    sim_th: Annotated[float | None, typer.Option(help="Drain similarity threshold (default: preset).")] = None,
    no_templates: Annotated[
        bool, typer.Option("--no-templates", help="Skip template mining: raw messages only (for raw-text models).")
    ] = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Parse raw logs into an events table with stable template ids."""
    from logsieve.cli import commands

    _quiet(quiet or as_json)
    summary = commands.parse(
        inputs, output, format, mask or [], state, match_only, templates_out, truth, depth, sim_th, quiet or as_json,
        no_templates=no_templates,
    )
    _emit(summary, as_json, quiet, "parse")


# --------------------------------------------------------------------------- group
@app.command()
def group(
    events: Annotated[Path, typer.Argument(help="Events table from `logsieve parse`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Windows table to write (.parquet).")],
    session: Annotated[
        str | None, typer.Option("--session", help=r"Session key regex (HDFS: blk_-?\d+).")
    ] = None,
    window: Annotated[str | None, typer.Option("--window", help="Count windows N[,STEP].")] = None,
    time: Annotated[str | None, typer.Option("--time", help="Time windows DUR[,STEP], e.g. 30m or 1h,10m.")] = None,
    idle: Annotated[str | None, typer.Option("--idle", help="Cut sessions at a gap longer than DUR.")] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Side-file labels: BlockId,Label CSV or anomalous ids, one per line.")
    ] = None,
    session_field: Annotated[
        str | None,
        typer.Option(
            "--session-field", help="Sessions keyed by a field of the format instead, e.g. IP (weblog); --idle 30m by default."
        ),
    ] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Group events into sessions or count/time windows."""
    from logsieve.cli.group import group_command

    _quiet(quiet or as_json)
    summary = group_command(
        events, output, session=session, window=window, time=time, idle=idle, labels=labels,
        session_field=session_field,
    )  # fmt: skip
    _emit(summary, as_json, quiet, "group")


@app.command()
def sequences(
    inputs: Annotated[list[Path], typer.Argument(help="DeepLog key files or id,keys files.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Windows table to write (.parquet).")],
    label: Annotated[int | None, typer.Option("--label", help="Label for every sequence (0 or 1).")] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Import pre-parsed key sequences as a windows table."""
    from logsieve.cli.group import sequences_command

    if label is not None and label not in (0, 1):
        raise typer.BadParameter("--label must be 0 or 1")
    summary = sequences_command(inputs, output, label=label)
    _emit(summary, as_json, quiet, "sequences")


# --------------------------------------------------------------------------- synth
@app.command()
def synth(
    output: Annotated[Path, typer.Option("--output", "-o", help="Log file to write (.gz compresses).")],
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="Exact number of lines.")] = 100_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    anomaly_ratio: Annotated[float, typer.Option("--anomaly-ratio", help="Fraction of anomalous blocks.")] = 0.03,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Generate a realistic HDFS-like log with labelled, injected anomalies."""
    from logsieve.cli import commands

    summary = commands.synth(output, lines, seed, anomaly_ratio)
    _emit(summary, as_json, quiet, "synth")


# --------------------------------------------------------------------------- datasets
@datasets_app.command("list")
def datasets_list(
    home: Annotated[Path | None, typer.Option("--home", help="Cache directory (default $LOGSIEVE_HOME).")] = None,
    as_json: Json = False,
) -> None:
    """List the downloadable datasets and whether they are cached."""
    from logsieve.cli.datasets import list_command

    list_command(json=as_json, home=home)


@datasets_app.command("fetch")
def datasets_fetch(
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. hdfs or bgl (see `datasets list`).")],
    home: Annotated[Path | None, typer.Option("--home", help="Cache directory (default $LOGSIEVE_HOME).")] = None,
    no_extract: Annotated[bool, typer.Option("--no-extract", help="Download and verify only.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Re-hash a cached archive.")] = False,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Mirror to download from (default: the Zenodo record).")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Download (with resume and checksum) and unpack a dataset; prints its folder."""
    from logsieve.cli.datasets import fetch_command

    fetch_command(name, home, quiet, base_url=base_url, extract=not no_extract, verify=verify)


# --------------------------------------------------------------------------- models
@app.command()
def models(as_json: Json = False) -> None:
    """List every detector: input kind, whether it needs labels, paper."""
    from logsieve.cli.models import models_command

    rows = models_command()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    from logsieve.cli.ui import print_table

    print_table(
        "Detectors (logsieve train --model NAME)",
        [
            {"name": r["name"], "input": r["input_kind"], "labels": "yes" if r["requires_labels"] else "no",
             "description": r["description"]}
            for r in rows
        ],
    )


@app.command()
def train(
    windows: Annotated[Path, typer.Argument(help="Windows table (from `group` or `sequences`).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Detector name (see `logsieve models`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Model parameter key=value (repeatable; JSON values).")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="How validation/test windows are cut: chronological or random.")] = "chronological",
    valid: Annotated[float, typer.Option("--valid", help="Validation fraction (thresholds, early stopping).")] = 0.1,
    test: Annotated[float, typer.Option("--test", help="Held-out test fraction, written to MODEL_DIR/test_windows.parquet.")] = 0.0,
    valid_file: Annotated[Path | None, typer.Option("--valid-file", help="Validation windows from a file instead.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the split and the model.")] = 0,
    normal_only: Annotated[bool, typer.Option("--normal-only", help="Drop anomalous windows from training.")] = False,
    include_anomalies: Annotated[
        bool, typer.Option("--include-anomalies", help="Let (semi-)unsupervised models train on anomalous windows too.")
    ] = False,
    templates: Annotated[
        Path | None,
        typer.Option("--templates", help="Templates file overriding those the windows table carries (parse --templates-out CSV, Loghub CSV)."),
    ] = None,
    events: Annotated[Path | None, typer.Option("--events", help="Events table: raw messages for text models.")] = None,
    state: Annotated[
        Path | None, typer.Option("--state", help="Parser state overriding the one the windows table carries.")
    ] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Train a detector on a windows table; thresholds come from validation windows only."""
    from logsieve.cli import commands

    _quiet(quiet or as_json)
    summary = commands.train(
        windows, model, set_ or [], output, split=split, valid=valid, test=test, valid_file=valid_file, seed=seed,
        normal_only=normal_only, include_anomalies=include_anomalies, templates=templates, events=events,
        state=state, quiet=quiet or as_json,
    )
    _emit(summary, as_json, quiet, "train")


@app.command()
def detect(
    input: Annotated[Path, typer.Argument(help="Windows or events table (.parquet), or a raw log.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory from `logsieve train`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Scores to write (.parquet).")],
    format: Annotated[str | None, typer.Option("--format", "-f", help="Format of a raw log (default: the model's).")] = None,
    events: Annotated[Path | None, typer.Option("--events", help="Events table, to show raw lines and feed text models.")] = None,
    state: Annotated[Path | None, typer.Option("--state", help="Parser state for a raw log (default: the model's).")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Session regex (default: the model's grouping).")] = None,
    session_field: Annotated[str | None, typer.Option("--session-field", help="Sessions keyed by a format field.")] = None,
    window: Annotated[str | None, typer.Option("--window", help="Count windows N[,STEP].")] = None,
    time: Annotated[str | None, typer.Option("--time", help="Time windows DUR[,STEP].")] = None,
    idle: Annotated[str | None, typer.Option("--idle", help="Cut sessions at a gap longer than DUR.")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="Side-file labels for a raw log.")] = None,
    top: Annotated[
        int, typer.Option("--top", help="Print the N highest-scoring windows (flagged or not), explained, with raw lines.")
    ] = 0,
    templates: Annotated[
        Path | None, typer.Option("--templates", help="Templates file: semantic models embed new templates.")
    ] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Score windows, events or a raw log with a trained model; explain the worst ones."""
    from logsieve.cli import commands

    _quiet(quiet or as_json)
    summary, shown = commands.detect(
        input, model, output, format=format, events=events, state=state, session=session, window=window,
        time=time, labels=labels, top=top, templates=templates, session_field=session_field, idle=idle,
    )
    if as_json:
        typer.echo(json.dumps({**summary, "top": shown}, default=str))
        return
    if not quiet:
        from logsieve.cli.ui import print_alerts, print_summary

        print_summary("detect", summary)
        print_alerts(shown)


@app.command()
def evaluate(
    scores: Annotated[Path, typer.Argument(help="Scores from `logsieve detect` (with labels).")],
    as_json: Json = False,
) -> None:
    """Precision, recall, specificity, F1, ROC-AUC, PR-AUC of a detect output."""
    from logsieve.cli.models import evaluate_command

    _emit(evaluate_command(scores), as_json, False, "evaluate")


@app.command()
def compare(
    windows: Annotated[Path, typer.Argument(help="Windows table to compare the models on.")],
    models_: Annotated[str, typer.Option("--models", help="Comma-separated detector names.")] = "ae,lstm_ae,iforest_ae",
    top: Annotated[int, typer.Option("--top", help="Top outliers shown per model.")] = 10,
    events: Annotated[Path | None, typer.Option("--events", help="Events table: raw lines and templates.")] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Directory for score histograms (PNG).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the full report as JSON.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Model parameter MODEL.key=value (repeatable).")] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Fit several detectors on the same windows: top outliers, score distributions, overlap."""
    from logsieve.cli.compare import compare_command, render_compare

    _quiet(quiet or as_json)
    report = compare_command(windows, models_, top=top, events_path=events, plot_dir=plots, output=output, params=set_ or None)
    if as_json:
        typer.echo(json.dumps(report, default=str))
    elif not quiet:
        typer.echo(render_compare(report))


@app.command()
def experiment(
    config: Annotated[Path, typer.Argument(help="Experiment grid (TOML), e.g. experiments/quick.toml.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run directory (resumable).")],
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these aspects (repeatable or a,b).")] = None,
    max_cells: Annotated[int | None, typer.Option("--max-cells", help="Stop after N new cells.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the grid size and exit.")] = False,
    retry_errors: Annotated[bool, typer.Option("--retry-errors", help="Run failed cells again.")] = False,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes (one torch thread each).")] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Run the study grid (datasets x grouping x split x models x seeds); resumes where it stopped."""
    from logsieve.cli.experiment import experiment_command
    from logsieve.cli.ui import cell_progress

    _quiet(quiet or as_json)
    with cell_progress(enabled=not (quiet or as_json or dry_run)) as cb:
        summary = experiment_command(
            config, output, max_cells=max_cells, dry_run=dry_run, only=only, retry_errors=retry_errors, jobs=jobs,
            progress=cb,
        )
    _emit(summary, as_json, quiet, "experiment")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of `logsieve experiment`.")],
    as_json: Json = False,
) -> None:
    """Rebuild results.parquet, report.md and report.html of an experiment run."""
    from logsieve.cli.experiment import report_command

    _emit(report_command(run_dir), as_json, False, "report")


# --------------------------------------------------------------------------- bench
@bench_app.command("deeplog")
def bench_deeplog(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Folder with DeepLog's hdfs_train and hdfs_test_abnormal "
                     "[default: $LOGSIEVE_SHARED_DATA/hdfs_deeplog, else ../shared/data/hdfs_deeplog]."),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs of both sides.")] = 10,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Torch threads of both sides.")] = 1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device", help="logsieve's device (cpu, cuda, auto).")] = "cpu",
    skip_peer: Annotated[bool, typer.Option("--skip-peer", help="Do not run the PyPI deeplog package.")] = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """DeepLog on the paper's HDFS sessions: logsieve against the PyPI deeplog 0.0.3 package."""
    from contextlib import nullcontext

    from logsieve.cli.ui import err_console, print_bench_deeplog
    from logsieve.evaluation.bench import bench_deeplog as run
    from logsieve.evaluation.bench import default_deeplog_data, load_deeplog_hdfs

    _quiet(quiet or as_json)
    train, test = load_deeplog_hdfs(data if data is not None else default_deeplog_data())
    what = "logsieve" if skip_peer else "logsieve, then deeplog 0.0.3"
    busy = nullcontext() if quiet or as_json else err_console().status(f"training and scoring DeepLog: {what}")
    with busy:
        result = run(train, test, epochs=epochs, threads=threads, seed=seed, device=device, peer=not skip_peer)
    if as_json:
        typer.echo(json.dumps(result, default=str))
    elif not quiet:
        print_bench_deeplog(result)


# --------------------------------------------------------------------------- demo
@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--workdir", "-w", help="Where the demo writes its files.")] = Path(
        "out/demo"
    ),
    lines: Annotated[int, typer.Option("--lines", "-n", help="Synthetic log size.")] = 200_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="Use this HDFS log (plain or .gz) instead of a synthetic one.")
    ] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="Labels for --dataset (BlockId,Label CSV).")] = None,
    as_json: Json = False,
) -> None:
    """Generate (or take) an HDFS log, parse it, group it by block, and summarise."""
    from logsieve.cli import commands

    summary = commands.demo(workdir, lines, seed, dataset, labels, quiet=as_json)
    _emit(summary, as_json, False, "demo")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("logsieve: interrupted\n")
        raise SystemExit(130) from None
