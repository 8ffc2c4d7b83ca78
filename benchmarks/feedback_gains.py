"""Feedback holds its gains (issue 12, must-show 1) on the HDFS 2% sample.

Run ``benchmarks/prepare.py`` once first. For each model: train on the first 60% of the
sessions in time order (normal only for the unsupervised models; LogRobust is supervised and
sees the labels), validate on the next 10% and test on the last 30%
(``train_job(..., split="0.6,0.1,0.3")``, as ``logsieve train --test 0.3`` does). Every test
false positive is then marked normal with :func:`logsieve.detectors.feedback.learn_feedback`
(what ``logsieve feedback`` runs, with the training and validation windows kept in the model
directory), and the test windows are scored again.

Each model is trained once and taught with each feedback scope (``window``, the default:
the marked windows exactly plus the model's guarded learning; ``pattern``: also generalise).
Printed per model and scope: false positives before/after, marked windows still flagged
(and how many the model alone, without the remembered windows, still flags), recall on the
test anomalies before/after, and unmarked normal windows flagged before/after.
``--mark-every 2`` marks every other false positive only, so the unmarked ones show what
the feedback generalises to; ``--reuse`` with ``--out`` skips training models already there.

Usage::

    .venv/bin/python benchmarks/feedback_gains.py [--models deeplog logrobust ae] [--scopes window pattern]
        [--mark-every N] [--out DIR [--reuse]]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from logsieve.detectors.feedback import SCOPES, learn_feedback
from logsieve.pipeline import Pipeline
from logsieve.pipeline.core import PART, PIPELINE_FILE, TEST_WINDOWS_FILE, TRAIN_WINDOWS_FILE
from logsieve.pipeline.jobs import train_job
from logsieve.schema import LABEL

SESSIONS = Path("out/data/hdfs2pct_sessions.parquet")
UNSUPERVISED_NORMAL_ONLY = {"deeplog": True, "ae": True, "logrobust": False}


def measure(
    model: str, sessions: Path, out: Path, scopes: list[str], mark_every: int = 1, reuse: bool = False
) -> list[dict[str, object]]:
    model_dir = out / model
    t0 = time.perf_counter()
    if not (reuse and (model_dir / PIPELINE_FILE).is_file()):
        train_job(sessions, model, {}, model_dir, split="0.6,0.1,0.3",
                  train_normal_only=UNSUPERVISED_NORMAL_ONLY.get(model, True))  # fmt: skip
    fit_s = time.perf_counter() - t0
    test = pl.read_parquet(model_dir / TEST_WINDOWS_FILE)
    seen = pl.read_parquet(model_dir / TRAIN_WINDOWS_FILE)
    train = seen.filter(pl.col(PART) != "valid").drop(PART)
    valid = seen.filter(pl.col(PART) == "valid").drop(PART)
    y = test[LABEL].to_numpy()
    n_anom = max(int((y == 1).sum()), 1)
    rows = []
    for scope in scopes:
        det = Pipeline.load(model_dir).detector  # the same trained model for every scope
        before = det.decision_function(test) > det.threshold_
        fp = before & (y == 0)
        if mark_every > 1:  # every n-th false positive in test order; the others stay unmarked
            marked = np.zeros(len(y), dtype=bool)
            marked[np.flatnonzero(fp)[::mark_every]] = True
            fp = marked
        t0 = time.perf_counter()
        report = learn_feedback(det, test.filter(pl.Series(fp)), "normal", train=train,
                                valid=valid, scope=scope)  # fmt: skip
        fb_s = time.perf_counter() - t0
        after = det.decision_function(test) > det.threshold_
        alone = det._score_distinct(test) > det.threshold_  # the model without the memory
        rows.append({
            "model": model,
            "scope": scope,
            "test": len(y),
            "anomalies": int((y == 1).sum()),
            "valid": valid.height,
            "valid_anomalies": int((valid[LABEL] == 1).sum()),
            "fp_before": int((before & (y == 0)).sum()),
            "fp_after": int((after & (y == 0)).sum()),
            "marked": int(fp.sum()),
            "marked_flagged": int((after & fp).sum()),
            "marked_flagged_by_model": int((alone & fp).sum()),
            "recall_before": float((before & (y == 1)).sum() / n_anom),
            "recall_after": float((after & (y == 1)).sum() / n_anom),
            "unmarked_before": int((before & (y == 0) & ~fp).sum()),
            "unmarked_after": int((after & (y == 0) & ~fp).sum()),
            "fit_s": round(fit_s, 1),
            "feedback_s": round(fb_s, 1),
            "action": report.get("action"),
            "threshold": report.get("threshold"),
            "pairs_taught": report.get("pairs_taught"),
        })  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["deeplog", "logrobust", "ae"])
    ap.add_argument("--scopes", nargs="+", default=list(SCOPES), choices=SCOPES)
    ap.add_argument("--mark-every", type=int, default=1,
                    help="mark every n-th test false positive only (default 1: all of them)")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the models already trained under --out")
    ap.add_argument("--sessions", type=Path, default=SESSIONS)
    ap.add_argument("--out", type=Path, default=None, help="keep the model directories here")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not args.sessions.exists():
        raise SystemExit(f"{args.sessions}: run benchmarks/prepare.py first")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        rows = [r for m in args.models for r in measure(m, args.sessions, out, args.scopes,
                                                      args.mark_every, args.reuse)]
    print("| model | scope | FP before | FP after | marked | marked still flagged (by the model alone) | "
          "recall before | recall after | unmarked normals flagged before | after | "
          "feedback s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['scope']} | {r['fp_before']} | {r['fp_after']} | "
              f"{r['marked']} | {r['marked_flagged']} ({r['marked_flagged_by_model']}) | "
              f"{r['recall_before']:.3f} | {r['recall_after']:.3f} | {r['unmarked_before']} | "
              f"{r['unmarked_after']} | {r['feedback_s']} |")  # fmt: skip
    for r in rows:
        print(
            f"{r['model']} ({r['scope']}): {r['anomalies']} anomalies in {r['test']} test "
            f"windows, validation {r['valid']} ({r['valid_anomalies']} anomalous); "
            f"{r['action']}; threshold {r['threshold']}"
            + (f"; {r['pairs_taught']} pairs taught" if r["pairs_taught"] else "")
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
