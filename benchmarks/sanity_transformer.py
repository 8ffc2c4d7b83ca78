"""Sanity results of the two Transformer detectors on real data (chronological splits).

    .venv/bin/python benchmarks/prepare.py                  # once: out/data/*.parquet
    .venv/bin/python benchmarks/sanity_transformer.py [--models transformer,transformer_nextlog]
        [--data hdfs,bgl] [--split 0.6,0.1,0.3] [--threads 2] [--epochs N] [--json out.json]
        [--bgl-messages content|line] [--set key=value ...]

Data (see benchmarks/prepare.py):

- ``hdfs``: the 11,501 block sessions of the LogLead 2% HDFS sample (350 anomalous),
  in time order; the raw model reads each session's messages from
  ``hdfs2pct_events.parquet`` (``attach_messages``).
- ``bgl``: the BGL 20k sample in windows of 20 lines (1,000 windows, 165 anomalous).
  ``--bgl-messages line`` feeds the raw model the whole line without its alert label
  (node, type, component and level fields + message), as NeuralLog's loader does;
  ``content`` (default) only the message part.

Split: the first 60 % of windows train, the next 10 % validate (early stopping; the
supervised model also uses it for nothing else, thresholds are the models' own rules:
argmax for ``transformer``, top-k for ``transformer_nextlog``), the last 30 % test.
The next-event model trains on the normal windows of the training part. Reported:
precision, recall, specificity, F1, ROC-AUC on the test part, and the seconds spent in
``fit`` and in ``predict`` on the test part (wall clock; the CPU may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "out" / "data"

# deep-loglizer's top-k per dataset (benchmarks/*/transformer.sh)
NEXTLOG_K = {"hdfs": 10, "bgl": 50}


def _value(text: str):  # type: ignore[no-untyped-def]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(text.lower(), text)


def load(name: str, bgl_messages: str):  # type: ignore[no-untyped-def]
    import polars as pl

    from logsieve.grouping.text import attach_messages

    if name == "hdfs":
        windows = pl.read_parquet(OUT / "hdfs2pct_sessions.parquet")
        events = pl.scan_parquet(OUT / "hdfs2pct_events.parquet")
        column = "content"
    elif name == "bgl":
        windows = pl.read_parquet(OUT / "bgl20k_count20.parquet")
        events = pl.scan_parquet(OUT / "bgl20k_events.parquet")
        column = "content"
        if bgl_messages == "line":
            fields = ["Node", "Type", "Component", "Level", "content"]
            events = events.with_columns(
                pl.concat_str([pl.col(f).fill_null("") for f in fields], separator=" ").alias(
                    "line"
                )
            )
            column = "line"
    else:
        raise SystemExit(f"unknown data set {name!r}")
    return attach_messages(windows, events, column=column)


def run(model: str, data: str, split, args) -> dict:  # type: ignore[no-untyped-def]
    import numpy as np

    from logsieve.detectors.registry import create_detector
    from logsieve.evaluation.metrics import evaluate

    params: dict = {}
    if model == "transformer_nextlog":
        params["num_candidates"] = NEXTLOG_K[data]
    if args.epochs:
        params["epochs"] = args.epochs
    params.update(num_threads=args.threads, random_state=args.seed)
    for item in args.set or []:
        key, _, value = item.partition("=")
        params[key] = _value(value)
    det = create_detector(model, **params)
    t0 = time.perf_counter()
    det.fit(split.train, valid=split.valid)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = det.predict(split.test)
    detect_s = time.perf_counter() - t0
    scores = det.decision_function(split.test)
    y = split.test.get_column("label").to_numpy()
    m = evaluate(y, pred, scores)
    return {
        "model": model,
        "data": data,
        "params": {k: v for k, v in params.items()},
        "train_windows": det.n_train_windows_,
        "epochs_run": len(det.history_),
        "threshold": det.threshold_,
        "fit_s": round(fit_s, 2),
        "detect_s": round(detect_s, 2),
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()},
        "test_windows": int(len(y)),
        "test_anomalous": int(np.sum(y)),
        "embedder": getattr(det, "embedder_kind_", None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default="transformer,transformer_nextlog",
        help="registry names (others, e.g. deeplog, for comparison)",
    )
    parser.add_argument("--data", default="hdfs,bgl")
    parser.add_argument("--split", default="0.6,0.1,0.3")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--epochs", type=int, default=0, help="override the models' default epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bgl-messages", choices=("content", "line"), default="content")
    parser.add_argument(
        "--set", action="append", help="extra detector parameter key=value (repeatable)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (OUT / "hdfs2pct_sessions.parquet").is_file():
        sys.exit("run benchmarks/prepare.py first (needs ../shared/data)")

    import torch

    from logsieve.grouping import split_windows

    torch.optim.Adam(
        [torch.zeros(1, requires_grad=True)]
    )  # one-time import cost outside the timings
    train, valid, test = (float(x) for x in args.split.split(","))
    rows = []
    for data in args.data.split(","):
        windows = load(data, args.bgl_messages)
        split = split_windows(windows, train=train, valid=valid, test=test, method="chronological")
        for model in args.models.split(","):
            row = run(model, data, split, args)
            rows.append(row)
            print(
                f"{data:5s} {model:20s} P={row['precision']:.3f} R={row['recall']:.3f} "
                f"Spec={row['specificity']:.3f} F1={row['f1']:.3f} AUC={row['roc_auc']:.3f} "
                f"fit={row['fit_s']}s detect={row['detect_s']}s epochs={row['epochs_run']} "
                f"(test {row['test_windows']} windows, {row['test_anomalous']} anomalous)",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
