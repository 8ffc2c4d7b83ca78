"""The report's sections as blocks: summaries per aspect, published numbers beside ours."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.evaluation.report.blocks import (
    KNOBS,
    METRIC_NAMES,
    METRICS,
    _Block,
    _fmt,
    _is_robust,
    _knob_value,
    _mean_std,
    _safe,
)
from logsieve.evaluation.report.plots import _bar_plot, _box_plot, _line_plot, _pr_plot
from logsieve.evaluation.report.published import PUBLISHED, STUDY_MODELS


def _ok(results: pl.DataFrame) -> pl.DataFrame:
    if "status" not in results.columns or results.height == 0:
        return results.head(0)
    return results.filter(pl.col("status") == "ok")


def _varying(frame: pl.DataFrame) -> list[str]:
    out = []
    for knob in KNOBS:
        if knob in frame.columns and frame.get_column(knob).n_unique() > 1:
            out.append(knob)
    return out


def _summary(frame: pl.DataFrame, knobs: Sequence[str]) -> pl.DataFrame:
    keys = [*knobs, "model"]
    aggs = [pl.len().alias("n")]
    for m in METRICS:
        if m in frame.columns:
            aggs += [
                pl.col(m).fill_nan(None).mean().alias(f"{m}_mean"),
                pl.col(m).fill_nan(None).std().alias(f"{m}_std"),
            ]
    for c in ("leakage_fraction", "train_seconds", "detect_seconds"):
        if c in frame.columns:
            aggs.append(pl.col(c).mean().alias(c))
    return frame.group_by(keys, maintain_order=True).agg(aggs)


def _summary_table(summary: pl.DataFrame, knobs: Sequence[str]) -> _Block:
    cols = (
        [*knobs, "model", "n"]
        + [METRIC_NAMES[m] for m in METRICS]
        + ["leakage", "train s", "detect s"]
    )
    rows = []
    for r in summary.iter_rows(named=True):
        line = [_knob_value(r, k) for k in knobs] + [r["model"], str(r["n"])]
        line += [_mean_std(r.get(f"{m}_mean"), r.get(f"{m}_std"), r["n"]) for m in METRICS]
        leak = r.get("leakage_fraction")
        line += [
            "–" if leak is None else f"{100 * leak:.1f}%",
            _fmt(r.get("train_seconds"), 2),
            _fmt(r.get("detect_seconds"), 2),
        ]
        rows.append(line)
    return _Block("table", columns=cols, rows=rows)


def _matches(row: dict[str, Any], pub: dict[str, Any]) -> bool:
    if STUDY_MODELS.get(row["model"]) != pub["model"]:
        return False
    if pub["family"] and row.get("family") != pub["family"]:
        return False
    clean = row.get("parsing_noise", "none") == "none"
    no_ratio = row.get("class_ratio") is None
    no_noise = not row.get("label_noise") and not _is_robust(row.get("robust"))
    t = pub["table"]
    if t == "a":
        return (
            row["grouping"] == "session"
            and row["split"] == "chronological"
            and clean
            and no_ratio
            and no_noise
        )
    if t == "b":
        return (
            row["grouping"] == pub["grouping"]
            and row["split"] == "chronological"
            and clean
            and no_ratio
            and no_noise
        )
    if t == "c":
        return row["split"] == "random" and clean and no_ratio and no_noise
    if t == "d":
        r = row.get("class_ratio")
        return r is not None and abs(r - pub["class_ratio"]) < 1e-12 and clean and no_noise
    if t == "f":
        return (
            abs((row.get("label_noise") or 0.0) - pub["label_noise"]) < 1e-12
            and not _is_robust(row.get("robust"))
            and clean
            and no_ratio
            and (pub["label_noise"] > 0 or row.get("aspect_has_noise", False))
        )
    return False


def _comparison(ok: pl.DataFrame, aspect_noise: set[str]) -> _Block | None:
    if ok.height == 0:
        return None
    group = [
        "aspect",
        "family",
        "dataset",
        "grouping",
        "parsing_noise",
        "split",
        "class_ratio",
        "label_noise",
        "robust",
        "model",
    ]
    agg = ok.group_by(group, maintain_order=True).agg(
        pl.len().alias("n"),
        *[
            pl.col(m).fill_nan(None).mean().alias(f"{m}_mean")
            for m in ("precision", "recall", "specificity", "f1")
        ],
        *[
            pl.col(m).fill_nan(None).std().alias(f"{m}_std")
            for m in ("precision", "recall", "specificity", "f1")
        ],
        *(
            [pl.col("early_median").mean().alias("early_median_mean")]
            if "early_median" in ok.columns
            else [pl.lit(None, dtype=pl.Float64).alias("early_median_mean")]
        ),
    )
    rows = []
    for r in agg.iter_rows(named=True):
        r["aspect_has_noise"] = r["aspect"] in aspect_noise
        for pub in PUBLISHED:
            if pub["table"] == "g":
                if (
                    r.get("early_median_mean") is None
                    or STUDY_MODELS.get(r["model"]) != pub["model"]
                ):
                    continue
                ours = f"median lines seen {r['early_median_mean']:.1f}"
                theirs = f"≈ {pub['early_median']:.0f}"
            elif not _matches(r, pub):
                continue
            else:
                ours = f"F1 {_mean_std(r['f1_mean'], r['f1_std'], r['n'])}"
                theirs = ("≈ " if pub.get("approximate") else "") + f"F1 {pub['f1']:.3f}"
                if pub.get("f1_std") is not None:
                    theirs += f" ± {pub['f1_std']:.3f}"
                if pub["table"] == "a":
                    ours += " (P {} R {} Spec {})".format(
                        *(_fmt(r[f"{m}_mean"]) for m in ("precision", "recall", "specificity"))
                    )
                    theirs += (
                        f" (P {pub['precision']:.3f} R {pub['recall']:.3f}"
                        f" Spec {pub['specificity']:.3f})"
                    )
            setting = f"{r['dataset']} {r['grouping']} {r['split']}"
            if r.get("class_ratio") is not None:
                setting += f" ratio {r['class_ratio']:g}"
            if r.get("label_noise"):
                setting += f" label noise {r['label_noise']:g}"
            rows.append(
                [
                    r["aspect"],
                    r["model"],
                    setting,
                    str(r["n"]),
                    ours,
                    theirs,
                    f"({pub['table']}) {pub['setting']}; {pub['source']}",
                ]
            )
    if not rows:
        return None
    return _Block(
        "table",
        columns=[
            "aspect",
            "model",
            "our setting",
            "seeds",
            "ours",
            "published",
            "published setting and source",
        ],
        rows=rows,
    )


def _aspect_blocks(
    run_dir: Path, name: str, info: dict[str, Any], results: pl.DataFrame, plots: list[_Block]
) -> list[_Block]:
    blocks = [_Block("h2", f"Aspect: {name}")]
    if info.get("description"):
        blocks.append(_Block("p", info["description"]))
    frame = results.filter(pl.col("aspect") == name) if results.height else results
    ok = _ok(frame)
    n_err = frame.height - ok.height
    blocks.append(_Block("p", f"{ok.height} cells finished, {n_err} failed."))
    if ok.height == 0:
        return blocks
    knobs = _varying(ok)
    shown = [k for k in KNOBS if k in knobs or k in ("dataset", "grouping")]
    summary = _summary(ok, shown)
    blocks.append(_Block("h3", "Summary (mean ± std over seeds)"))
    blocks.append(_summary_table(summary, shown))
    blocks.append(_Block("h3", "Plots"))

    def add(png: bytes | None, title: str) -> None:
        if png:
            block = _Block("img", title, png=png, name=f"{_safe(name)}-{len(plots) + 1:02d}.png")
            plots.append(block)
            blocks.append(block)

    # PR curves: per (dataset, grouping, split), first value of the other knobs, first seed
    first_seed = ok.get_column("seed").min()
    base = ok.filter(pl.col("seed") == first_seed)
    for knob in ("parsing_noise", "train_fraction", "class_ratio", "label_noise", "robust"):
        if knob in knobs and base.height:
            first = base.get_column(knob)[0]
            base = base.filter(pl.col(knob).is_null() if first is None else pl.col(knob) == first)
    groups = base.group_by(["dataset", "grouping", "split"], maintain_order=True)
    for n_pr, (key, part) in enumerate(groups):
        if n_pr >= 8:
            break
        add(
            _pr_plot(
                run_dir,
                part,
                f"{name}: PR curves, {key[0]} {key[1]} {key[2]} (seed {first_seed!s})",
            ),
            f"PR curves: {key[0]} {key[1]} {key[2]}",
        )
    # F1 against each varying knob, per dataset
    for knob in ("grouping", "class_ratio", "label_noise", "parsing_noise", "train_fraction"):
        if knob not in knobs:
            continue
        others = [k for k in shown if k not in (knob, "dataset", "robust")]
        for key, part in summary.group_by(["dataset", *others], maintain_order=True):
            if part.get_column(knob).n_unique() < 2:
                continue
            rest = " ".join(str(v) for v in key[1:] if v is not None)
            add(
                _line_plot(part, knob, f"{name}: F1 vs {knob.replace('_', ' ')}, {key[0]} {rest}"),
                f"F1 vs {knob}: {key[0]} {rest}",
            )
    if "split" in knobs:
        others = [k for k in shown if k not in ("split", "dataset")]
        for key, part in summary.group_by(["dataset", *others], maintain_order=True):
            if part.get_column("split").n_unique() < 2:
                continue
            rest = " ".join(str(v) for v in key[1:] if v is not None)
            add(
                _bar_plot(part, "split", f"{name}: F1 by split, {key[0]} {rest}"),
                f"F1 by split: {key[0]} {rest}",
            )
    if "early_median" in ok.columns and ok.get_column("early").any():
        add(
            _box_plot(
                run_dir, ok.filter(pl.col("early")), f"{name}: lines seen before the first alert"
            ),
            "early detection",
        )
        early = (
            ok.filter(pl.col("early"))
            .group_by(["dataset", "grouping", "model"], maintain_order=True)
            .agg(
                pl.len().alias("seeds"),
                pl.col("early_method").drop_nulls().first().alias("method"),
                pl.col("early_n").mean().alias("windows"),
                (
                    pl.col("early_false_alarm_rate").mean()
                    if "early_false_alarm_rate" in ok.columns
                    else pl.lit(None, dtype=pl.Float64)
                ).alias("false_alarms"),
                *[
                    pl.col(f"early_{q}").mean().alias(q)
                    for q in ("p25", "median", "p75", "p90", "max", "median_fraction")
                ],
            )
        )
        blocks.append(
            _Block("h3", "Early detection (lines seen before the first alert; mean over seeds)")
        )
        blocks.append(
            _Block(
                "p",
                "Windows: anomalous test windows the model detects. 'Normal windows alerting': "
                "share of normal test windows that raise an alert at some line when read line by "
                "line (the price of early alerts; for next-event models it is the false-positive "
                "rate). A whole-window model that flags the first line of most windows, normal "
                "ones included, gives no early warning at all.",
            )
        )
        blocks.append(
            _Block(
                "table",
                columns=[
                    "dataset",
                    "grouping",
                    "model",
                    "method",
                    "seeds",
                    "windows",
                    "p25",
                    "median",
                    "p75",
                    "p90",
                    "max",
                    "median share of window",
                    "normal windows alerting",
                ],
                rows=[
                    [
                        r["dataset"],
                        r["grouping"],
                        r["model"],
                        str(r["method"]),
                        str(r["seeds"]),
                        _fmt(r["windows"], 0),
                    ]
                    + [_fmt(r[q], 1) for q in ("p25", "median", "p75", "p90", "max")]
                    + [_fmt(r["median_fraction"], 2)]
                    + ["–" if r["false_alarms"] is None else f"{100 * r['false_alarms']:.1f}%"]
                    for r in early.iter_rows(named=True)
                ],
            )
        )
    errors = frame.filter(pl.col("status") != "ok") if "status" in frame.columns else frame.head(0)
    if errors.height:
        blocks.append(_Block("h3", "Failed cells"))
        blocks.append(
            _Block(
                "table",
                columns=["model", "dataset", "grouping", "split", "seed", "error"],
                rows=[
                    [
                        r["model"],
                        r["dataset"],
                        r["grouping"],
                        r["split"],
                        str(r["seed"]),
                        str(r.get("error")),
                    ]
                    for r in errors.head(50).iter_rows(named=True)
                ],
            )
        )
    return blocks
