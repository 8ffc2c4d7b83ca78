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
import re
import sys
import traceback
from pathlib import Path


def _early_threads(argv: list[str]) -> str:
    """``--threads N`` read before NumPy loads, since BLAS fixes its thread count at import."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "2"


os.environ.setdefault("OMP_NUM_THREADS", _early_threads(sys.argv))

import numpy as np  # noqa: E402

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


def _file(name: str) -> Path:
    path = OUT / f"{name}.parquet"
    if not path.exists():
        sys.exit(f"{path} missing: run `python benchmarks/prepare.py` first")
    return path


def datasets(which: set[str]) -> dict[str, dict]:
    """Each dataset as the files and ``logsieve train`` options that make its rows."""
    out: dict[str, dict] = {}
    split = {"split": "0.6,0.1,0.3", "cli_split": "--valid 0.1 --test 0.3"}
    if "hdfs" in which:
        out["HDFS 2% sessions"] = {"windows": _file("hdfs2pct_sessions"),
                                   "events": _file("hdfs2pct_events"), **split}
    if "bgl" in which:
        events = _file("bgl20k_events")
        out["BGL 20k, 20-line windows"] = {"windows": _file("bgl20k_count20"), "events": events, **split}
        out["BGL 20k, 30-min windows"] = {"windows": _file("bgl20k_time30m"), "events": events, **split}
    if "hadoop" in which:
        templates = SHARED / "ait_sequences" / "templates" / "Hadoop_templates.csv"
        out["Hadoop sequences"] = {"windows": _file("hadoop_train"), "test": _file("hadoop_test"),
                                   "events": None, "split": None, "cli_split": "--valid 0",
                                   "templates": templates if templates.exists() else None,
                                   "label_free_only": True}
    return out


def cli_commands(model: str, data: dict, seed: int, params: dict, threads: int | None) -> list[str]:
    """The ``logsieve`` commands that reproduce one cell (after ``benchmarks/prepare.py``)."""
    sets = dict(params)
    if threads:
        sets["num_threads"] = threads
    opts = "".join(f" --set {k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sets.items())
    extra = ""
    if data.get("templates"):
        extra += f" --templates {data['templates']}"
    if data.get("events") is not None and _raw(model):
        extra += f" --events {_rel(data['events'])}"
    test = f"{_rel(data['test'])}" if data.get("test") else "model/test_windows.parquet"
    return [
        f"logsieve train {_rel(data['windows'])} --model {model} {data['cli_split']} --seed {seed}"
        f"{opts}{extra} -o model",
        f"logsieve detect {test} -m model -o scores.parquet"
        + (f" --events {_rel(data['events'])}" if data.get("events") is not None and _raw(model) else ""),
        "logsieve evaluate scores.parquet",
    ]


def _rel(path: Path | str) -> str:
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return str(path)


def _raw(model: str) -> bool:
    from logsieve.detectors.registry import detector_info

    return detector_info(model).input_kind == "raw"


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
    """One cell through the same jobs as ``logsieve train`` + ``detect`` + ``evaluate``."""
    import tempfile

    from logsieve.detectors.registry import get_detector_class
    from logsieve.evaluation.scores import evaluate_scores
    from logsieve.pipeline.jobs import detect_job, train_job

    params = dict(params or {})
    if threads and "num_threads" in get_detector_class(model)().get_params():
        params["num_threads"] = threads
    if _raw(model) and data.get("events") is None:
        return {"skipped": "needs raw messages"}
    with tempfile.TemporaryDirectory(prefix="results-") as tmp:
        model_dir = Path(tmp) / "model"
        trained = train_job(
            data["windows"], model, params, model_dir, split=data["split"], seed=seed,
            templates=data.get("templates"), events=data["events"] if _raw(model) else None,
        )
        test = data.get("test") or model_dir / "test_windows.parquet"
        scores = Path(tmp) / "scores.parquet"
        detected, _ = detect_job(test, model_dir, scores, events=data["events"] if _raw(model) else None)
        m = evaluate_scores(scores)
    return {"precision": m["precision"], "recall": m["recall"], "specificity": m["specificity"], "f1": m["f1"],
            "roc_auc": m["roc_auc"], "train_s": trained["train_seconds"], "detect_s": detected["seconds"]}


def cli_options(row_name: str, threads: int | None = None) -> str:
    """``"cnn embedding=semantic"`` -> ``--model cnn --set embedding=semantic``."""
    model, *sets = row_name.split(" ")
    if threads:
        sets.append(f"num_threads={threads}")
    return " ".join([f"--model {model}", *(f"--set {kv}" for kv in sets)])


_PARSE_HDFS = ("logsieve parse ../shared/data/hdfs_loglead_2pct/HDFS_2pct.log.gz --format hdfs "
               "-o out/data/hdfs2pct_events.parquet")
_PARSE_BGL = "logsieve parse ../shared/data/bgl_sample_20k/BGL_20k.log --format bgl -o out/data/bgl20k_events.parquet"
_TRAIN_EVAL = ["logsieve train {windows} MODEL_OPTIONS --valid 0.1 --test 0.3 --seed SEED -o model",
               "logsieve detect model/test_windows.parquet -m model -o scores.parquet",
               "logsieve evaluate scores.parquet"]
#: the commands behind each dataset's rows (raw-text models add --events EVENTS to train and detect)
DATASET_FILES = {
    "HDFS 2% sessions": [
        _PARSE_HDFS,
        "logsieve group out/data/hdfs2pct_events.parquet "
        "--labels ../shared/data/hdfs_loglead_2pct/anomaly_label.csv -o out/data/hdfs2pct_sessions.parquet",
        *(c.format(windows="out/data/hdfs2pct_sessions.parquet") for c in _TRAIN_EVAL),
    ],
    "BGL 20k, 20-line windows": [
        _PARSE_BGL,
        "logsieve group out/data/bgl20k_events.parquet --window 20 -o out/data/bgl20k_count20.parquet",
        *(c.format(windows="out/data/bgl20k_count20.parquet") for c in _TRAIN_EVAL),
    ],
    "BGL 20k, 30-min windows": [
        _PARSE_BGL,
        "logsieve group out/data/bgl20k_events.parquet --time 30m -o out/data/bgl20k_time30m.parquet",
        *(c.format(windows="out/data/bgl20k_time30m.parquet") for c in _TRAIN_EVAL),
    ],
    "Hadoop sequences": [
        "logsieve sequences ../shared/data/ait_sequences/hadoop_loghub/hadoop_train -o out/data/hadoop_train.parquet",
        "logsieve sequences ../shared/data/ait_sequences/hadoop_loghub/hadoop_test_normal "
        "../shared/data/ait_sequences/hadoop_loghub/hadoop_test_abnormal -o out/data/hadoop_test.parquet",
        "logsieve train out/data/hadoop_train.parquet MODEL_OPTIONS --valid 0 --seed SEED "
        "--templates ../shared/data/ait_sequences/templates/Hadoop_templates.csv -o model",
        "logsieve detect out/data/hadoop_test.parquet -m model -o scores.parquet",
        "logsieve evaluate scores.parquet",
    ],
}


def rows_from_doc(path: Path) -> list[dict]:
    """The rows of an earlier docs/results.md, so a partial re-run keeps the others."""
    rows: list[dict] = []
    if not path.is_file():
        return rows
    dataset = None
    header: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            dataset, header = line[3:].strip(), []
            continue
        if not line.startswith("| ") or dataset is None:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "model":
            header = cells
            continue
        if not header or set(cells[0]) <= {"-"}:
            continue
        cell = dict(zip(header, cells, strict=False))

        def num(key: str, cell: dict[str, str] = cell) -> float | None:
            try:
                return float(cell.get(key, "–"))
            except ValueError:
                return None

        if num("F1") is None:
            rows.append({"dataset": dataset, "model": cell["model"], "skipped": cell.get("P", "")})
            continue
        runs = [float(x) for x in cell.get("F1 per seed", "–").split() if x not in ("–", "-")]
        row = {"dataset": dataset, "model": cell["model"], "precision": num("P"), "recall": num("R"),
               "specificity": num("Spec"), "f1": num("F1"), "roc_auc": num("ROC-AUC"),
               "train_s": num("train s"), "detect_s": num("detect s"), "seeds": int(num("seeds") or 1),
               "f1_sd": num("F1 sd"), "f1_runs": runs or None}
        threads = re.search(r"num_threads=(\d+)", cell.get("CLI", ""))
        if threads:
            row["threads"] = int(threads.group(1))
        rows.append(row)
    return rows


def _f(v: float | None, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:.{nd}f}"


def render(results: list[dict]) -> str:
    lines = [
        "# Detector results on real data",
        "",
        "Produced by `python benchmarks/prepare.py && python benchmarks/results.py` (one seed, 0, unless the",
        "row's `seeds` column says more: then the mean over the seeds, the standard deviation of F1 in",
        "`F1 sd`, and each seed's F1 in `F1 per seed`, seeds 0, 1, ... in order). Settings are in the",
        "docstring of `benchmarks/results.py`: chronological 60/10/30 split, thresholds chosen on the",
        "validation part, never on the test part. Every row runs through the same jobs as the CLI; the",
        "commands under each table reproduce a row, with the row's `CLI` options and a seed (a row",
        "with `num_threads=N` ran with `OMP_NUM_THREADS=N` too: prefix the commands with it).",
        "`tests/integration/test_results_reproduce.py` re-runs three HDFS rows through the real CLI.",
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
            "| model | P | R | Spec | F1 | F1 sd | seeds | F1 per seed | ROC-AUC | train s | detect s | CLI | published |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            if "error" in r or "skipped" in r:
                lines.append(f"| {r['model']} | {r.get('skipped') or 'error: ' + r['error']} ||||||||||||")
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
            runs = " ".join(_f(v) for v in r.get("f1_runs") or []) or "–"
            lines.append(
                f"| {r['model']} | {_f(r['precision'])} | {_f(r['recall'])} | {_f(r['specificity'])} | {_f(r['f1'])} | "
                f"{sd} | {n_seeds} | {runs} | {_f(r['roc_auc'])} | {_f(r['train_s'], 1)} | {_f(r['detect_s'], 2)} | "
                f"`{cli_options(r['model'], r.get('threads'))}` | {pub} |"
            )
        if ds in DATASET_FILES:
            lines += ["", "Reproduce a row (MODEL, its options and a seed from the row):", "", "```bash",
                      *DATASET_FILES[ds], "```"]
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
    ap.add_argument("--fresh", action="store_true",
                    help="drop the rows of the existing output file (by default they are kept unless re-run)")
    args = ap.parse_args(argv)
    from logsieve.detectors.registry import get_detector_class, list_detectors

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
    if not args.fresh:
        earlier.update(((r["dataset"], r["model"]), r) for r in rows_from_doc(args.output)
                       if not (r["model"] in names and r["dataset"] in data))
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
