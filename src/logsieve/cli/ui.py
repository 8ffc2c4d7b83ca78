"""Terminal output for the CLI (rich): tables, summaries, progress bars, the compare report.
Library code never prints."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
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
    ours, peer, paper = result["logsieve"], result["peer"], result["paper"]
    ran = "skipped" not in peer
    data = result["data"]
    table = Table(
        title=f"DeepLog, HDFS: train on {data['train_sessions']:,} normal sessions, "
        f"flag {data['test_sessions']:,} abnormal ones",
        title_justify="left",
    )
    for col in ("", "logsieve", "deeplog 0.0.3", "paper"):
        table.add_column(col, justify="left" if not col else "right")
    rows = [  # label, value of one side, format, paper's value
        ("train seconds", lambda r: r["train_s"], "{:.2f}", "-"),
        ("score seconds", lambda r: r["score_s"], "{:.2f}", "-"),
        ("train + score", lambda r: r["train_s"] + r["score_s"], "{:.2f}", "-"),
        ("recall", lambda r: r["recall"], "{:.4f}", f"{paper['recall']:.3f}"),
        ("false negatives", lambda r: r["fn"], "{:,}", f"{paper['fn']:,}"),
    ]
    for label, value, fmt, published in rows:
        table.add_row(
            label, fmt.format(value(ours)), fmt.format(value(peer)) if ran else "-", published
        )
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


# --------------------------------------------------------------------------- compare
def _cell(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _text_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [header, *[[_cell(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def render_compare(report: Mapping[str, Any], width: int = 100) -> str:
    """Plain-text rendering of a :func:`logsieve.evaluation.compare.compare_files` report."""
    models = report["models"]
    out = [f"{report['windows']} windows, top {report['top']} per model"]
    qs = ["q0", "q25", "q50", "q75", "q90", "q95", "q99", "q100"]
    rows = [
        [
            m["name"],
            m["threshold"],
            m["summary"].get("flagged"),
            m["summary"].get("mean"),
            *[m["summary"].get(q) for q in qs],
            m["fit_seconds"],
        ]
        for m in models
    ]
    out += [
        "",
        "score distributions",
        *_text_table(["model", "threshold", "flagged", "mean", *qs, "fit_s"], rows),
    ]
    if report.get("labelled"):
        rows = [
            [
                m["name"],
                *(
                    m["metrics"].get(k)
                    for k in (
                        "precision",
                        "recall",
                        "specificity",
                        "f1",
                        "roc_auc",
                        "top_precision",
                    )
                ),
            ]
            for m in models
            if m.get("metrics")
        ]
        out += [
            "",
            "metrics on labelled windows (at each model's threshold)",
            *_text_table(["model", "P", "R", "Spec", "F1", "AUC", "top-N P"], rows),
        ]
    for m in models:
        out += [
            "",
            f"top {len(m['top'])} of {m['name']}"
            + (f" ({m['ties_at_cut']} more windows tie with the last)" if m["ties_at_cut"] else ""),
        ]
        rows = []
        for t in m["top"]:
            first = t["lines"][0] if t["lines"] else ""
            rows.append(
                [
                    t["rank"],
                    t["window_id"],
                    t["score"],
                    "yes" if t["is_anomaly"] else "no",
                    t["label"],
                    t["n_lines"],
                    first[: max(20, width - 60)],
                ]
            )
        out += _text_table(["#", "window", "score", "flag", "label", "lines", "first line"], rows)
    if report.get("overlap"):
        rows = [[o["a"], o["b"], o["common"], o["jaccard"]] for o in report["overlap"]]
        out += [
            "",
            "top-N overlap",
            *_text_table(["model A", "model B", "common", "jaccard"], rows),
        ]
    if report.get("plots"):
        out += ["", "plots: " + ", ".join(report["plots"])]
    return "\n".join(out)
