"""``build_report``: ``report.md``, ``report.html`` and ``plots/`` of a run directory."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.evaluation.report.blocks import _Block, _fmt
from logsieve.evaluation.report.plots import _time_plot
from logsieve.evaluation.report.published import PUBLISHED
from logsieve.evaluation.report.render import _html, _md
from logsieve.evaluation.report.sections import _aspect_blocks, _comparison, _ok
from logsieve.io.atomic import atomic_open, atomic_path

logger = logging.getLogger(__name__)


def build_report(run_dir: str | Path) -> dict[str, Any]:
    """Write ``report.md``, ``report.html`` and ``plots/*.png`` for a run directory.

    Re-collects ``results.parquet`` from the stored cells first. Returns the paths
    written and counts (JSON-able).
    """
    from logsieve.evaluation.experiment import collect_results
    from logsieve.evaluation.experiment.results import read_plan

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LogsieveError(f"{run_dir}: no such run directory")
    results = collect_results(run_dir)
    plan = read_plan(run_dir)
    run_info = _run_info(run_dir / "run.json")
    name = plan.get("name", run_dir.name)
    ok = _ok(results)
    n_planned = len({c["key"] for c in plan.get("cells", [])})
    n_stored = results.get_column("key").n_unique() if results.height else 0
    n_errors = (
        results.filter(pl.col("status") != "ok").get_column("key").n_unique()
        if results.height
        else 0
    )
    blocks: list[_Block] = [_Block("h1", f"Experiment report: {name}")]
    if plan.get("description"):
        blocks.append(_Block("p", plan["description"]))
    blocks.append(_Block("h2", "Run"))
    versions = run_info.get("versions", {})
    blocks.append(
        _Block(
            "table",
            columns=["item", "value"],
            rows=[
                ["config", str(plan.get("config", ""))],
                ["distinct cells planned", str(n_planned)],
                ["finished", str(n_stored - n_errors)],
                ["failed", str(n_errors)],
                ["pending", str(n_planned - n_stored)],
                ["versions", ", ".join(f"{k} {v}" for k, v in versions.items())],
                ["report written", datetime.now(UTC).isoformat(timespec="seconds")],
            ],
        )
    )
    blocks.append(
        _Block(
            "p",
            "Metrics are computed on the labelled windows of the test part only; thresholds, top-g "
            "and early stopping were chosen on the validation part. Leakage = share of test "
            "windows whose event sequence also occurs verbatim in the training part. Each cell's "
            "resolved config, data checksums and versions are in results.parquet.",
        )
    )
    plots: list[_Block] = []
    aspect_noise = {
        a
        for a in plan.get("aspects", {})
        if results.height
        and results.filter((pl.col("aspect") == a) & (pl.col("label_noise") > 0)).height
    }
    blocks.append(_Block("h2", "Published numbers beside ours"))
    comp = _comparison(ok, aspect_noise)
    if comp is None:
        blocks.append(
            _Block(
                "p",
                "No finished cell matches a setting of the study's tables (models deeplog, "
                "loganomaly, plelog, logrobust, cnn).",
            )
        )
    else:
        blocks.append(
            _Block(
                "p",
                "Our datasets are samples (HDFS: LogLead's 2% of the blocks; BGL: 20,000 lines), "
                "smaller than the full datasets of the study, and our models are "
                "re-implementations: read these pairs as a sanity check of direction and size, not "
                "as a reproduction. Values marked ≈ were read off plots.",
            )
        )
        blocks.append(comp)
    for aspect, info in plan.get("aspects", {}).items():
        blocks += _aspect_blocks(run_dir, aspect, info, results, plots)
    blocks.append(_Block("h2", "Time costs"))
    blocks.append(
        _Block(
            "p",
            "Wall-clock seconds depend on what else ran on the machine; CPU seconds (the process's "
            "CPU time) are what a cell costs on an idle machine with one thread.",
        )
    )
    if ok.height:
        # a cell shared by several aspects ran once: count and sum it once
        distinct = (
            ok.unique("key", keep="first", maintain_order=True) if "key" in ok.columns else ok
        )
        blocks.append(
            _Block(
                "p",
                f"{distinct.height} distinct cells: "
                f"{distinct.get_column('seconds').sum():,.0f} s of cell time"
                + (
                    f", {distinct.get_column('cpu_seconds').sum():,.0f} CPU-seconds"
                    if "cpu_seconds" in distinct.columns
                    and distinct.get_column("cpu_seconds").null_count() == 0
                    else ""
                )
                + " (with --jobs N, wall time is about this divided by N, plus data preparation).",
            )
        )
        times = (
            distinct.group_by(["model", "dataset"], maintain_order=True)
            .agg(
                pl.len().alias("cells"),
                pl.col("train_seconds").mean(),
                pl.col("detect_seconds").mean(),
                pl.col("seconds").sum().alias("total_seconds"),
                (
                    pl.col("cpu_seconds").sum()
                    if "cpu_seconds" in ok.columns
                    else pl.lit(None, dtype=pl.Float64)
                ).alias("cpu_seconds"),
            )
            .sort(["model", "dataset"])
        )
        blocks.append(
            _Block(
                "table",
                columns=[
                    "model",
                    "dataset",
                    "cells",
                    "train s (mean)",
                    "detect s (mean)",
                    "wall s (all cells)",
                    "CPU s (all cells)",
                ],
                rows=[
                    [
                        r["model"],
                        r["dataset"],
                        str(r["cells"]),
                        _fmt(r["train_seconds"], 2),
                        _fmt(r["detect_seconds"], 2),
                        _fmt(r["total_seconds"], 1),
                        _fmt(r["cpu_seconds"], 1),
                    ]
                    for r in times.iter_rows(named=True)
                ],
            )
        )
        png = _time_plot(times)
        if png:
            block = _Block("img", "time costs", png=png, name=f"time-{len(plots) + 1:02d}.png")
            plots.append(block)
            blocks.append(block)
    else:
        blocks.append(_Block("p", "No finished cell yet."))
    blocks.append(_Block("h2", "Published numbers (Le & Zhang, ICSE'22)"))
    blocks.append(
        _Block(
            "p",
            "Transcribed from the LogADEmpirical repository's result images (see PEERS.md section "
            "2.5). Tables: (a) session windows, (b) BGL fixed windows, (c) BGL random split, (d) "
            "class distribution, (f) label noise (read off a plot), (g) early detection (read off "
            "a box plot). (a) LogAnomaly HDFS is printed as transcribed: its P, R and F1 are not "
            "mutually consistent.",
        )
    )
    blocks.append(
        _Block(
            "table",
            columns=["table", "dataset", "model", "setting", "P", "R", "Spec", "F1 / value"],
            rows=[
                [
                    f"({p['table']})",
                    p["family"].upper() or "–",
                    p["model"],
                    p["setting"],
                    _fmt(p.get("precision")),
                    _fmt(p.get("recall")),
                    _fmt(p.get("specificity")),
                    ("≈ " if p.get("approximate") else "")
                    + (
                        _fmt(p.get("f1"))
                        if p.get("f1") is not None
                        else _fmt(p.get("early_median"), 0)
                    ),
                ]
                for p in PUBLISHED
            ],
        )
    )

    plot_dir = run_dir / "plots"
    plot_dir.mkdir(exist_ok=True)
    for b in plots:
        with atomic_path(plot_dir / b.name, suffix=".png") as tmp:
            tmp.write_bytes(b.png)
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    with atomic_open(md_path, "w", encoding="utf-8") as fh:
        fh.write(_md(blocks))
    with atomic_open(html_path, "w", encoding="utf-8") as fh:
        fh.write(_html(blocks, f"Experiment report: {name}"))
    logger.info("report: %s, %s (%d plots)", md_path, html_path, len(plots))
    return {
        "report_md": str(md_path),
        "report_html": str(html_path),
        "plots": len(plots),
        "rows": results.height,
        "finished": n_stored - n_errors,
        "failed": n_errors,
        "pending": n_planned - n_stored,
    }


def _run_info(path: Path) -> dict[str, Any]:
    """``run.json`` (versions only feed the report): a damaged one is warned about, skipped."""
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.warning("%s: unreadable (%s); the report leaves out the versions", path, exc)
        return {}
    if not isinstance(info, dict) or not isinstance(info.get("versions", {}), dict):
        logger.warning("%s: not a run description; the report leaves out the versions", path)
        return {}
    return info
