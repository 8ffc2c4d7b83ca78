"""Reports of an experiment run: ``report.md`` and a self-contained ``report.html``.

``logsieve report RUN_DIR`` rebuilds them at any time from the run directory
(:func:`build_report`): ``results.parquet`` (re-collected from the stored cells),
the per-cell test scores (``scores/``) and early-detection lists (``early/``).

Contents:

- the run (config, cells finished / failed / pending, versions);
- **published numbers beside ours** where the setting matches one of the tables of
  Le & Zhang, "Log-based Anomaly Detection with Deep Learning: How Far Are We?"
  (ICSE'22), transcribed in :data:`PUBLISHED` from the LogADEmpirical repository's
  result images (see /work/shared/docs/PEERS.md section 2.5 for the transcription
  notes). Our datasets are samples (HDFS 2 %, BGL 20k lines) of the full ones the
  study used, so a match of the *setting* is not a match of the data;
- per aspect: a summary table (mean ± std over seeds), PR curves of the test scores
  (first seed), F1 against whatever the aspect varies (window / grouping, class
  ratio, label noise, parsing noise, training fraction, split), early-detection box
  plots;
- time costs (training and detection seconds per model and dataset).

``report.html`` needs no network: the CSS is inline and every plot is a base64 PNG.
The Markdown report links the same PNGs, written to ``plots/``. Plots use Matplotlib's
object API (no pyplot state, Agg renderer).
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.io.atomic import atomic_open, atomic_path

logger = logging.getLogger(__name__)

__all__ = ["PUBLISHED", "build_report", "published_table"]

METRICS = ("precision", "recall", "specificity", "f1", "roc_auc", "pr_auc", "mcc")
METRIC_NAMES = {
    "precision": "P",
    "recall": "R",
    "specificity": "Spec",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "mcc": "MCC",
}
KNOBS = ("dataset", "grouping", "parsing_noise", "split", "train_fraction", "class_ratio", "label_noise", "robust")
STUDY_MODELS = {"deeplog": "DeepLog", "loganomaly": "LogAnomaly", "plelog": "PLELog", "logrobust": "LogRobust", "cnn": "CNN"}

_SRC = "Le & Zhang, ICSE'22 (LogADEmpirical)"
_FIXED = {"count:20": "20 logs", "count:100": "100 logs", "count:200": "200 logs", "time:30m": "0.5 h"}


def _published() -> list[dict[str, Any]]:
    """The study's numbers (PEERS.md section 2.5, tables a-d, f, g), one dict per value set."""
    rows: list[dict[str, Any]] = []
    # (a) RQ2_session.PNG: session windows, (P, R, Spec, F1)
    session = {
        "bgl": {
            "DeepLog": (0.997, 1.0, 0.997, 0.998),
            "LogAnomaly": (0.997, 1.0, 0.998, 0.999),
            "PLELog": (0.995, 0.992, 0.996, 0.994),
            "LogRobust": (1.0, 1.0, 1.0, 1.0),
            "CNN": (1.0, 1.0, 1.0, 1.0),
        },
        "hdfs": {
            "DeepLog": (0.835, 0.994, 0.994, 0.908),
            "LogAnomaly": (0.886, 0.893, 0.961, 0.966),
            "PLELog": (0.893, 0.979, 0.996, 0.934),
            "LogRobust": (0.961, 1.0, 0.989, 0.980),
            "CNN": (0.966, 1.0, 0.991, 0.982),
        },
    }
    for fam, models in session.items():
        for model, (p, r, s, f) in models.items():
            rows.append(
                dict(table="a", source=f"{_SRC}, pictures/RQ2_session.PNG", family=fam, model=model,
                     setting="session windows", grouping="session", split="chronological",
                     precision=p, recall=r, specificity=s, f1=f)
            )
    # (b) RQ2_fixed.png: BGL fixed windows, F1
    fixed = {
        "DeepLog": (0.227, 0.285, 0.322, 0.345),
        "LogAnomaly": (0.239, 0.299, 0.336, 0.43),
        "PLELog": (0.708, 0.71, 0.853, 0.772),
        "LogRobust": (0.753, 0.81, 0.8, 0.878),
        "CNN": (0.767, 0.81, 0.84, 0.883),
    }
    for model, values in fixed.items():
        for grouping, f in zip(("count:20", "count:100", "count:200", "time:30m"), values, strict=True):
            rows.append(
                dict(table="b", source=f"{_SRC}, pictures/RQ2_fixed.png", family="bgl", model=model,
                     setting=f"fixed windows of {_FIXED[grouping]}", grouping=grouping, split="chronological", f1=f)
            )
    # (c) random_5rounds.PNG: BGL random split, F1 of 5 rounds (window not stated)
    rounds = {
        "DeepLog": (0.949, 0.938, 0.921, 0.902, 0.925),
        "LogAnomaly": (0.949, 0.928, 0.934, 0.912, 0.932),
        "PLELog": (0.973, 0.962, 0.931, 0.938, 0.965),
        "LogRobust": (0.985, 0.974, 0.975, 0.989, 0.98),
        "CNN": (0.973, 0.977, 0.982, 0.979, 0.98),
    }
    for model, values in rounds.items():
        rows.append(
            dict(table="c", source=f"{_SRC}, pictures/random_5rounds.PNG", family="bgl", model=model,
                 setting="random split, 5 rounds (window size not stated)", split="random",
                 f1=float(np.mean(values)), f1_std=float(np.std(values, ddof=1)))
        )
    # (d) RQ3.png: anomaly share in training, F1
    ratios = (0.001, 0.005, 0.01, 0.05, 0.1, 0.15)
    class_dist = {
        "hdfs": {
            "DeepLog": (0.640, 0.690, 0.777, 0.935, 0.967, 0.978),
            "LogAnomaly": (0.647, 0.760, 0.825, 0.942, 0.971, 0.983),
            "PLELog": (0.786, 0.785, 0.859, 0.964, 0.987, 0.987),
            "LogRobust": (0.513, 0.659, 0.885, 0.962, 0.972, 0.982),
            "CNN": (0.550, 0.763, 0.863, 0.959, 0.976, 0.983),
        },
        "bgl": {
            "DeepLog": (0.221, 0.268, 0.311, 0.383, 0.431, 0.432),
            "LogAnomaly": (0.255, 0.308, 0.348, 0.427, 0.482, 0.495),
            "PLELog": (0.632, 0.576, 0.659, 0.815, 0.832, 0.855),
            "LogRobust": (0.627, 0.636, 0.741, 0.857, 0.902, 0.868),
            "CNN": (0.779, 0.869, 0.843, 0.868, 0.894, 0.883),
        },
    }
    for fam, models in class_dist.items():
        for model, values in models.items():
            for ratio, f in zip(ratios, values, strict=True):
                rows.append(
                    dict(table="d", source=f"{_SRC}, pictures/RQ3.png", family=fam, model=model,
                         setting=f"{ratio * 100:g}% anomalies", class_ratio=ratio, f1=f)
                )
    # (f) RQ4_mislabel: label noise, F1 read off a line plot (approximate)
    noise = {
        "hdfs": {"DeepLog": 0.74, "LogAnomaly": 0.735, "PLELog": 0.585, "CNN": 0.26, "LogRobust": 0.16},
        "bgl": {"CNN": 0.89, "LogRobust": 0.70, "PLELog": 0.64, "LogAnomaly": 0.455, "DeepLog": 0.41},
    }
    bgl_clean = {"CNN": 0.91, "LogRobust": 0.97, "PLELog": 0.745, "LogAnomaly": 0.48, "DeepLog": 0.43}
    for fam, models in noise.items():
        for model, f in models.items():
            rows.append(
                dict(table="f", source=f"{_SRC}, pictures/RQ4_mislabel.PNG (read off a plot)", family=fam,
                     model=model, setting="10% mislabelled", label_noise=0.1, f1=f, approximate=True)
            )
    for model, f in bgl_clean.items():
        rows.append(
            dict(table="f", source=f"{_SRC}, pictures/RQ4_mislabel.PNG (read off a plot)", family="bgl",
                 model=model, setting="0% mislabelled", label_noise=0.0, f1=f, approximate=True)
        )
    # (g) RQ5_comparison.PNG: median number of log messages seen before the alert
    for model, med in {"DeepLog": 14, "LogAnomaly": 16, "PLELog": 26, "LogRobust": 17, "CNN": 18}.items():
        rows.append(
            dict(table="g", source=f"{_SRC}, pictures/RQ5_comparison.PNG (read off a box plot)", family="",
                 model=model, setting="early detection: median lines seen", early_median=float(med), approximate=True)
        )
    return rows


#: The study's published values (see :func:`_published` for the sources).
PUBLISHED: list[dict[str, Any]] = _published()


def published_table() -> pl.DataFrame:
    """:data:`PUBLISHED` as a DataFrame."""
    return pl.DataFrame(PUBLISHED, infer_schema_length=None)


# ----------------------------------------------------------------------------- blocks
@dataclass
class _Block:
    kind: str  # h1 h2 h3 p table img pre
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    png: bytes = b""
    name: str = ""


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _mean_std(mean: Any, std: Any, n: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if n > 1 and std is not None and not (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.3f} ± {std:.3f}"
    return f"{mean:.3f}"


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


def _knob_value(row: dict[str, Any], knob: str) -> str:
    v = row.get(knob)
    if knob == "class_ratio" and v is None:
        return "natural"
    return _fmt(v, 4) if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------- data
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
            aggs += [pl.col(m).fill_nan(None).mean().alias(f"{m}_mean"), pl.col(m).fill_nan(None).std().alias(f"{m}_std")]
    for c in ("leakage_fraction", "train_seconds", "detect_seconds"):
        if c in frame.columns:
            aggs.append(pl.col(c).mean().alias(c))
    return frame.group_by(keys, maintain_order=True).agg(aggs)


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


# ----------------------------------------------------------------------------- plots
def _pr_plot(run_dir: Path, rows: pl.DataFrame, title: str) -> bytes | None:
    fig = _figure()
    ax = fig.add_subplot()
    drawn = 0
    for r in rows.iter_rows(named=True):
        path = run_dir / "scores" / f"{r['key']}.parquet"
        if not path.exists():
            continue
        sc = pl.read_parquet(path).filter(pl.col("label").is_not_null())
        y = sc.get_column("label").to_numpy().astype(np.int64)
        if y.sum() == 0 or y.sum() == y.size:
            continue
        s = np.nan_to_num(sc.get_column("score").to_numpy().astype(np.float64), nan=-1e300, posinf=1e300, neginf=-1e300)
        rec, prec = _curve(y, s)
        ax.step(rec, prec, where="post", color=_color(drawn), label=f"{r['model']} (AP {r.get('pr_auc') or float('nan'):.2f})")
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
        ax.errorbar(xs, ys, yerr=err, marker="o", linestyle=style, capsize=3, label=label, color=_color(models.index(key[0])))
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


def _bar_plot(summary: pl.DataFrame, knob: str, title: str, metric: str = "f1_mean") -> bytes | None:
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
            r = [x for x in summary.iter_rows(named=True) if x["model"] == m and _knob_value(x, knob) == cat]
            vals.append(r[0][metric] if r and r[0][metric] is not None else 0.0)
            errs.append(r[0][metric.replace("_mean", "_std")] or 0.0 if r else 0.0)
        ax.bar(np.arange(len(models)) + j * width, vals, width, yerr=errs, capsize=2, label=cat, color=_color(j))
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
                frame = pl.read_parquet(path)
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
    ax.bar(x + 0.2, summary.get_column("detect_seconds").fill_null(0).to_numpy(), 0.4, label="detect")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=7, rotation=30)
    ax.set_ylabel("seconds per cell (mean)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    return _png(fig)


# ----------------------------------------------------------------------------- sections
def _summary_table(summary: pl.DataFrame, knobs: Sequence[str]) -> _Block:
    cols = [*knobs, "model", "n"] + [METRIC_NAMES[m] for m in METRICS] + ["leakage", "train s", "detect s"]
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


def _is_robust(value: Any) -> bool:
    return value not in (None, "none", False, "")


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
        return row["grouping"] == "session" and row["split"] == "chronological" and clean and no_ratio and no_noise
    if t == "b":
        return row["grouping"] == pub["grouping"] and row["split"] == "chronological" and clean and no_ratio and no_noise
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
    group = ["aspect", "family", "dataset", "grouping", "parsing_noise", "split", "class_ratio", "label_noise", "robust", "model"]
    agg = ok.group_by(group, maintain_order=True).agg(
        pl.len().alias("n"),
        *[pl.col(m).fill_nan(None).mean().alias(f"{m}_mean") for m in ("precision", "recall", "specificity", "f1")],
        *[pl.col(m).fill_nan(None).std().alias(f"{m}_std") for m in ("precision", "recall", "specificity", "f1")],
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
                if r.get("early_median_mean") is None or STUDY_MODELS.get(r["model"]) != pub["model"]:
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
                    ours += " (P {} R {} Spec {})".format(*(_fmt(r[f"{m}_mean"]) for m in ("precision", "recall", "specificity")))
                    theirs += f" (P {pub['precision']:.3f} R {pub['recall']:.3f} Spec {pub['specificity']:.3f})"
            setting = f"{r['dataset']} {r['grouping']} {r['split']}"
            if r.get("class_ratio") is not None:
                setting += f" ratio {r['class_ratio']:g}"
            if r.get("label_noise"):
                setting += f" label noise {r['label_noise']:g}"
            rows.append([r["aspect"], r["model"], setting, str(r["n"]), ours, theirs, f"({pub['table']}) {pub['setting']}; {pub['source']}"])
    if not rows:
        return None
    return _Block("table", columns=["aspect", "model", "our setting", "seeds", "ours", "published", "published setting and source"], rows=rows)


def _aspect_blocks(run_dir: Path, name: str, info: dict[str, Any], results: pl.DataFrame, plots: list[_Block]) -> list[_Block]:
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
    n_pr = 0
    for key, part in base.group_by(["dataset", "grouping", "split"], maintain_order=True):
        if n_pr >= 8:
            break
        add(_pr_plot(run_dir, part, f"{name}: PR curves, {key[0]} {key[1]} {key[2]} (seed {first_seed})"), f"PR curves: {key[0]} {key[1]} {key[2]}")
        n_pr += 1
    # F1 against each varying knob, per dataset
    for knob in ("grouping", "class_ratio", "label_noise", "parsing_noise", "train_fraction"):
        if knob not in knobs:
            continue
        others = [k for k in shown if k not in (knob, "dataset", "robust")]
        for key, part in summary.group_by(["dataset", *others], maintain_order=True):
            if part.get_column(knob).n_unique() < 2:
                continue
            rest = " ".join(str(v) for v in key[1:] if v is not None)
            add(_line_plot(part, knob, f"{name}: F1 vs {knob.replace('_', ' ')}, {key[0]} {rest}"), f"F1 vs {knob}: {key[0]} {rest}")
    if "split" in knobs:
        others = [k for k in shown if k not in ("split", "dataset")]
        for key, part in summary.group_by(["dataset", *others], maintain_order=True):
            if part.get_column("split").n_unique() < 2:
                continue
            rest = " ".join(str(v) for v in key[1:] if v is not None)
            add(_bar_plot(part, "split", f"{name}: F1 by split, {key[0]} {rest}"), f"F1 by split: {key[0]} {rest}")
    if "early_median" in ok.columns and ok.get_column("early").any():
        add(_box_plot(run_dir, ok.filter(pl.col("early")), f"{name}: lines seen before the first alert"), "early detection")
        early = ok.filter(pl.col("early")).group_by(["dataset", "grouping", "model"], maintain_order=True).agg(
            pl.len().alias("seeds"),
            pl.col("early_method").drop_nulls().first().alias("method"),
            pl.col("early_n").mean().alias("windows"),
            (
                pl.col("early_false_alarm_rate").mean()
                if "early_false_alarm_rate" in ok.columns
                else pl.lit(None, dtype=pl.Float64)
            ).alias("false_alarms"),
            *[pl.col(f"early_{q}").mean().alias(q) for q in ("p25", "median", "p75", "p90", "max", "median_fraction")],
        )
        blocks.append(_Block("h3", "Early detection (lines seen before the first alert; mean over seeds)"))
        blocks.append(
            _Block(
                "p",
                "Windows: anomalous test windows the model detects. 'Normal windows alerting': share of normal "
                "test windows that raise an alert at some line when read line by line (the price of early "
                "alerts; for next-event models it is the false-positive rate). A whole-window model that flags "
                "the first line of most windows, normal ones included, gives no early warning at all.",
            )
        )
        blocks.append(
            _Block(
                "table",
                columns=[
                    "dataset", "grouping", "model", "method", "seeds", "windows", "p25", "median", "p75", "p90",
                    "max", "median share of window", "normal windows alerting",
                ],
                rows=[
                    [r["dataset"], r["grouping"], r["model"], str(r["method"]), str(r["seeds"]), _fmt(r["windows"], 0)]
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
                rows=[[r["model"], r["dataset"], r["grouping"], r["split"], str(r["seed"]), str(r.get("error"))] for r in errors.head(50).iter_rows(named=True)],
            )
        )
    return blocks


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


# ----------------------------------------------------------------------------- rendering
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;line-height:1.4}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}
figure{display:inline-block;margin:0.5em 1em 0.5em 0}figcaption{font-size:12px;color:#555}
pre{background:#f6f6f6;padding:0.6em;overflow-x:auto;font-size:12px}
"""


def _md(blocks: Sequence[_Block]) -> str:
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "pre":
            out.append("```\n" + b.text + "\n```")
        elif b.kind == "table":
            esc = [[c.replace("|", "\\|").replace("\n", " ") for c in row] for row in b.rows]
            lines = ["| " + " | ".join(b.columns) + " |", "|" + "---|" * len(b.columns)]
            lines += ["| " + " | ".join(row) + " |" for row in esc]
            out.append("\n".join(lines))
        elif b.kind == "img":
            out.append(f"![{b.text}](plots/{b.name})")
    return "\n\n".join(out) + "\n"


def _html(blocks: Sequence[_Block], title: str) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            parts.append(f"<p>{html.escape(b.text)}</p>")
        elif b.kind == "pre":
            parts.append(f"<pre>{html.escape(b.text)}</pre>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(c)}</th>" for c in b.columns)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in b.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b.kind == "img":
            data = base64.b64encode(b.png).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b.text)}">'
                f"<figcaption>{html.escape(b.text)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- entry point
def build_report(run_dir: str | Path) -> dict[str, Any]:
    """Write ``report.md``, ``report.html`` and ``plots/*.png`` for a run directory.

    Re-collects ``results.parquet`` from the stored cells first. Returns the paths
    written and counts (JSON-able).
    """
    from logsieve.evaluation.experiment import collect_results

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LogsieveError(f"{run_dir}: no such run directory")
    results = collect_results(run_dir)
    plan = json.loads((run_dir / "plan.json").read_text(encoding="utf-8"))
    run_info = json.loads((run_dir / "run.json").read_text(encoding="utf-8")) if (run_dir / "run.json").exists() else {}
    name = plan.get("name", run_dir.name)
    ok = _ok(results)
    n_planned = len({c["key"] for c in plan.get("cells", [])})
    n_stored = results.get_column("key").n_unique() if results.height else 0
    n_errors = results.filter(pl.col("status") != "ok").get_column("key").n_unique() if results.height else 0
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
            "Metrics are computed on the labelled windows of the test part only; thresholds, top-g and "
            "early stopping were chosen on the validation part. Leakage = share of test windows whose event "
            "sequence also occurs verbatim in the training part. Each cell's resolved config, data checksums "
            "and versions are in results.parquet.",
        )
    )
    plots: list[_Block] = []
    aspect_noise = {a for a in plan.get("aspects", {}) if results.height and results.filter((pl.col("aspect") == a) & (pl.col("label_noise") > 0)).height}
    blocks.append(_Block("h2", "Published numbers beside ours"))
    comp = _comparison(ok, aspect_noise)
    if comp is None:
        blocks.append(_Block("p", "No finished cell matches a setting of the study's tables (models deeplog, loganomaly, plelog, logrobust, cnn)."))
    else:
        blocks.append(
            _Block(
                "p",
                "Our datasets are samples (HDFS: LogLead's 2% of the blocks; BGL: 20,000 lines), smaller than the "
                "full datasets of the study, and our models are re-implementations: read these pairs as a sanity "
                "check of direction and size, not as a reproduction. Values marked ≈ were read off plots.",
            )
        )
        blocks.append(comp)
    for aspect, info in plan.get("aspects", {}).items():
        blocks += _aspect_blocks(run_dir, aspect, info, results, plots)
    blocks.append(_Block("h2", "Time costs"))
    blocks.append(
        _Block(
            "p",
            "Wall-clock seconds depend on what else ran on the machine; CPU seconds (the process's CPU "
            "time) are what a cell costs on an idle machine with one thread.",
        )
    )
    if ok.height:
        # a cell shared by several aspects ran once: count and sum it once
        distinct = ok.unique("key", keep="first", maintain_order=True) if "key" in ok.columns else ok
        blocks.append(
            _Block(
                "p",
                f"{distinct.height} distinct cells: {distinct.get_column('seconds').sum():,.0f} s of cell time"
                + (
                    f", {distinct.get_column('cpu_seconds').sum():,.0f} CPU-seconds"
                    if "cpu_seconds" in distinct.columns and distinct.get_column("cpu_seconds").null_count() == 0
                    else ""
                )
                + " (with --jobs N, wall time is about this divided by N, plus data preparation).",
            )
        )
        times = distinct.group_by(["model", "dataset"], maintain_order=True).agg(
            pl.len().alias("cells"),
            pl.col("train_seconds").mean(),
            pl.col("detect_seconds").mean(),
            pl.col("seconds").sum().alias("total_seconds"),
            (pl.col("cpu_seconds").sum() if "cpu_seconds" in ok.columns else pl.lit(None, dtype=pl.Float64)).alias("cpu_seconds"),
        ).sort(["model", "dataset"])
        blocks.append(
            _Block(
                "table",
                columns=["model", "dataset", "cells", "train s (mean)", "detect s (mean)", "wall s (all cells)", "CPU s (all cells)"],
                rows=[
                    [
                        r["model"], r["dataset"], str(r["cells"]), _fmt(r["train_seconds"], 2),
                        _fmt(r["detect_seconds"], 2), _fmt(r["total_seconds"], 1), _fmt(r["cpu_seconds"], 1),
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
            "Transcribed from the LogADEmpirical repository's result images (see PEERS.md section 2.5). "
            "Tables: (a) session windows, (b) BGL fixed windows, (c) BGL random split, (d) class distribution, "
            "(f) label noise (read off a plot), (g) early detection (read off a box plot). "
            "(a) LogAnomaly HDFS is printed as transcribed: its P, R and F1 are not mutually consistent.",
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
                    + (_fmt(p.get("f1")) if p.get("f1") is not None else _fmt(p.get("early_median"), 0)),
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
