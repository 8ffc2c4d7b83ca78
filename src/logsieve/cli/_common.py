"""What every command module shares: the typer app, the --quiet/--json options, logging
and summary output. Command modules register their commands on :data:`app` when imported
(:mod:`logsieve.cli.app` imports them all).

Library errors (:class:`~logsieve.errors.LogsieveError`) become one line on stderr and
exit code 2. Heavy modules are imported inside the commands so that ``logsieve --help``
stays instant.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from logsieve._version import __version__

__all__ = ["Json", "Quiet", "app", "echo_json", "emit", "quiet_logs"]


class _Group(TyperGroup):
    """Turns library errors into one line on stderr and exit code 2 (also under CliRunner)."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer's vendored click)
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

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
Json = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"logsieve {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).")
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    setup_logging(level)


def setup_logging(level: int) -> None:
    """Library log records go to stderr through rich, at ``level`` and above."""
    from rich.logging import RichHandler

    from logsieve.cli.ui import err_console

    root = logging.getLogger("logsieve")
    root.handlers[:] = [RichHandler(console=err_console(), show_path=False, show_time=False)]
    root.setLevel(level)
    root.propagate = False


def quiet_logs(quiet: bool) -> None:
    """--quiet / --json: keep stderr for errors only."""
    if quiet:
        logging.getLogger("logsieve").setLevel(logging.ERROR)


def echo_json(obj: Any) -> None:
    """One line of JSON on stdout (values JSON cannot hold are written as strings)."""
    typer.echo(json.dumps(obj, default=str))


def emit(summary: dict[str, Any], as_json: bool, quiet: bool, title: str) -> None:
    """A command's summary: JSON with ``--json``, a table unless ``--quiet``."""
    from logsieve.cli.ui import print_summary

    if as_json:
        echo_json(summary)
    elif not quiet:
        print_summary(title, summary)
