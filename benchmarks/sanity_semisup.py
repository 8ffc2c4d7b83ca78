"""Sanity run of LogAnomaly and PLELog on real data (HDFS 2% sessions, BGL 20k windows).

Data: ``out/data`` from ``benchmarks/prepare.py`` (run it once). Every dataset is split
chronologically 60/10/30 (train/validation/test) with
:func:`logsieve.grouping.split_windows`, as in PLELog's code and the ICSE'22 study.

- LogAnomaly (unsupervised) trains on the training windows labelled 0 (the default
  label filter of unsupervised detectors); threshold: the top-g rule (``"auto"``).
- PLELog (semi-supervised) trains on ALL training windows: a random half of those
  labelled 0 keep their label, everything else (other normals and the anomalies) is
  unlabelled; threshold: 0.5 on P(anomalous) (``"auto"``). Its label-estimation
  quality on the training windows is reported too (precision/recall of the estimated
  anomalous windows against the hidden true labels).

The templates of the whole log (``*_templates.csv``) are passed to ``fit``: the
training events' templates fit the embedder, the others are embedded as templates
unseen in training (what a deployed parser would hand over at detection time).

Usage::

    .venv/bin/python benchmarks/sanity_semisup.py [--datasets hdfs bgl20 bgl100 bgl30m]
        [--models loganomaly plelog] [--threads 1] [--seed 0] [--json out.json]
        [--stream-bounds]   # LogAnomaly on BGL: predict only full-history positions
        [--match-unseen 0.9]  # LogAnomaly: unseen templates matched to similar training ones
        [--threshold best_f1]  # threshold chosen on the labelled validation part instead

Reported: precision, recall, specificity, F1, ROC-AUC on the test part, fit and detect
seconds (wall clock, this machine).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "out" / "data"

DATASETS = {
    "hdfs": ("hdfs2pct_sessions.parquet", "hdfs2pct_templates.csv", True),
    "bgl20": ("bgl20k_count20.parquet", "bgl20k_templates.csv", False),
    "bgl100": ("bgl20k_count100.parquet", "bgl20k_templates.csv", False),
    "bgl30m": ("bgl20k_time30m.parquet", "bgl20k_templates.csv", False),
}


def load(name: str):  # type: ignore[no-untyped-def]
    from logsieve.grouping import split_windows

    windows_file, templates_file, sessions = DATASETS[name]
    path = DATA / windows_file
    if not path.exists():
        sys.exit(f"{path} missing: run .venv/bin/python benchmarks/prepare.py first")
    windows = pl.read_parquet(path)
    templates = pl.read_csv(DATA / templates_file).select("event_id", "template")
    split = split_windows(windows, train=0.6, valid=0.1, method="chronological")
    return split, templates, sessions


def _fmt(x: float) -> str:
    return "  nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def run(model: str, dataset: str, args: argparse.Namespace) -> dict:
    from logsieve.detectors.registry import create_detector
    from logsieve.evaluation.metrics import evaluate

    split, templates, sessions = load(dataset)
    params: dict = {"random_state": args.seed, "num_threads": args.threads, "threshold": args.threshold}
    if model == "loganomaly" and not sessions and args.stream_bounds:
        params["session_bounds"] = False
    if model == "loganomaly" and args.match_unseen is not None:
        params["match_unseen"] = args.match_unseen
    det = create_detector(model, **params)
    t0 = time.perf_counter()
    det.fit(split.train, valid=split.valid, templates=templates)
    t1 = time.perf_counter()
    scores = det.decision_function(split.test)
    t2 = time.perf_counter()
    pred = (scores > det.threshold_).astype(np.int8)
    y = split.test.get_column("label").to_numpy()
    res = evaluate(y, pred, scores)
    out = {
        "model": model,
        "dataset": dataset,
        "params": params,
        "train": split.summary()["train"],
        "test": split.summary()["test"],
        "threshold": det.threshold_,
        "fit_s": round(t1 - t0, 2),
        "detect_s": round(t2 - t1, 2),
        "epochs_run": len(getattr(det, "history_", [])),
        "unseen_templates_embedded": len(getattr(det, "extra_event_ids_", [])),
        **{k: res[k] for k in ("precision", "recall", "specificity", "f1", "roc_auc", "tp", "fp", "fn", "tn")},
    }
    if model == "plelog":
        est = det.label_estimate_
        # the training windows the detector saw are split.train (include_anomalies=True)
        truth = split.train.get_column("label").to_numpy()
        guess = est.predicted
        unl = est.source != 0
        tp = int(((guess == 1) & (truth == 1) & unl).sum())
        out["label_estimation"] = {
            **det.label_summary_,
            "precision": tp / max(1, int((guess[unl] == 1).sum())),
            "recall": tp / max(1, int((truth[unl] == 1).sum())),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--models", nargs="+", default=["loganomaly", "plelog"], choices=["loganomaly", "plelog"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stream-bounds", action="store_true", help="LogAnomaly on BGL: session_bounds=False")
    ap.add_argument("--threshold", default="auto", help="auto (top-g / 0.5) or best_f1 (on the validation part)")
    ap.add_argument("--match-unseen", type=float, help="LogAnomaly: match unseen templates at this cosine")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # warm-up outside the timed regions
    rows = []
    print(f"{'dataset':8} {'model':10} {'P':>6} {'R':>6} {'Spec':>6} {'F1':>6} {'AUC':>6} {'fit_s':>7} {'det_s':>6}")
    for dataset in args.datasets:
        for model in args.models:
            r = run(model, dataset, args)
            rows.append(r)
            print(
                f"{dataset:8} {model:10} {_fmt(r['precision']):>6} {_fmt(r['recall']):>6} "
                f"{_fmt(r['specificity']):>6} {_fmt(r['f1']):>6} {_fmt(r['roc_auc']):>6} "
                f"{r['fit_s']:7.1f} {r['detect_s']:6.2f}",
                flush=True,
            )
            if "label_estimation" in r:
                le = r["label_estimation"]
                print(
                    f"{'':8} {'  labels':10} est. anomalous {le['estimated_anomalous']}, "
                    f"P {le['precision']:.3f} R {le['recall']:.3f} (clusters {le['clusters']})",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
