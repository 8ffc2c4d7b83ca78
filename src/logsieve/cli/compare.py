"""Thin functions behind ``logsieve compare`` (wired in app.py).

``logsieve compare windows.parquet --models ae,lstm_ae,iforest_ae --top 10
[--events events.parquet] [--plots DIR] [--output report.json] [--set ae.epochs=20]``

- ``--events``: the parsed events table the windows come from; its raw lines are
  attached to the windows (raw-text models such as ``bursic`` need them, and the
  report then shows raw lines) and its templates are passed to the models.
- ``--plots DIR``: one PNG histogram of scores per model.
- ``--output FILE``: the JSON report (written atomically).
- ``--set MODEL.PARAM=VALUE`` (repeatable): constructor parameters per model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from logsieve.cli.options import parse_value
from logsieve.errors import LogsieveError

__all__ = ["compare_command", "parse_model_params", "render_compare"]


def parse_model_params(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """``["ae.epochs=20", "lstm_ae.reduce=max"]`` -> ``{"ae": {"epochs": 20}, ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        model, dot, param = key.strip().partition(".")
        if not sep or not dot or not model or not param:
            raise LogsieveError(
                f"bad --set {item!r}: expected MODEL.PARAM=VALUE, e.g. ae.epochs=20"
            )
        out.setdefault(model.lower(), {})[param] = parse_value(value)
    return out


def compare_command(
    windows_path: str | Path,
    models: str | Sequence[str],
    top: int = 10,
    events_path: str | Path | None = None,
    plot_dir: str | Path | None = None,
    output: str | Path | None = None,
    params: Mapping[str, Mapping[str, Any]] | Sequence[str] | None = None,
    max_lines: int = 20,
) -> dict[str, Any]:
    """Compare detectors on one windows table; returns the JSON-able report.

    ``models`` is a comma-separated string or a list of registry names; ``params`` a
    dict ``{model: {param: value}}`` or ``--set`` strings (see :func:`parse_model_params`).
    """
    from logsieve.evaluation.compare import compare
    from logsieve.grouping.text import MESSAGES, attach_messages
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
    if params is not None and not isinstance(params, Mapping):
        params = parse_model_params(params)
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


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [header, *[[_fmt(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def render_compare(report: Mapping[str, Any], width: int = 100) -> str:
    """Plain-text rendering of a :func:`compare_command` report (for the terminal)."""
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
        *_table(["model", "threshold", "flagged", "mean", *qs, "fit_s"], rows),
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
            *_table(["model", "P", "R", "Spec", "F1", "AUC", "top-N P"], rows),
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
        out += _table(["#", "window", "score", "flag", "label", "lines", "first line"], rows)
    if report.get("overlap"):
        rows = [[o["a"], o["b"], o["common"], o["jaccard"]] for o in report["overlap"]]
        out += ["", "top-N overlap", *_table(["model A", "model B", "common", "jaccard"], rows)]
    if report.get("plots"):
        out += ["", "plots: " + ", ".join(report["plots"])]
    return "\n".join(out)
