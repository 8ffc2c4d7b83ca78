"""Side-by-side comparison of detectors on the same windows (``logsieve compare``).

The idea of zpettry's HTTP-log ``compare.py`` (several unsupervised models fitted on
the same data, their outliers and score distributions looked at together), for any
logsieve detector:

1. every model is fitted on the SAME windows and scores the same windows (the usual
   unsupervised, transductive use: "which of these windows stand out?");
2. per model: the top-N outliers (window id, score, whether the model's own threshold
   flags it, and the window's raw lines or templates), summary quantiles of the score
   distribution, fit and scoring time, and, when the windows carry labels, the usual
   metrics at the model's threshold plus the share of labelled anomalies in its top N;
3. between models: the overlap of their top-N sets (Jaccard index). Scores of
   different models live on different scales, so sets of ranks are compared, not
   values;
4. optionally one PNG histogram of the scores per model (matplotlib, written
   atomically), with the model's threshold and the top-N cut marked.

Labels never influence fitting here: every window is training data (windows are fitted
as if labelled normal, ``y = 0``, so that unsupervised detectors keep them all; the
threshold is then the ``1 - contamination`` quantile of the scores of the last
``valid_fraction`` of the windows), except for supervised detectors, which cannot train
without labels (their report says ``"trained_with_labels": true``).

Windows for HTTP access logs: count windows (``logsieve group --window N``) or per-client
sessions (:func:`logsieve.grouping.fields.client_sessions`, ``group --session-field IP``).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve.detectors.base import BaseDetector, _window_ids
from logsieve.errors import LogsieveError
from logsieve.features.sequence import check_windows
from logsieve.grouping.text import MESSAGES
from logsieve.io.atomic import atomic_path
from logsieve.io.jsonable import clean_json
from logsieve.schema import (
    EVENT_ID,
    EVENT_IDS,
    LABEL,
    WINDOW_ID,
)

logger = logging.getLogger(__name__)

__all__ = [
    "QUANTILES",
    "CompareResult",
    "ModelReport",
    "compare",
    "compare_files",
    "jaccard",
    "render_text",
]

#: quantiles reported for every model's score distribution
QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


def jaccard(a: set[Any], b: set[Any]) -> float:
    """``|a & b| / |a | b|`` (1.0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


@dataclass
class ModelReport:
    """What :func:`compare` found for one model.

    Attributes
    ----------
    name : str
        Label of the model in the report (registry name; ``name#2`` for a repeat).
    detector : BaseDetector
        The fitted detector.
    scores : ndarray of float64, shape (n_windows,)
    threshold : float
        The detector's own decision threshold (``threshold_``).
    top : list of dict
        The top-N windows, highest score first: ``rank``, ``window_id``, ``row``,
        ``score``, ``is_anomaly``, ``label``, ``n_lines``, ``lines`` (raw messages when
        the windows have a ``messages`` column, else templates or event ids; at most
        ``max_lines``).
    ties_at_cut : int
        Windows outside the top N whose score equals the N-th score (ties are broken
        by row order; a large number means the top-N set is partly arbitrary).
    fit_seconds, score_seconds : float
    trained_with_labels : bool
    metrics : dict or None
        :func:`logsieve.evaluation.metrics.evaluate` on the labelled windows, plus
        ``top_precision`` (share of labelled anomalies among the labelled top N).
    """

    name: str
    detector: BaseDetector
    scores: np.ndarray
    threshold: float
    top: list[dict[str, Any]]
    ties_at_cut: int
    fit_seconds: float
    score_seconds: float
    trained_with_labels: bool = False
    metrics: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """Score distribution: ``count``, ``mean``, ``std``, ``q0`` .. ``q100``, ``flagged``."""
        s = self.scores
        out: dict[str, Any] = {"count": int(s.size)}
        if s.size == 0:
            return out
        out["mean"] = float(s.mean())
        out["std"] = float(s.std())
        for q, v in zip(QUANTILES, np.quantile(s, QUANTILES), strict=True):
            out[f"q{round(q * 100):d}"] = float(v)
        out["flagged"] = int((s > self.threshold).sum())
        out["flagged_share"] = out["flagged"] / s.size
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "detector": self.detector.name or type(self.detector).__name__,
            "params": self.detector.get_params(),
            "threshold": _finite(self.threshold),
            "threshold_source": getattr(self.detector, "threshold_source_", None),
            "fit_seconds": self.fit_seconds,
            "score_seconds": self.score_seconds,
            "trained_with_labels": self.trained_with_labels,
            "summary": self.summary(),
            "metrics": self.metrics,
            "top": self.top,
            "ties_at_cut": self.ties_at_cut,
        }


@dataclass
class CompareResult:
    """Result of :func:`compare`: one :class:`ModelReport` per model and their top-N overlap."""

    window_ids: list[str]
    models: list[ModelReport]
    top_n: int
    has_labels: bool = False
    plots: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> ModelReport:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def top_sets(self) -> dict[str, set[int]]:
        """Row indices of every model's top N."""
        return {m.name: {int(t["row"]) for t in m.top} for m in self.models}

    def overlap(self) -> list[dict[str, Any]]:
        """Every pair of models: ``a``, ``b``, ``common`` (windows in both top N), ``jaccard``."""
        sets = self.top_sets()
        names = self.names
        out = []
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                out.append(
                    {
                        "a": a,
                        "b": b,
                        "common": len(sets[a] & sets[b]),
                        "jaccard": jaccard(sets[a], sets[b]),
                    }
                )
        return out

    def overlap_matrix(self) -> pl.DataFrame:
        """Jaccard index of the top-N sets as a square table (``model``, then one per model)."""
        sets = self.top_sets()
        names = self.names
        data: dict[str, Any] = {"model": names}
        for b in names:
            data[b] = [jaccard(sets[a], sets[b]) for a in names]
        return pl.DataFrame(data)

    def summary_table(self) -> pl.DataFrame:
        """One row per model: threshold, flagged, mean, std and the :data:`QUANTILES`."""
        rows = []
        for m in self.models:
            rows.append(
                {
                    "model": m.name,
                    "threshold": _finite(m.threshold),
                    **m.summary(),
                    "fit_s": m.fit_seconds,
                    "score_s": m.score_seconds,
                }
            )
        return pl.DataFrame(rows)

    def scores_frame(self) -> pl.DataFrame:
        """``window_id``, one score column per model and ``<model>_rank`` (1 = most anomalous)."""
        cols: dict[str, Any] = {WINDOW_ID: self.window_ids}
        for m in self.models:
            cols[m.name] = m.scores
            order = np.argsort(-m.scores, kind="stable")
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(1, len(order) + 1)
            cols[f"{m.name}_rank"] = rank
        return pl.DataFrame(cols)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able report (nan and inf become None)."""
        return clean_json(
            {
                "windows": len(self.window_ids),
                "top": self.top_n,
                "labelled": self.has_labels,
                "models": [m.to_dict() for m in self.models],
                "overlap": self.overlap(),
                "plots": list(self.plots),
            }
        )

    def plot(self, directory: str | Path, bins: int = 50) -> list[Path]:
        """One PNG histogram of each model's scores in ``directory`` (written atomically).

        The y axis is logarithmic (score distributions of log windows are very skewed);
        the model's threshold (solid) and the lowest top-N score (dashed) are marked.
        Returns the paths, also kept in :attr:`plots`.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        out_dir = Path(directory)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for m in self.models:
            fig = Figure(figsize=(6.4, 4.0), dpi=100)
            FigureCanvasAgg(fig)
            ax = fig.add_subplot(1, 1, 1)
            scores = m.scores[np.isfinite(m.scores)]
            ax.hist(scores, bins=bins, color="#4477aa", log=True)
            if math.isfinite(m.threshold):
                ax.axvline(
                    m.threshold,
                    color="#cc3311",
                    linewidth=1.5,
                    label=f"threshold {m.threshold:.4g}",
                )
            if m.top:
                cut = m.top[-1]["score"]
                ax.axvline(
                    cut,
                    color="#222222",
                    linestyle="--",
                    linewidth=1.0,
                    label=f"top {len(m.top)} cut {cut:.4g}",
                )
            ax.set_xlabel("anomaly score")
            ax.set_ylabel("windows")
            ax.set_title(f"{m.name}: {len(scores)} windows")
            ax.legend(loc="upper right", fontsize="small")
            fig.tight_layout()
            path = out_dir / f"{_safe_name(m.name)}_scores.png"
            with atomic_path(path, suffix=".png") as tmp:
                fig.savefig(tmp, format="png")
            paths.append(path)
        self.plots = [str(p) for p in paths]
        return paths


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"


def _window_lines(
    windows: pl.DataFrame, rows: list[int], templates: Mapping[str, str], max_lines: int
) -> list[list[str]]:
    """Raw messages (or templates, or event ids) of the given rows, at most ``max_lines`` each."""
    part = windows[rows]
    if MESSAGES in part.columns:
        return [list(m or [])[:max_lines] for m in part.get_column(MESSAGES).to_list()]
    return [
        [templates.get(e, e) for e in (ids or [])[:max_lines]]
        for ids in part.get_column(EVENT_IDS).to_list()
    ]


def _resolve(
    models: Sequence[str | BaseDetector] | str, params: Mapping[str, Mapping[str, Any]] | None
) -> list[tuple[str, BaseDetector]]:
    from logsieve.detectors.registry import create_detector

    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    if not models:
        raise LogsieveError("compare needs at least one model")
    params = dict(params or {})
    unknown = sorted(set(params) - {m.lower() for m in models if isinstance(m, str)})
    if unknown:
        raise LogsieveError(f"params given for model(s) not compared: {', '.join(unknown)}")
    out: list[tuple[str, BaseDetector]] = []
    seen: dict[str, int] = {}
    for spec in models:
        if isinstance(spec, BaseDetector):
            det = spec
            base = det.name or type(det).__name__
        elif isinstance(spec, str):
            base = spec.lower()
            det = create_detector(base, **dict(params.get(base) or {}))
        else:
            raise LogsieveError(
                f"a model is a registry name or a detector, not {type(spec).__name__}"
            )
        seen[base] = seen.get(base, 0) + 1
        out.append((base if seen[base] == 1 else f"{base}#{seen[base]}", det))
    return out


def compare(
    windows: pl.DataFrame,
    models: Sequence[str | BaseDetector] | str,
    top: int = 10,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    templates: Mapping[str, str] | pl.DataFrame | None = None,
    max_lines: int = 20,
) -> CompareResult:
    """Fit several detectors on the same windows and compare their outliers.

    Parameters
    ----------
    windows : pl.DataFrame
        A windows table (add ``messages`` with
        :func:`logsieve.grouping.text.attach_messages` for raw-text models and to see
        raw lines in the report).
    models : list of registry names / detectors, or a comma-separated string
        Detectors given as objects are fitted in place.
    top : int, default 10
        Size of each model's list of outliers.
    params : dict name -> dict, optional
        Constructor parameters per registry name, e.g. ``{"ae": {"epochs": 20}}``.
    templates : mapping or DataFrame, optional
        Event id -> template: passed to every ``fit`` and shown for windows without
        ``messages``.
    max_lines : int, default 20
        Lines shown per outlier window.

    Returns
    -------
    CompareResult
    """
    windows = check_windows(windows)
    if windows.height == 0:
        raise LogsieveError("compare needs at least one window")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise LogsieveError(f"top must be a positive integer, not {top!r}")
    resolved = _resolve(models, params)
    template_map = _templates_map(templates)
    labels = (
        windows.get_column(LABEL).cast(pl.Float64).to_numpy()
        if LABEL in windows.columns
        else np.full(windows.height, np.nan)
    )
    known = ~np.isnan(labels)
    has_labels = bool(known.any())
    as_normal = np.zeros(windows.height, dtype=np.int8)
    ids = _window_ids(windows)
    n_top = min(int(top), windows.height)
    reports = []
    for name, det in resolved:
        supervised = bool(det.requires_labels)
        t0 = time.perf_counter()
        if supervised:
            det.fit(windows, templates=templates)
        else:  # every window is training data: fitted as if labelled normal
            det.fit(windows, as_normal, templates=templates)
        t1 = time.perf_counter()
        scores = np.asarray(det.decision_function(windows), dtype=np.float64)
        t2 = time.perf_counter()
        logger.info("compare: %s fitted in %.2fs, scored in %.2fs", name, t1 - t0, t2 - t1)
        order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
        rows = order[:n_top].tolist()
        cut = scores[rows[-1]]
        ties = int((scores[order[n_top:]] == cut).sum())
        lines = _window_lines(windows, rows, template_map, max_lines)
        sizes = windows[rows].get_column(EVENT_IDS).list.len().to_list()
        top_rows = [
            {
                "rank": r + 1,
                "window_id": ids[row],
                "row": int(row),
                "score": float(scores[row]),
                "is_anomaly": bool(scores[row] > det.threshold_),
                "label": None if np.isnan(labels[row]) else int(labels[row]),
                "n_lines": int(size or 0),
                "lines": text,
            }
            for r, (row, size, text) in enumerate(zip(rows, sizes, lines, strict=True))
        ]
        metrics = None
        if has_labels:
            from logsieve.evaluation.metrics import evaluate

            pred = (scores > det.threshold_).astype(np.int8)
            metrics = evaluate(labels[known].astype(np.int8), pred[known], scores[known])
            top_known = [t["label"] for t in top_rows if t["label"] is not None]
            metrics["top_precision"] = sum(top_known) / len(top_known) if top_known else None
        reports.append(
            ModelReport(
                name=name,
                detector=det,
                scores=scores,
                threshold=float(det.threshold_),
                top=top_rows,
                ties_at_cut=ties,
                fit_seconds=t1 - t0,
                score_seconds=t2 - t1,
                trained_with_labels=supervised,
                metrics=metrics,
            )
        )
    return CompareResult(ids, reports, n_top, has_labels)


def _templates_map(templates: Mapping[str, str] | pl.DataFrame | None) -> dict[str, str]:
    if templates is None:
        return {}
    if isinstance(templates, pl.DataFrame):
        if not {EVENT_ID, "template"} <= set(templates.columns):
            raise LogsieveError("templates table needs 'event_id' and 'template' columns")
        return dict(
            zip(
                templates.get_column(EVENT_ID).to_list(),
                templates.get_column("template").to_list(),
                strict=True,
            )
        )
    return {str(k): str(v) for k, v in templates.items()}


def compare_files(
    windows_path: str | Path,
    models: str | Sequence[str],
    *,
    top: int = 10,
    events_path: str | Path | None = None,
    plot_dir: str | Path | None = None,
    output: str | Path | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    max_lines: int = 20,
) -> dict[str, Any]:
    """:func:`compare` on a windows file; returns the JSON-able report (``logsieve compare``).

    ``events_path``: the parsed events table the windows come from; its raw lines are
    attached to the windows (raw-text models need them, and the report then shows raw
    lines) and its templates are passed to the models (else those the windows table
    carries). ``plot_dir``: one PNG histogram of scores per model. ``output``: the report
    as JSON, written atomically. ``params``: ``{model: {param: value}}``.
    """
    from logsieve.grouping.text import attach_messages
    from logsieve.io.atomic import write_json
    from logsieve.pipeline.core import read_templates_file, read_windows

    windows, meta = read_windows(windows_path)
    templates = meta.get("templates") or None
    if events_path is not None:
        events = Path(events_path)
        if not events.is_file():
            raise LogsieveError(
                f"{events}: events file not found "
                "(the `logsieve parse` output the windows come from)"
            )
        if MESSAGES not in windows.columns:
            windows = attach_messages(windows, events)
        templates = read_templates_file(events)
    result = compare(
        windows, models, top=top, params=params, templates=templates, max_lines=max_lines
    )
    if plot_dir is not None:
        result.plot(plot_dir)
    report = result.to_dict()
    report["input"] = {
        "windows": str(windows_path),
        "events": str(events_path) if events_path else None,
    }
    if output is not None:
        write_json(output, report)
        report["output"] = str(output)
    return report


# ----------------------------------------------------------------------------- text
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


def render_text(report: Mapping[str, Any], width: int = 100) -> str:
    """Plain-text rendering of a :func:`compare_files` report (what ``logsieve compare`` prints)."""
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
