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
    per-client sessions (IP, 30 min idle cut); every model (``--compare-models``) is fitted
    and scored on all windows with :func:`logsieve.evaluation.compare.compare`, without and
    with HTTP features (``--http off|on|both``). With them, ``ae`` and ``iforest_ae`` read
    ``features="events+http"`` and ``farzad`` ``"words+http"`` (the window's status mix,
    methods, URL shape and pace of :mod:`logsieve.features.http` beside their counts);
    ``lstm_ae`` reads event ids tagged with the status class (``E12/4xx``) and ``bursic``
    request lines with the status appended, since a sequence or a text is what they read;
    ``--http-only`` gives the dense models the HTTP features alone (``features="http"``).
    The script finds the crawler burst in the data (the most ``robots.txt`` 404s to one
    client within 4 s) and prints, per model, the rank of the best window holding it, and
    the top outliers described by client IP, time, status mix and URLs. The summaries go
    to ``out/sanity_autoencoders/weblog_<grouping>_<plain|http|http_only>.json``.

Usage::

    .venv/bin/python benchmarks/sanity_autoencoders.py [--data hdfs bgl weblog]
        [--models ae lstm_ae iforest_ae farzad bursic] [--compare-models ...] [--top 10]
        [--http off|on|both] [--http-only]
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


#: HTTP inputs of each model in the ``with`` run: the dense models read the window's HTTP
#: feature vector beside their counts; the sequence and text models get the status in their
#: tokens (event id + status class) and in their text (request line + status)
HTTP_PARAMS = {
    "ae": {"features": "events+http"},
    "iforest_ae": {"features": "events+http"},
    "farzad": {"features": "words+http"},
}
STATUS_TOKEN_MODELS = ("lstm_ae",)
STATUS_TEXT_MODELS = ("bursic",)


def find_crawler_burst(events, path: str = "robots.txt", status: str = "404", span_s: int = 4):
    """The largest run of ``path`` ``status`` responses to one client within ``span_s``
    seconds: (ip, line ids, first, last)."""
    import polars as pl

    hits = events.filter(
        pl.col("content").str.contains(path, literal=True) & (pl.col("Status") == status)
    ).sort("IP", "timestamp", "line_id")
    best = (None, [], None, None)
    for (ip,), part in hits.group_by(["IP"], maintain_order=True):
        ts = part.get_column("timestamp").to_list()
        ids = part.get_column("line_id").to_list()
        j = 0
        for i in range(len(ts)):
            while (ts[i] - ts[j]).total_seconds() > span_s:
                j += 1
            if i - j + 1 > len(best[1]):
                best = (ip, ids[j : i + 1], ts[j], ts[i])
    return best


def status_events(events):
    """Events whose event id carries the status class (``E12/4xx``) and whose message
    ends with the status: what a sequence or text model can read of the status."""
    import polars as pl

    cls = pl.col("Status").str.slice(0, 1) + pl.lit("xx")
    return events.with_columns(
        (pl.col("event_id") + pl.lit("/") + cls).alias("event_id"),
        (pl.col("content") + pl.lit(" ") + pl.col("Status")).alias("content"),
    )


def describe_window(events, line_ids: list[int], n_urls: int = 3) -> dict:
    """IP(s), time span, status mix and most requested URLs of one window."""
    import polars as pl

    rows = events.filter(pl.col("line_id").is_in(line_ids))
    urls = rows.get_column("content").str.split(" ").list.get(1, null_on_oob=True)
    top_urls = urls.value_counts(sort=True).head(n_urls)
    return {
        "ips": sorted(set(rows.get_column("IP").to_list())),
        "start": str(rows.get_column("timestamp").min()),
        "end": str(rows.get_column("timestamp").max()),
        "requests": rows.height,
        "status": dict(
            sorted(rows.get_column("Status").value_counts().iter_rows(), key=lambda r: -r[1])
        ),
        "urls": [f"{u}x{n}" for u, n in top_urls.iter_rows()],
    }


def burst_rank(scores: np.ndarray, windows, burst_ids: set[int]) -> tuple[int, str]:
    """Best rank (1 = top) of a window holding burst lines, and its id."""
    rows = [
        i for i, ids in enumerate(windows.get_column("line_ids").to_list()) if burst_ids & set(ids)
    ]
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    best = min(rows, key=lambda r: rank[r])
    return int(rank[best]), str(windows.get_column("window_id")[best])


def run_weblog(models: list[str], top: int, http: str = "both", http_only: bool = False) -> dict:
    from logsieve.evaluation.compare import compare
    from logsieve.features.http import attach_http
    from logsieve.grouping import CountWindows, group
    from logsieve.grouping.fields import client_sessions
    from logsieve.grouping.text import attach_messages
    from logsieve.io.atomic import write_json
    from logsieve.parsing.parser import template_counts

    http_params = {m: {"features": "http"} for m in HTTP_PARAMS} if http_only else HTTP_PARAMS
    events = weblog_events()
    ip, burst, first, last = find_crawler_burst(events)
    burst_ids = set(burst)
    print(
        f"\n   crawler burst: {len(burst)} robots.txt 404s to {ip} from {first} to {last} "
        f"(lines {min(burst)}..{max(burst)})"
    )
    variants = {"off": [False], "on": [True], "both": [False, True]}[http]
    out: dict = {"burst": {"ip": ip, "lines": burst, "first": str(first), "last": str(last)}}
    for with_http in variants:
        evs = status_events(events) if with_http else events
        templates = template_counts(events)
        groupings = {
            "count10": lambda e: group(e, CountWindows(10)).windows,
            "ip_sessions_30m": lambda e: client_sessions(e, "IP", "30m"),
        }
        tag = ("http_only" if http_only else "http") if with_http else "plain"
        for gname, make in groupings.items():
            plain = attach_http(attach_messages(make(events), events), events)
            status = attach_http(attach_messages(make(evs), evs), evs) if with_http else plain
            print(
                f"\n== weblog {gname}, {'WITH' if with_http else 'without'} HTTP features: "
                f"{plain.height} windows, {events.height} requests, {templates.height} templates"
            )
            t0 = time.perf_counter()
            reports = {}
            for model in models:
                wins = (
                    status
                    if with_http and model in (*STATUS_TOKEN_MODELS, *STATUS_TEXT_MODELS)
                    else plain
                )
                params = {model: http_params[model]} if with_http and model in http_params else None
                result = compare(
                    wins, [model], top=top, params=params, templates=templates, max_lines=5
                )
                reports[model] = (result, wins)
            print(f"   (compare took {time.perf_counter() - t0:.1f}s)")
            summary = []
            for model, (result, wins) in reports.items():
                m = result.models[0]
                rank, wid = burst_rank(m.scores, wins, burst_ids)
                flagged = bool(
                    m.scores[wins.get_column("window_id").to_list().index(wid)] > m.threshold
                )
                summary.append(
                    {
                        "model": model,
                        "inputs": http_params.get(model, {}).get("features")
                        if with_http and model in http_params
                        else (
                            "event id + status class"
                            if with_http and model in STATUS_TOKEN_MODELS
                            else "request line + status"
                            if with_http and model in STATUS_TEXT_MODELS
                            else m.detector.get_params().get(
                                "features", "event ids" if model == "lstm_ae" else "raw text"
                            )
                        ),
                        "flagged": int((m.scores > m.threshold).sum()),
                        "burst_rank": rank,
                        "burst_window": wid,
                        "burst_flagged": flagged,
                        "fit_s": round(m.fit_seconds, 1),
                        "top": [
                            {
                                "rank": t["rank"],
                                "window": t["window_id"],
                                "score": t["score"],
                                "flag": t["is_anomaly"],
                                "burst": bool(
                                    burst_ids & set(wins.get_column("line_ids")[t["row"]].to_list())
                                ),
                                **describe_window(
                                    events, wins.get_column("line_ids")[t["row"]].to_list()
                                ),
                            }
                            for t in m.top
                        ],
                    }
                )
            print(
                f"\n   {'model':10s} {'inputs':24s} {'flagged':>7s} {'burst rank':>10s} {'burst flagged':>13s}  burst window"
            )
            for r in summary:
                print(
                    f"   {r['model']:10s} {str(r['inputs']):24s} {r['flagged']:7d} "
                    f"{r['burst_rank']:10d} {'yes' if r['burst_flagged'] else 'no':>13s}  {r['burst_window']}"
                )
            for r in summary:
                print(f"\n   top {len(r['top'])} of {r['model']} ({tag}, {gname}):")
                for t in r["top"]:
                    status = " ".join(f"{k}:{v}" for k, v in t["status"].items())
                    print(
                        f"   {t['rank']:2d} {t['window']:16s} {t['score']:9.4g} "
                        f"{'F' if t['flag'] else ' '}{'B' if t['burst'] else ' '} "
                        f"{','.join(t['ips']):24.24s} {t['start'][5:19]} {t['requests']:4d} req  "
                        f"[{status}]  {' '.join(t['urls'])[:70]}"
                    )
            write_json(OUT / f"weblog_{gname}_{tag}.json", summary)
            out[f"{gname}_{tag}"] = summary
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", nargs="+", default=["hdfs", "bgl", "weblog"], choices=[*SETS, "weblog"]
    )
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--compare-models", nargs="+", default=MODELS)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument(
        "--http",
        choices=["off", "on", "both"],
        default="both",
        help="weblog: without HTTP features, with them, or both runs",
    )
    ap.add_argument(
        "--http-only",
        action="store_true",
        help="weblog: the dense models read the HTTP features alone (features=http)",
    )
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
            results["weblog"] = run_weblog(args.compare_models, args.top, args.http, args.http_only)
        else:
            results["labelled"] += run_labelled(name, args.models, args.contaminated)
    if args.json:
        from logsieve.io.atomic import write_json

        write_json(args.json, json.loads(json.dumps(results, default=float)))


if __name__ == "__main__":
    main()
