"""``logsieve datasets list`` and ``logsieve datasets fetch NAME``: the public Loghub
datasets of :mod:`logsieve.datasets`, shown as a rich table or JSON, fetched with a progress
bar on stderr."""

from __future__ import annotations

import json as _json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from logsieve.cli._common import Json, Quiet, app

if TYPE_CHECKING:
    from rich.console import Console

    from logsieve.datasets import DatasetInfo
    from logsieve.datasets.fetch import Registry

__all__ = ["datasets_app", "fetch_command", "list_command"]

datasets_app = typer.Typer(help="Public Loghub datasets: list and download.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")


def _size_text(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _row(info: DatasetInfo, home: str | Path | None) -> dict:
    from logsieve.datasets import cache_status, dataset_dir

    status = cache_status(info, home)
    return {
        "name": info.name,
        "system": info.system,
        "file": info.file,
        "size": info.size,
        "size_text": _size_text(info.size),
        "format": info.format,
        "labels": info.labels,
        "lines": info.lines,
        "raw_bytes": info.raw_bytes,
        "status": status,
        "cached": status in ("downloaded", "ready"),
        "path": str(dataset_dir(info, home)),
        "sha256_known": info.sha256 is not None,
        "md5_known": info.md5 is not None,
        "description": info.description,
    }


def list_command(
    json: bool = False,
    home: str | Path | None = None,
    *,
    registry: Registry = None,
    console: Console | None = None,
) -> list[dict]:
    """Print the known datasets (a table, or JSON with ``json=True``) and return the rows.

    Each row has ``name, system, file, size, size_text, format, labels, lines, raw_bytes,
    status, cached, path, sha256_known, md5_known, description``; ``status`` is one of
    ``missing, partial, unverified, downloaded, ready``.
    """
    from rich.console import Console
    from rich.table import Table

    from logsieve.datasets import list_datasets, logsieve_home

    rows = [_row(info, home) for info in list_datasets(registry)]
    out = console or Console()
    if json:
        out.print_json(_json.dumps(rows))
        return rows
    cache = (Path(home).expanduser() if home is not None else logsieve_home()) / "datasets"
    table = Table(
        title="Datasets", title_justify="left", caption=f"cache: {cache}", caption_justify="left"
    )
    for column, justify in (
        ("name", "left"),
        ("archive", "left"),
        ("size", "right"),
        ("format", "left"),
        ("labels", "left"),
        ("lines", "right"),
        ("cached", "left"),
    ):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for info, row in zip(list_datasets(registry), rows, strict=True):
        table.add_row(
            row["name"],
            row["file"],
            row["size_text"],
            row["format"] or "-",
            info.label_kind,
            f"{row['lines']:,}" if row["lines"] else "?",
            row["status"],
        )
    out.print(table)
    return rows


def fetch_command(
    name: str,
    home: str | Path | None = None,
    quiet: bool = False,
    *,
    base_url: str | None = None,
    extract: bool = True,
    verify: bool = False,
    registry: Registry = None,
    console: Console | None = None,
) -> Path:
    """Download, verify and unpack one dataset, with a progress bar on stderr unless
    ``quiet``; prints the dataset folder on stdout (unless quiet) and returns it."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from logsieve.datasets import cache_status, extract_dataset, fetch, get_dataset

    info = get_dataset(name, registry)
    err = console or Console(stderr=True)
    if quiet:
        folder = fetch(info, home, base_url, None, extract, verify=verify)
        return folder
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err) as bar:
        task: list[TaskID] = []

        def update(done: int, total: int | None) -> None:
            if not task:
                task.append(bar.add_task(info.file, total=total, completed=done))
            else:
                bar.update(task[0], completed=done, total=total)

        folder = fetch(info, home, base_url, update, extract=False, verify=verify)
    if extract:
        with err.status(f"unpacking {info.file}"):
            folder = extract_dataset(info, home)
    err.print(f"{info.name}: {cache_status(info, home)} in {folder}")
    Console().print(str(folder), soft_wrap=True, highlight=False)
    return folder


@datasets_app.command("list")
def datasets_list(
    home: Annotated[
        Path | None, typer.Option("--home", help="Cache directory (default $LOGSIEVE_HOME).")
    ] = None,
    as_json: Json = False,
) -> None:
    """List the downloadable datasets and whether they are cached."""
    list_command(json=as_json, home=home)


@datasets_app.command("fetch")
def datasets_fetch(
    name: Annotated[
        str, typer.Argument(help="Dataset name, e.g. hdfs or bgl (see `datasets list`).")
    ],
    home: Annotated[
        Path | None, typer.Option("--home", help="Cache directory (default $LOGSIEVE_HOME).")
    ] = None,
    no_extract: Annotated[
        bool, typer.Option("--no-extract", help="Download and verify only.")
    ] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Re-hash a cached archive.")] = False,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Mirror to download from (default: the Zenodo record)."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Download (with resume and checksum) and unpack a dataset; prints its folder."""
    fetch_command(name, home, quiet, base_url=base_url, extract=not no_extract, verify=verify)
