"""The report's plots as PNG bytes: PR curves, F1 against a knob, early detection, times.

Matplotlib's object API (no pyplot state, Agg renderer), imported only when a plot is
drawn.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve.evaluation.experiment.store import read_run_table
from logsieve.evaluation.report.blocks import METRIC_NAMES, _is_robust, _knob_value

_FIX = "delete it and the cell's file under cells/ to run the cell again"


def _color(i: int) -> Any:
    """Distinct colours for up to 20 series (tab20: dark shades first, then light ones)."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return cmap((2 * i) % 20 + (i // 10) % 2)


def _legend(ax: Any, n: int) -> None:
    """Inside the axes for a few series, outside on the right for many."""
    if n > 5:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    else:
        ax.legend(fontsize=7, loc="best")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def _figure(width: float = 6.4, height: float = 3.8) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig


def _curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at every distinct score threshold, highest first."""
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    t = labels[order].astype(np.int64)
    last = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(t)[last]
    fp = np.cumsum(1 - t)[last]
    n_pos = max(int(t.sum()), 1)
    return np.r_[0.0, tp / n_pos], np.r_[1.0, tp / np.maximum(tp + fp, 1)]


def _pr_plot(run_dir: Path, rows: pl.DataFrame, title: str) -> bytes | None:
    fig = _figure()
    ax = fig.add_subplot()
    drawn = 0
    for r in rows.iter_rows(named=True):
        path = run_dir / "scores" / f"{r['key']}.parquet"
        if not path.exists():
            continue
        sc = read_run_table(path, needs=("label", "score"), fix=_FIX)
        sc = sc.filter(pl.col("label").is_not_null())
        y = sc.get_column("label").to_numpy().astype(np.int64)
        if y.sum() == 0 or y.sum() == y.size:
            continue
        s = np.nan_to_num(
            sc.get_column("score").to_numpy().astype(np.float64),
            nan=-1e300,
            posinf=1e300,
            neginf=-1e300,
        )
        rec, prec = _curve(y, s)
        ax.step(
            rec,
            prec,
            where="post",
            color=_color(drawn),
            label=f"{r['model']} (AP {r.get('pr_auc') or float('nan'):.2f})",
        )
        drawn += 1
    if not drawn:
        return None
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    _legend(ax, drawn)
    return _png(fig)


def _line_plot(summary: pl.DataFrame, knob: str, title: str) -> bytes | None:
    if summary.height == 0:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    numeric = knob in ("class_ratio", "label_noise", "train_fraction")
    cats = list(dict.fromkeys(_knob_value(r, knob) for r in summary.iter_rows(named=True)))
    has_robust = "robust" in summary.columns and summary.get_column("robust").n_unique() > 1
    groups = ["model", "robust"] if has_robust else ["model"]
    models = list(dict.fromkeys(summary.get_column("model").to_list()))
    for key, part in summary.group_by(groups, maintain_order=True):
        robust = has_robust and _is_robust(key[1])
        label = key[0] + (f" ({key[1]})" if robust else "")
        style = "--" if robust else "-"
        rows = [r for r in part.iter_rows(named=True) if r.get("f1_mean") is not None]
        if not rows:
            continue
        if numeric:
            xs = [r[knob] if r[knob] is not None else math.nan for r in rows]
            order = np.argsort(xs)
            xs = [xs[i] for i in order]
            rows = [rows[i] for i in order]
        else:
            xs = [cats.index(_knob_value(r, knob)) for r in rows]
        ys = [r["f1_mean"] for r in rows]
        err = [r["f1_std"] or 0.0 for r in rows]
        ax.errorbar(
            xs,
            ys,
            yerr=err,
            marker="o",
            linestyle=style,
            capsize=3,
            label=label,
            color=_color(models.index(key[0])),
        )
    if knob == "class_ratio":
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats, rotation=20, fontsize=8)
    ax.set_xlabel(knob.replace("_", " "))
    ax.set_ylabel("F1 (mean ± std over seeds)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=9)
    _legend(ax, len(models))
    return _png(fig)


def _bar_plot(
    summary: pl.DataFrame, knob: str, title: str, metric: str = "f1_mean"
) -> bytes | None:
    if summary.height == 0:
        return None
    models = list(dict.fromkeys(summary.get_column("model").to_list()))
    cats = list(dict.fromkeys(_knob_value(r, knob) for r in summary.iter_rows(named=True)))
    fig = _figure()
    ax = fig.add_subplot()
    width = 0.8 / max(len(cats), 1)
    for j, cat in enumerate(cats):
        vals, errs = [], []
        for m in models:
            r = [
                x
                for x in summary.iter_rows(named=True)
                if x["model"] == m and _knob_value(x, knob) == cat
            ]
            vals.append(r[0][metric] if r and r[0][metric] is not None else 0.0)
            errs.append(r[0][metric.replace("_mean", "_std")] or 0.0 if r else 0.0)
        ax.bar(
            np.arange(len(models)) + j * width,
            vals,
            width,
            yerr=errs,
            capsize=2,
            label=cat,
            color=_color(j),
        )
    ax.set_xticks(np.arange(len(models)) + width * (len(cats) - 1) / 2)
    ax.set_xticklabels(models, rotation=20, fontsize=8)
    ax.set_ylabel(METRIC_NAMES.get(metric.replace("_mean", ""), metric))
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def _box_plot(run_dir: Path, rows: pl.DataFrame, title: str) -> bytes | None:
    data, labels = [], []
    for key, part in rows.group_by(["model", "dataset", "grouping"], maintain_order=True):
        seen: list[np.ndarray] = []
        for k in part.get_column("key").to_list():
            path = run_dir / "early" / f"{k}.parquet"
            if path.exists():
                frame = read_run_table(path, needs=("lines_seen",), fix=_FIX)
                if "label" in frame.columns:  # normal windows are there for the false-alarm rate
                    frame = frame.filter(pl.col("label") == 1)
                seen.append(frame.get_column("lines_seen").drop_nulls().to_numpy())
        values = np.concatenate(seen) if seen else np.zeros(0)
        if values.size:
            data.append(values)
            labels.append(f"{key[0]}\n{key[1]} {key[2]}")
    if not data:
        return None
    fig = _figure(min(16.0, max(6.4, 0.9 * len(data))), 4.2)
    ax = fig.add_subplot()
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, fontsize=7, rotation=30 if len(labels) > 8 else 0)
    ax.set_ylabel("lines seen before the first alert")
    ax.set_title(title, fontsize=9)
    return _png(fig)


def _time_plot(summary: pl.DataFrame) -> bytes | None:
    if summary.height == 0:
        return None
    fig = _figure(max(6.4, 0.5 * summary.height), 4.0)
    ax = fig.add_subplot()
    labels = [f"{r['model']}\n{r['dataset']}" for r in summary.iter_rows(named=True)]
    x = np.arange(summary.height)
    ax.bar(x - 0.2, summary.get_column("train_seconds").fill_null(0).to_numpy(), 0.4, label="train")
    ax.bar(
        x + 0.2, summary.get_column("detect_seconds").fill_null(0).to_numpy(), 0.4, label="detect"
    )
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=7, rotation=30)
    ax.set_ylabel("seconds per cell (mean)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    return _png(fig)
