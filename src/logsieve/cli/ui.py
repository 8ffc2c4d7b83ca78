"""Terminal output for the CLI (rich): tables, summaries, progress bars, the compare report.
Library code never prints."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table


@cache
def console() -> Console:
    return Console(highlight=False)  # resolves sys.stdout at write time


@cache
def err_console() -> Console:
    return Console(stderr=True, highlight=False)  # resolves sys.stderr at write time


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value) if value else "-"
    return str(value)


def print_summary(title: str, summary: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False, title_justify="left", box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary.items():
        if isinstance(value, dict):
            for k2, v2 in value.items():
                table.add_row(f"{key}.{k2}", _fmt(v2))
        else:
            table.add_row(key, _fmt(value))
    console().print(table)


def print_table(title: str, rows: Sequence[dict[str, Any]]) -> None:
    table = Table(title=title, title_justify="left")
    if not rows:
        console().print(f"{title}: (none)")
        return
    for col in rows[0]:
        table.add_column(str(col))
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    console().print(table)


def print_bench_deeplog(result: dict[str, Any]) -> None:
    """The table of :func:`logsieve.evaluation.bench.bench_deeplog`: logsieve, the peer and
    the paper."""
    from logsieve.evaluation.bench import bench_table

    peer = result["peer"]
    ran = "skipped" not in peer
    data = result["data"]
    table = Table(
        title=f"DeepLog, HDFS: train on {data['train_sessions']:,} normal sessions, "
        f"flag {data['test_sessions']:,} abnormal ones",
        title_justify="left",
    )
    for col in ("", "logsieve", "deeplog 0.0.3", "paper"):
        table.add_column(col, justify="left" if not col else "right")
    for row in bench_table(result):
        table.add_row(*row)
    console().print(table)
    s = result["settings"]
    console().print(
        f"settings: h={s['history_size']}, L={s['num_layers']}, alpha={s['hidden_size']}, "
        f"g={s['num_candidates']}, {s['epochs']} epochs, {s['threads']} torch thread(s), "
        f"seed {s['seed']}"
    )
    if ran:
        console().print(f"speed-up (train + score): {result['speedup']:.1f}x")
    else:
        console().print(f"deeplog 0.0.3: {peer['skipped']}")


@contextmanager
def byte_progress(
    description: str, enabled: bool = True
) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar over bytes; yields a ``(done, total)`` callback, or None when disabled."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console(), transient=True) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total or None)

        yield update


@contextmanager
def epoch_progress(
    description: str, total: int | None, enabled: bool = True
) -> Iterator[Callable[[Any], None] | None]:
    """A progress bar over training epochs; yields the callback detectors call once per epoch."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=err_console(), transient=True) as progress:
        task = progress.add_task(description, total=total, info="")

        def update(report: Any) -> None:
            info = ""
            if hasattr(report, "epoch"):
                loss = getattr(report, "train_loss", None)
                info = f"epoch {report.epoch}" + (
                    f"  loss {loss:.4f}" if isinstance(loss, float) else ""
                )
            progress.update(task, advance=1, info=info)

        yield update


def _expl_lines(exp: dict[str, Any]) -> list[str]:
    """Readable lines from a detector explanation (known shapes first, then generic keys)."""
    out: list[str] = []
    for pos in exp.get("positions", [])[:5]:
        expected = ", ".join(
            f"{e.get('event_id')} ({e.get('probability', 0):.2f})"
            for e in pos.get("expected", [])[:3]
        )
        out.append(
            f"line {pos.get('line_id', '?')}: {pos.get('event_id')} {pos.get('template', '')!r} "
            f"- {pos.get('reason', '')}" + (f"; expected {expected}" if expected else "")
        )
    for key in ("events", "relations", "violated", "attention"):
        items = exp.get(key)
        if isinstance(items, list) and items:
            out.append(f"{key}: " + "; ".join(str(i)[:120] for i in items[:3]))
    return out


def print_alerts(alerts: Sequence[dict[str, Any]]) -> None:
    """The N worst windows: score, explanation, raw lines (flagged lines marked with >)."""
    con = console()
    for alert in alerts:
        verdict = "flagged" if alert.get("is_anomaly", True) else "below the threshold"
        con.rule(
            f"[bold]{alert['window_id']}[/]  score {alert['score']:.4g} ({verdict})  "
            f"label {alert.get('label')}"
        )
        exp = alert.get("explanation") or {}
        flagged = {p.get("line_id") for p in exp.get("positions", [])}
        for line in _expl_lines(exp):
            con.print(f"  {line}", markup=False, highlight=False)
        lines = alert.get("lines") or []
        for row in lines[:25]:
            mark = ">" if row["line_id"] in flagged else " "
            con.print(
                f" {mark}{row['line_id']:>9}  {row['content']}", markup=False, highlight=False
            )
        if len(lines) > 25:
            con.print(f"  ... {len(lines) - 25} more lines")


@contextmanager
def cell_progress(enabled: bool = True) -> Iterator[Callable[[Any], None] | None]:
    """A progress bar over experiment cells (the runner reports each start and end)."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, console=err_console(), transient=True) as progress:
        task = progress.add_task("experiment", total=None, info="")

        def update(event: Any) -> None:
            progress.update(
                task,
                completed=event.done,
                total=event.total,
                info=f"{event.aspect}: {event.label}"[:60],
            )

        yield update
