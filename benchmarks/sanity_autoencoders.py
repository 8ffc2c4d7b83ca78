"""Sanity run of the autoencoder family on real data, and the HTTP-log comparison.

Run ``benchmarks/prepare.py`` once first. Two parts:

``labelled`` (default data: ``hdfs``, ``bgl``)
    ``hdfs``: ``out/data/hdfs2pct_sessions.parquet`` (11,501 HDFS block sessions, 350
    anomalous, time-ordered) with ``hdfs2pct_templates.csv`` and, for ``bursic``, the raw
    lines of ``hdfs2pct_events.parquet``; ``bgl``: ``bgl20k_count20.parquet`` (1,000
    windows of 20 lines) with ``bgl20k_templates.csv`` / ``bgl20k_events.parquet``.
    Chronological split train / valid / test = 60 / 10 / 30 %; the models train on the
    normal training windows (unsupervised models drop anomalies), the threshold is the
    default rule (``threshold="auto"``: the 99th percentile of the scores of the normal
    validation windows) and, for reference, the best-F1 threshold on the VALIDATION part.
    Reported: P / R / specificity / F1 on test at both thresholds, ROC-AUC, and wall
    seconds of ``fit`` and of ``decision_function`` on test. ``--contaminated`` trains on
    every training window, anomalies included (``include_anomalies=True``: the fully
    unsupervised setting of Farzad & Gulliver, where the forest has to find them).

``weblog``
    zpettry's cleaned copy of the Kaggle webLog CSV (10,787 requests, no labels) parsed
    with the ``weblog`` format, grouped into count windows of 10 requests and into
    per-client sessions (IP, 30 min idle cut), and compared with
    :func:`logsieve.evaluation.compare.compare` (``--compare-models``); the text report is printed
    and the JSON report and histograms are written under ``out/sanity_autoencoders/``.

Usage::

    .venv/bin/python benchmarks/sanity_autoencoders.py [--data hdfs bgl weblog]
        [--models ae lstm_ae iforest_ae farzad bursic] [--compare-models ...] [--top 10]
        [--contaminated] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "out" / "data"
OUT = REPO / "out" / "sanity_autoencoders"
SHARED = REPO.parent / "shared" / "data"
MODELS = ["ae", "lstm_ae", "iforest_ae", "farzad", "bursic"]
SETS = {
    "hdfs": ("hdfs2pct_sessions.parquet", "hdfs2pct_templates.csv", "hdfs2pct_events.parquet"),
    "bgl": ("bgl20k_count20.parquet", "bgl20k_templates.csv", "bgl20k_events.parquet"),
}


def run_labelled(name: str, models: list[str], contaminated: bool = False) -> list[dict]:
    import polars as pl

    from logsieve.detectors.registry import create_detector
    from logsieve.evaluation.metrics import best_f1_threshold, evaluate
    from logsieve.grouping import split_windows
    from logsieve.grouping.text import attach_messages

    wfile, tfile, efile = SETS[name]
    if not (DATA / wfile).is_file():
        sys.exit(f"{DATA / wfile} missing: run benchmarks/prepare.py first")
    windows = pl.read_parquet(DATA / wfile)
    templates = pl.read_csv(DATA / tfile)
    split = split_windows(windows, train=0.6, valid=0.1, method="chronological")
    summary = split.summary()
    print(f"\n== {name}: train {summary['train']} valid {summary['valid']} test {summary['test']}")
    rows = []
    for model in models:
        train, valid, test = split.train, split.valid, split.test
        if model == "bursic":
            t0 = time.perf_counter()
            train, valid, test = (attach_messages(w, DATA / efile) for w in (train, valid, test))
            print(f"   (bursic: raw lines attached in {time.perf_counter() - t0:.1f}s)")
        det = create_detector(model, include_anomalies=True if contaminated else None)
        t0 = time.perf_counter()
        det.fit(train, valid=valid, templates=templates)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores = det.decision_function(test)
        detect_s = time.perf_counter() - t0
        y = test.get_column("label").to_numpy()
        m = evaluate(y, (scores > det.threshold_).astype(np.int8), scores)
        vy = valid.get_column("label").to_numpy()
        best_t, _ = best_f1_threshold(vy, det.decision_function(valid))
        mb = evaluate(y, (scores > best_t).astype(np.int8))
        epochs = len(getattr(det, "history_", []))
        row = {
            "data": name,
            "model": model,
            "contaminated": contaminated,
            "precision": m["precision"],
            "recall": m["recall"],
            "specificity": m["specificity"],
            "f1": m["f1"],
            "roc_auc": m["roc_auc"],
            "best_valid_f1_threshold": {
                k: mb[k] for k in ("precision", "recall", "specificity", "f1")
            },
            "fit_seconds": fit_s,
            "detect_seconds": detect_s,
            "epochs_run": epochs,
            "threshold": det.threshold_,
        }
        rows.append(row)
        print(
            f"{model:11s} P={m['precision']:.3f} R={m['recall']:.3f} Spec={m['specificity']:.4f} "
            f"F1={m['f1']:.3f} AUC={m['roc_auc']:.3f} | best-valid-F1 thr: P={mb['precision']:.3f} "
            f"R={mb['recall']:.3f} F1={mb['f1']:.3f} | fit {fit_s:.1f}s ({epochs} epochs) "
            f"detect {detect_s:.2f}s",
            flush=True,
        )
    return rows


def weblog_events():
    """Parse zpettry's cleaned webLog copy (header-less) with the ``weblog`` format."""
    import polars as pl

    from logsieve.formats import get_format
    from logsieve.parsing.parser import LogParser

    path = SHARED / "weblog_http" / "webLog_zpettry_cleaned.csv"
    if not path.is_file():
        sys.exit(f"{path} missing")
    fmt = get_format("weblog")
    try:
        events, _ = LogParser(fmt).parse_files(path)
    except (
        pl.exceptions.PolarsError
    ) as exc:  # skip_pattern bug under polars 2 (reported); no header here
        print(
            f"   (weblog parse failed: {type(exc).__name__}; "
            "retrying without the header skip pattern)"
        )
        events, _ = LogParser(dataclasses.replace(fmt, skip_pattern=None)).parse_files(path)
    return events


def run_weblog(models: list[str], top: int) -> dict:
    from logsieve.evaluation.compare import compare
    from logsieve.evaluation.compare import render_text as render_compare
    from logsieve.grouping import CountWindows, group
    from logsieve.grouping.fields import client_sessions
    from logsieve.grouping.text import attach_messages
    from logsieve.io.atomic import write_json
    from logsieve.parsing.parser import template_counts

    events = weblog_events()
    templates = template_counts(events)
    groupings = {
        "count10": group(events, CountWindows(10)).windows,
        "ip_sessions_30m": client_sessions(events, "IP", "30m"),
    }
    out = {}
    for gname, windows in groupings.items():
        windows = attach_messages(windows, events)
        print(
            f"\n== weblog {gname}: {windows.height} windows, {events.height} requests, "
            f"{templates.height} templates"
        )
        t0 = time.perf_counter()
        result = compare(windows, models, top=top, templates=templates, max_lines=5)
        result.plot(OUT / f"weblog_{gname}")
        report = result.to_dict()
        print(render_compare(report))
        print(f"   (compare took {time.perf_counter() - t0:.1f}s)")
        write_json(OUT / f"weblog_{gname}.json", report)
        out[gname] = report
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", nargs="+", default=["hdfs", "bgl", "weblog"], choices=[*SETS, "weblog"]
    )
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--compare-models", nargs="+", default=MODELS)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--contaminated",
        action="store_true",
        help="train on every training window, anomalies included (fully unsupervised)",
    )
    args = ap.parse_args()
    results: dict = {"labelled": [], "weblog": None}
    for name in args.data:
        if name == "weblog":
            results["weblog"] = run_weblog(args.compare_models, args.top)
        else:
            results["labelled"] += run_labelled(name, args.models, args.contaminated)
    if args.json:
        from logsieve.io.atomic import write_json

        write_json(args.json, json.loads(json.dumps(results, default=float)))


if __name__ == "__main__":
    main()
