"""Every registered detector on real data, next to the published numbers -> docs/results.md.

    python benchmarks/prepare.py                 # once: parse + group the datasets (2 s)
    python benchmarks/results.py                 # all models, all datasets
    python benchmarks/results.py --models deeplog,pca --datasets hdfs
    python benchmarks/results.py --models logrobust,cnn --datasets hdfs --seeds 0-9 --threads 1 \
        --variant cnn:embedding=semantic --merge out/results_all.json

Settings (the same for every model; nothing is chosen on the test part):
- HDFS 2% sample (LogLead): 11,501 block sessions, 350 anomalous, ordered by start time;
  chronological split 60% train / 10% validation / 30% test. Unsupervised and
  semi-supervised models train on the normal (or unlabelled) training windows, as their
  papers do; supervised ones on all training windows with labels.
- BGL 20k sample: fixed windows of 20 lines, and 30-minute time windows; same split.
- Hadoop (AIT sequences): the 17 normal training sequences for training, all 150 normal
  and 811 abnormal test sequences for testing; label-free models only.
Thresholds, top-g and early stopping come from the validation part (the detectors'
``valid=`` argument). Seeds are fixed; a row over several seeds gives the mean and the
standard deviation of F1 over them. ``--variant MODEL:key=value[,key=value]`` adds a row
for the model with other parameters (named ``MODEL key=value``), next to its default row.
Times are wall-clock seconds on this machine with ``--threads`` torch threads.
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
#: the hand-written commentary of the output file starts here; a re-run keeps it below the new tables
NOTES_HEADING = "## Reading these numbers"

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
# Other papers' own numbers (PEERS.md §2.6, §2.8), by model and a part of the dataset name
# (the closest setting only); both used a random split of the full datasets: NeuralLog
# (ASE'21) README, P / R / F1, BGL windows of 20 lines; deep-loglizer's Transformer as
# quoted by LogAI, F1, BGL 6-hour sessions (shown next to our 30-minute windows).
PUBLISHED_OTHER = {
    "transformer": {"HDFS": "NeuralLog (random split): P 0.96 R 1.0 F1 0.98",
                    "20-line": "NeuralLog (random split, 20 logs): P 0.98 R 0.98 F1 0.98"},
    "transformer_nextlog": {"HDFS": "deep-loglizer Transformer (random split): F1 0.905",
                            "30-min": "deep-loglizer Transformer (random split, 6 h sessions): F1 0.956"},
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


def parse_variant(text: str) -> tuple[str, dict]:
    """``"cnn:embedding=semantic,epochs=10"`` -> ``("cnn", {"embedding": "semantic", "epochs": 10})``."""
    model, _, rest = text.partition(":")
    params: dict = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"--variant {text!r}: expected MODEL:key=value[,key=value]")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    if not model or not params:
        sys.exit(f"--variant {text!r}: expected MODEL:key=value[,key=value]")
    return model, params


def parse_seeds(text: str) -> list[int]:
    """``"0,3"`` -> [0, 3]; ``"0-4"`` -> [0, 1, 2, 3, 4]."""
    seeds: list[int] = []
    for part in filter(None, text.split(",")):
        lo, sep, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(part)]
    return seeds


def run_cell(model: str, data: dict, seed: int, params: dict | None = None, threads: int | None = None) -> dict:
    from logsieve.detectors.registry import create_detector
    from logsieve.evaluation.metrics import evaluate
    from logsieve.grouping.text import attach_messages

    det = create_detector(model, **(params or {}))
    if "random_state" in det.get_params():
        det.set_params(random_state=seed)
    if threads and "num_threads" in det.get_params():
        det.set_params(num_threads=threads)
    train, valid, test = data["train"], data["valid"], data["test"]
    if det.input_kind == "raw":
        if data["events"] is None:
            return {"skipped": "needs raw messages"}
        train = attach_messages(train, data["events"])
        test = attach_messages(test, data["events"])
        valid = None if valid is None else attach_messages(valid, data["events"])
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


def render(results: list[dict]) -> str:
    lines = [
        "# Detector results on real data",
        "",
        "Produced by `python benchmarks/prepare.py && python benchmarks/results.py` (one seed, 0, unless the",
        "row's `seeds` column says more: then the mean over the seeds, and the standard deviation of F1 in",
        "`F1 sd`). Settings are in the docstring of `benchmarks/results.py`:",
        "chronological 60/10/30 split, thresholds chosen on the validation part, never on the test part.",
        "Published numbers come from ../shared/docs/PEERS.md: the ICSE'22 study (LogADEmpirical, full HDFS with",
        "session windows; full BGL with 20-line and 0.5 h windows), loglizer's README (random 50% split),",
        "and for the Transformers NeuralLog's README and deep-loglizer (as quoted by LogAI; random splits).",
        "Our data are samples (HDFS 2%, BGL 20k lines), so the comparison is indicative, not like for like.",
        "",
    ]
    by_ds: dict[str, list[dict]] = {}
    for r in sorted(results, key=lambda r: r["model"]):
        by_ds.setdefault(r["dataset"], []).append(r)
    for ds, rows in by_ds.items():
        lines += [
            f"## {ds}",
            "",
            "| model | P | R | Spec | F1 | F1 sd | seeds | ROC-AUC | train s | detect s | published |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            if "error" in r or "skipped" in r:
                lines.append(f"| {r['model']} | {r.get('skipped') or 'error: ' + r['error']} ||||||||||")
                continue
            base = r["model"].split(" ")[0]  # a variant row "cnn embedding=semantic" compares with "cnn"
            pub = "–"
            if ds.startswith("HDFS") and base in PUBLISHED_HDFS:
                p = PUBLISHED_HDFS[base]
                pub = f"ICSE'22: P {p[0]} R {p[1]} Spec {p[2]} F1 {p[3]}"
            elif ds.startswith("HDFS") and base in PUBLISHED_LOGLIZER:
                p = PUBLISHED_LOGLIZER[base]
                pub = f"loglizer (random split): P {p[0]} R {p[1]} F1 {p[2]}"
            elif ds.startswith("BGL") and base in PUBLISHED_BGL_F1:
                f20, f05 = PUBLISHED_BGL_F1[base]
                pub = f"ICSE'22 full BGL F1: {f20} (20 logs)" if "20-line" in ds else f"ICSE'22 full BGL F1: {f05} (0.5 h)"
            elif base in PUBLISHED_OTHER:
                pub = next((text for part, text in PUBLISHED_OTHER[base].items() if part in ds), "–")
            n_seeds = int(r.get("seeds", 1))
            sd = _f(r.get("f1_sd")) if n_seeds > 1 else "–"
            lines.append(
                f"| {r['model']} | {_f(r['precision'])} | {_f(r['recall'])} | {_f(r['specificity'])} | {_f(r['f1'])} | "
                f"{sd} | {n_seeds} | {_f(r['roc_auc'])} | {_f(r['train_s'], 1)} | {_f(r['detect_s'], 2)} | {pub} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None, help="comma-separated registry names (default: all)")
    ap.add_argument("--datasets", default="hdfs,bgl,hadoop")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds or ranges, e.g. 0,1 or 0-9")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of every neural model (default: theirs)")
    ap.add_argument("--variant", action="append", default=[], metavar="MODEL:KEY=VALUE[,KEY=VALUE]",
                    help="also run MODEL with these parameters, as a row of its own (repeatable)")
    ap.add_argument("--output", type=Path, default=DOC)
    ap.add_argument("--json", type=Path, default=REPO / "out" / "results.json")
    ap.add_argument("--merge", type=Path, nargs="*", default=[],
                    help="earlier --json outputs to include (their rows for other models or datasets; a later file wins)")
    args = ap.parse_args(argv)
    from logsieve.detectors.registry import get_detector_class, list_detectors

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads or 2))
    models = [m for m in args.models.split(",") if m] if args.models is not None else list_detectors()
    # (row name, registry name, parameters): the default rows, then the variants
    runs_of: list[tuple[str, str, dict]] = [(m, m, {}) for m in models]
    for text in args.variant:
        model, params = parse_variant(text)
        runs_of.append((" ".join([model, *(f"{k}={v}" for k, v in params.items())]), model, params))
    seeds = parse_seeds(args.seeds)
    data = datasets(set(args.datasets.split(",")))
    # earlier rows by (dataset, model): a later --merge file wins over an earlier one, and
    # the (dataset, model) pairs this run recomputes are dropped
    earlier: dict[tuple[str, str], dict] = {}
    names = {name for name, _, _ in runs_of}
    for path in args.merge:
        text = path.read_text()
        rows = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.startswith("{")
        ]  # a JSON list (--json) or the JSON lines this script prints as it goes
        earlier.update(((r["dataset"], r["model"]), r) for r in rows if not (r["model"] in names and r["dataset"] in data))
    results: list[dict] = list(earlier.values())
    for ds, d in data.items():
        for name, model, params in runs_of:
            cls = get_detector_class(model)
            if d.get("label_free_only") and cls.requires_labels:
                continue
            runs = []
            for seed in seeds:
                try:
                    runs.append(run_cell(model, d, seed, params, args.threads))
                except Exception as exc:  # report, keep going
                    traceback.print_exc()
                    runs.append({"error": f"{type(exc).__name__}: {exc}"[:200]})
            row: dict = {"dataset": ds, "model": name}
            ok = [r for r in runs if "error" not in r and "skipped" not in r]
            if ok:
                for key in ok[0]:
                    vals = [r[key] for r in ok if r[key] is not None]
                    row[key] = float(np.mean(vals)) if vals else None
                row["seeds"] = len(ok)
                row["f1_runs"] = [r["f1"] for r in ok]
                row["f1_sd"] = float(np.std(row["f1_runs"]))
                if args.threads:
                    row["threads"] = args.threads
            else:
                row.update(runs[0])
            results.append(row)
            print(json.dumps(row, default=str), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    from logsieve.io.atomic import atomic_open

    notes = ""
    if args.output.is_file():
        old = args.output.read_text()
        at = old.find(NOTES_HEADING)
        notes = old[at:] if at >= 0 else ""
    with atomic_open(args.output) as fh:
        fh.write(render(results) + "\n" + notes)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
