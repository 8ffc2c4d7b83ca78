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
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Parse raw logs into an events table with stable template ids."""
    from logsieve.cli import commands

    _quiet(quiet or as_json)
    summary = commands.parse(
        inputs, output, format, mask or [], state, match_only, templates_out, truth, depth, sim_th, quiet or as_json
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
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Group events into sessions or count/time windows."""
    from logsieve.cli.group import group_command

    _quiet(quiet or as_json)
    summary = group_command(events, output, session=session, window=window, time=time, idle=idle, labels=labels)
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
