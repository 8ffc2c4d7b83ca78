"""Sanity run of the classical count-vector detectors on real data (chronological splits).

Datasets (from ``benchmarks/prepare.py``, run it once first):

- ``hdfs``: ``out/data/hdfs2pct_sessions.parquet``, 11,501 HDFS block sessions (350 anomalous),
  time-ordered;
- ``bgl``: ``out/data/bgl20k_count20.parquet``, BGL 20k-line sample in fixed windows of 20
  lines (1,000 windows);
- ``bgl-sliding``: the same 20k BGL lines in sliding windows of 20 lines, step 1 (19,981
  windows), built here from ``out/data/bgl20k_events.parquet`` (a speed check at 20k
  windows; neighbouring windows overlap, so the split boundaries leak a little).

Protocol: chronological split train / valid / test = 60 / 10 / 30 % (the ICSE'22 study,
PLELog). Unsupervised models train on the normal training windows (anomalies dropped
by the detector); supervised ones on every labelled training window. The threshold is
each model's natural rule (``threshold="auto"``), or the one given by ``--threshold``
(``quantile`` / ``best_f1`` are chosen on the validation part, never on test). Times are
wall-clock seconds of ``fit`` (features + training + threshold) and of
``decision_function`` on the test part, after importing scikit-learn and scipy, with
one BLAS/OpenMP thread unless ``--threads`` says otherwise; the fastest of ``--repeat``
runs (default 3) is reported (the scores are the same in every run: fixed seeds).

``--split random --train 0.5 --valid 0 --contaminated`` approximates loglizer's HDFS
benchmark (a 50 % train part without time order; PCA, Invariants Mining and Isolation
Forest fitted on all training windows) for comparison with its published numbers.

Usage::

    .venv/bin/python benchmarks/sanity_classical.py [--data hdfs bgl bgl-sliding]
        [--models pca iforest ...] [--threshold auto|quantile|best_f1]
        [--split chronological|random] [--train 0.6] [--valid 0.1] [--contaminated]
        [--threads 1] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "out" / "data"
MODELS = ["pca", "invariants", "logclustering", "iforest", "ocsvm", "lof", "lr", "svm", "dtree"]


def load(name: str):  # type: ignore[no-untyped-def]
    import polars as pl

    if name == "hdfs":
        return pl.read_parquet(DATA / "hdfs2pct_sessions.parquet"), DATA / "hdfs2pct_templates.csv"
    if name == "bgl":
        return pl.read_parquet(DATA / "bgl20k_count20.parquet"), DATA / "bgl20k_templates.csv"
    if name == "bgl-sliding":
        from logsieve.grouping import CountWindows, group

        events = pl.read_parquet(DATA / "bgl20k_events.parquet")
        return group(events, CountWindows(20, step=1)).windows, DATA / "bgl20k_templates.csv"
    raise SystemExit(f"unknown dataset {name!r}")


def warm_up() -> None:
    """Import scikit-learn and scipy outside the timed regions (a one-time cost of seconds)."""
    import scipy.cluster.hierarchy  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.neighbors  # noqa: F401
    import sklearn.svm  # noqa: F401
    import sklearn.tree  # noqa: F401


def run(data: str, models: list[str], args: argparse.Namespace) -> list[dict]:
    import polars as pl

    from logsieve.detectors.registry import create_detector, detector_info
    from logsieve.evaluation.metrics import evaluate
    from logsieve.grouping import split_windows

    windows, templates_path = load(data)
    templates = pl.read_csv(templates_path).select("event_id", "template")
    threshold = args.threshold
    split = split_windows(
        windows, train=args.train, valid=args.valid, method=args.split, seed=args.seed
    )
    y_test = split.test.get_column("label").to_numpy()
    print(
        f"\n{data}: {windows.height} windows; train {split.train.height} "
        f"({int(split.train.get_column('label').sum())} anomalous), valid {split.valid.height}, "
        f"test {split.test.height} ({int(y_test.sum())} anomalous); "
        f"{args.split} split, threshold={threshold}"
        + (", unsupervised models see the anomalies too" if args.contaminated else "")
    )
    print(
        f"{'model':<14}{'P':>7}{'R':>7}{'Spec':>7}{'F1':>7}{'AUC':>7}{'fit s':>8}{'det s':>8}  thr"
    )
    rows = []
    for name in models:
        fit_s, det_s = [], []
        for _ in range(args.repeat):  # the machine is shared: keep the fastest run
            det = create_detector(
                name, threshold=threshold, include_anomalies=args.contaminated or None
            )
            t0 = time.perf_counter()
            valid = split.valid if split.valid.height else None
            det.fit(split.train, valid=valid, templates=templates)
            t1 = time.perf_counter()
            scores = det.decision_function(split.test)
            t2 = time.perf_counter()
            fit_s.append(t1 - t0)
            det_s.append(t2 - t1)
        t_fit, t_det = min(fit_s), min(det_s)
        pred = (scores > det.threshold_).astype(np.int8)
        m = evaluate(y_test, pred, scores)
        row = {
            "data": data,
            "model": name,
            "supervised": detector_info(name).requires_labels,
            "threshold": threshold,
            "split": args.split,
            "contaminated": args.contaminated,
            "threshold_value": det.threshold_,
            "precision": m["precision"],
            "recall": m["recall"],
            "specificity": m["specificity"],
            "f1": m["f1"],
            "roc_auc": m["roc_auc"],
            "tp": m["tp"],
            "fp": m["fp"],
            "fn": m["fn"],
            "fit_s": round(t_fit, 3),
            "detect_s": round(t_det, 3),
        }
        rows.append(row)
        print(
            f"{name:<14}{m['precision']:>7.3f}{m['recall']:>7.3f}"
            f"{m['specificity']:>7.3f}{m['f1']:>7.3f}"
            f"{m['roc_auc']:>7.3f}{t_fit:>8.2f}{t_det:>8.2f}  {det.threshold_:.4g}"
        )
        sys.stdout.flush()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", default=["hdfs", "bgl", "bgl-sliding"])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--threshold", default="auto", choices=["auto", "quantile", "best_f1"])
    ap.add_argument("--split", default="chronological", choices=["chronological", "random"])
    ap.add_argument("--train", type=float, default=0.6)
    ap.add_argument("--valid", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0, help="seed of the random split")
    ap.add_argument(
        "--contaminated",
        action="store_true",
        help="unsupervised models train on every training window, anomalies included "
        "(loglizer's PCA, "
        "Invariants Mining and Isolation Forest benchmarks do this)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP threads (default 1: on a shared 2-core machine more threads "
        "spin against each other and small SVDs take seconds instead of milliseconds)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per model; the fastest is reported")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not (DATA / "hdfs2pct_sessions.parquet").is_file():
        raise SystemExit("out/data is missing: run .venv/bin/python benchmarks/prepare.py first")
    from threadpoolctl import threadpool_limits

    warm_up()  # before the limits: threadpoolctl only limits libraries already loaded
    with threadpool_limits(limits=args.threads):
        rows = [r for d in args.data for r in run(d, args.models, args)]
    if args.json:
        from logsieve.io.atomic import write_json

        write_json(args.json, rows)


if __name__ == "__main__":
    main()
