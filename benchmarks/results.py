"""Every registered detector on real data, next to the published numbers -> docs/results.md.

    python benchmarks/prepare.py                 # once: parse + group the datasets (2 s)
    python benchmarks/results.py                 # all models, all datasets
    python benchmarks/results.py --models deeplog,pca --datasets hdfs

Settings (the same for every model; nothing is chosen on the test part):
- HDFS 2% sample (LogLead): 11,501 block sessions, 350 anomalous, ordered by start time;
  chronological split 60% train / 10% validation / 30% test. Unsupervised and
  semi-supervised models train on the normal (or unlabelled) training windows, as their
  papers do; supervised ones on all training windows with labels.
- BGL 20k sample: fixed windows of 20 lines, and 30-minute time windows; same split.
- Hadoop (AIT sequences): the 17 normal training sequences for training, all 150 normal
  and 811 abnormal test sequences for testing; label-free models only.
Thresholds, top-g and early stopping come from the validation part (the detectors'
``valid=`` argument). Seeds are fixed. Times are wall-clock seconds on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "out" / "data"
SHARED = Path(os.environ.get("LOGSIEVE_SHARED_DATA", REPO.parent / "shared" / "data"))
DOC = REPO / "docs" / "results.md"

# ICSE'22 study (LogADEmpirical pictures, PEERS.md §2.5): session grouping on HDFS (a),
# and BGL fixed 20-line / 0.5 h windows, F1 only (b). (P, R, Spec, F1) or F1.
PUBLISHED_HDFS = {
    "deeplog": (0.835, 0.994, 0.994, 0.908),
    "loganomaly": (0.886, 0.893, 0.961, 0.966),
    "plelog": (0.893, 0.979, 0.996, 0.934),
    "logrobust": (0.961, 1.0, 0.989, 0.980),
    "cnn": (0.966, 1.0, 0.991, 0.982),
}
PUBLISHED_BGL_F1 = {  # (20 logs, 0.5 h)
    "deeplog": (0.227, 0.345),
    "loganomaly": (0.239, 0.43),
    "plelog": (0.708, 0.772),
    "logrobust": (0.753, 0.878),
    "cnn": (0.767, 0.883),
}
# loglizer README (PEERS.md §2.10), HDFS, random 50% split: (P, R, F1)
PUBLISHED_LOGLIZER = {
    "lr": (0.955, 0.911, 0.933),
    "dtree": (0.998, 0.998, 0.998),
    "svm": (0.959, 0.970, 0.965),
    "lof": (0.967, 0.561, 0.710),
    "ocsvm": (0.995, 0.222, 0.363),
    "iforest": (0.830, 0.776, 0.802),
    "pca": (0.975, 0.635, 0.769),
    "invariants": (0.888, 0.945, 0.915),
    "logclustering": (1.000, 0.720, 0.837),
}


def _load(name: str) -> pl.DataFrame:
    path = OUT / f"{name}.parquet"
    if not path.exists():
        sys.exit(f"{path} missing: run `python benchmarks/prepare.py` first")
    return pl.read_parquet(path)


def _templates(name: str) -> pl.DataFrame:
    return pl.read_csv(OUT / f"{name}.csv").select("event_id", "template")


def datasets(which: set[str]) -> dict[str, dict]:
    from logsieve.grouping import concat_windows, split_windows

    out: dict[str, dict] = {}

    def chrono(windows: pl.DataFrame, events: str, templates: str) -> dict:
        sp = split_windows(windows, 0.6, 0.1, method="chronological")
        return {"train": sp.train, "valid": sp.valid, "test": sp.test, "events": OUT / f"{events}.parquet",
                "templates": _templates(templates), "labels_needed": False}

    if "hdfs" in which:
        out["HDFS 2% sessions"] = chrono(_load("hdfs2pct_sessions"), "hdfs2pct_events", "hdfs2pct_templates")
    if "bgl" in which:
        out["BGL 20k, 20-line windows"] = chrono(_load("bgl20k_count20"), "bgl20k_events", "bgl20k_templates")
        out["BGL 20k, 30-min windows"] = chrono(_load("bgl20k_time30m"), "bgl20k_events", "bgl20k_templates")
    if "hadoop" in which:
        from logsieve.grouping.sequences import read_templates

        test = concat_windows(_load("hadoop_test_normal"), _load("hadoop_test_abnormal"))
        templates = SHARED / "ait_sequences" / "templates" / "Hadoop_templates.csv"
        out["Hadoop sequences"] = {"train": _load("hadoop_train"), "valid": None, "test": test, "events": None,
                                   "templates": read_templates(templates) if templates.exists() else None,
                                   "label_free_only": True}
    return out


def run_cell(model: str, data: dict, seed: int) -> dict:
    from logsieve.cli.models import with_messages
    from logsieve.detectors.registry import create_detector
    from logsieve.evaluation.metrics import evaluate

    det = create_detector(model)
    if "random_state" in det.get_params():
        det.set_params(random_state=seed)
    train, valid, test = data["train"], data["valid"], data["test"]
    if det.input_kind == "raw":
        if data["events"] is None:
            return {"skipped": "needs raw messages"}
        train = with_messages(train, "raw", data["events"])
        test = with_messages(test, "raw", data["events"])
        valid = None if valid is None else with_messages(valid, "raw", data["events"])
    t0 = time.perf_counter()
    det.fit(train, valid=valid, templates=data["templates"])
    t1 = time.perf_counter()
    scores = det.decision_function(test)
    pred = (scores > det.threshold_).astype(np.int8)
    t2 = time.perf_counter()
    m = evaluate(test["label"].to_numpy(), pred, scores)
    return {"precision": m["precision"], "recall": m["recall"], "specificity": m["specificity"], "f1": m["f1"],
            "roc_auc": m["roc_auc"], "train_s": t1 - t0, "detect_s": t2 - t1}


def _f(v: float | None, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:.{nd}f}"


def render(results: list[dict], seeds: list[int]) -> str:
    lines = [
        "# Detector results on real data",
        "",
        "Produced by `python benchmarks/prepare.py && python benchmarks/results.py` "
        f"(seeds {seeds}; mean over seeds). Settings are in the docstring of `benchmarks/results.py`:",
        "chronological 60/10/30 split, thresholds chosen on the validation part, never on the test part.",
        "Published numbers come from ../shared/docs/PEERS.md: the ICSE'22 study (LogADEmpirical, full HDFS with",
        "session windows; full BGL with 20-line and 0.5 h windows) and loglizer's README (random 50% split).",
        "Our data are samples (HDFS 2%, BGL 20k lines), so the comparison is indicative, not like for like.",
        "",
    ]
    by_ds: dict[str, list[dict]] = {}
    for r in sorted(results, key=lambda r: r["model"]):
        by_ds.setdefault(r["dataset"], []).append(r)
    for ds, rows in by_ds.items():
        lines += [f"## {ds}", "", "| model | P | R | Spec | F1 | ROC-AUC | train s | detect s | published |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if "error" in r or "skipped" in r:
                lines.append(f"| {r['model']} | {r.get('skipped') or 'error: ' + r['error']} ||||||||")
                continue
            pub = "–"
            if ds.startswith("HDFS") and r["model"] in PUBLISHED_HDFS:
                p = PUBLISHED_HDFS[r["model"]]
                pub = f"ICSE'22: P {p[0]} R {p[1]} Spec {p[2]} F1 {p[3]}"
            elif ds.startswith("HDFS") and r["model"] in PUBLISHED_LOGLIZER:
                p = PUBLISHED_LOGLIZER[r["model"]]
                pub = f"loglizer (random split): P {p[0]} R {p[1]} F1 {p[2]}"
            elif ds.startswith("BGL") and r["model"] in PUBLISHED_BGL_F1:
                f20, f05 = PUBLISHED_BGL_F1[r["model"]]
                pub = f"ICSE'22 full BGL F1: {f20} (20 logs)" if "20-line" in ds else f"ICSE'22 full BGL F1: {f05} (0.5 h)"
            lines.append(
                f"| {r['model']} | {_f(r['precision'])} | {_f(r['recall'])} | {_f(r['specificity'])} | {_f(r['f1'])} | "
                f"{_f(r['roc_auc'])} | {_f(r['train_s'], 1)} | {_f(r['detect_s'], 2)} | {pub} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None, help="comma-separated registry names (default: all)")
    ap.add_argument("--datasets", default="hdfs,bgl,hadoop")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--output", type=Path, default=DOC)
    ap.add_argument("--json", type=Path, default=REPO / "out" / "results.json")
    ap.add_argument("--merge", type=Path, nargs="*", default=[], help="earlier --json outputs to include (their rows for other models or datasets)")
    args = ap.parse_args(argv)
    from logsieve.detectors.registry import get_detector_class, list_detectors

    os.environ.setdefault("OMP_NUM_THREADS", "2")
    models = args.models.split(",") if args.models else list_detectors()
    seeds = [int(s) for s in args.seeds.split(",")]
    data = datasets(set(args.datasets.split(",")))
    results: list[dict] = []
    for path in args.merge:
        text = path.read_text()
        rows = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.startswith("{")
        ]  # a JSON list (--json) or the JSON lines this script prints as it goes
        # keep every earlier row except the (dataset, model) pairs this run recomputes
        results += [r for r in rows if not (r["model"] in models and r["dataset"] in data)]
    for ds, d in data.items():
        for model in models:
            cls = get_detector_class(model)
            if d.get("label_free_only") and cls.requires_labels:
                continue
            runs = []
            for seed in seeds:
                try:
                    runs.append(run_cell(model, d, seed))
                except Exception as exc:  # report, keep going
                    traceback.print_exc()
                    runs.append({"error": f"{type(exc).__name__}: {exc}"[:200]})
            row: dict = {"dataset": ds, "model": model}
            ok = [r for r in runs if "error" not in r and "skipped" not in r]
            if ok:
                for key in ok[0]:
                    vals = [r[key] for r in ok if r[key] is not None]
                    row[key] = float(np.mean(vals)) if vals else None
            else:
                row.update(runs[0])
            results.append(row)
            print(json.dumps(row, default=str), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    from logsieve.io.atomic import atomic_open

    with atomic_open(args.output) as fh:
        fh.write(render(results, seeds) + "\n")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
