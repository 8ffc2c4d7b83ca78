"""Sanity results of the supervised models (LogRobust, CNN), clean and with label noise.

    .venv/bin/python benchmarks/prepare.py                  # once: writes out/data/
    .venv/bin/python benchmarks/sanity_supervised.py        # the full table (HDFS + BGL)
    .venv/bin/python benchmarks/sanity_supervised.py --datasets hdfs --models logrobust \
        --noise 0.1 --robust off confident --seeds 0 1 2

Protocol (ICSE'22 study / PLELog): chronological 60/10/30 split of the windows
(train / validation / test, in time order), supervised with the labels. For every
(model, dataset, noise rate, robust setting, seed):

- noise: :func:`logsieve.detectors.neural.robust.flip_labels` flips ``rate`` of the TRAINING
  windows' labels uniformly at random (both directions; seed = the run's seed) and,
  with another seed, the same share of the VALIDATION windows' labels: a user's
  validation data is as noisy as the training data. The validation windows serve
  early stopping (their loss) only; the threshold is the model's natural 0.5 (no
  label is used to choose it). With ``robust=confident`` only the validation windows
  that confident learning keeps feed early stopping. The TEST labels are never touched.
- robust: ``off`` (plain cross-entropy) or a method of :mod:`logsieve.detectors.neural.robust`
  (``method:selection`` also sets ``selection``, e.g. ``coteaching:global``).

Reported per row: precision, recall, specificity and F1 on the test windows (mean and
standard deviation over the seeds), and the fit / scoring seconds (mean). Every run
uses ``num_threads`` torch threads (default 1) on the CPU.

HDFS: ``out/data/hdfs2pct_sessions.parquet`` (11,501 block sessions, 350 anomalous)
with the templates of ``hdfs2pct_templates.csv``. BGL: the 20k-line sample grouped in
windows of 20 and 100 lines and 30-minute windows (``bgl20k_*.parquet``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from statistics import mean, pstdev

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "out" / "data"

DATASETS = {
    "hdfs": ("hdfs2pct_sessions", "hdfs2pct_templates"),
    "bgl20": ("bgl20k_count20", "bgl20k_templates"),
    "bgl100": ("bgl20k_count100", "bgl20k_templates"),
    "bgl30m": ("bgl20k_time30m", "bgl20k_templates"),
}
MODELS = ("logrobust", "cnn")


def load(name: str):  # type: ignore[no-untyped-def]
    import polars as pl

    windows_file, templates_file = DATASETS[name]
    path = DATA / f"{windows_file}.parquet"
    if not path.is_file():
        sys.exit(f"{path} not found: run .venv/bin/python benchmarks/prepare.py first")
    windows = pl.read_parquet(path)
    templates = pl.read_csv(DATA / f"{templates_file}.csv").select("event_id", "template")
    return windows, templates


def run_one(model: str, dataset: str, noise: float, robust: str, seed: int, args) -> dict:  # type: ignore[no-untyped-def]
    from logsieve.detectors.neural.robust import flip_labels
    from logsieve.detectors.registry import create_detector
    from logsieve.evaluation.metrics import evaluate
    from logsieve.grouping import split_windows

    windows, templates = load(dataset)
    split = split_windows(windows, train=0.6, valid=0.1, method="chronological")
    train, valid, test = split.train, split.valid, split.test
    if noise > 0:
        train = flip_labels(train, noise, seed)
        valid = flip_labels(valid, noise, seed + 1000)
    params = dict(random_state=seed, num_threads=args.threads, device="cpu")
    if robust != "off":
        method, _, selection = robust.partition(":")
        params["robust"] = method
        params["forget_rate"] = args.forget_rate
        if selection:
            params["selection"] = selection
    if args.epochs:
        params["epochs"] = args.epochs
    for item in args.overrides:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    det = create_detector(model, **params)
    t0 = time.perf_counter()
    det.fit(train, valid=valid, templates=templates)
    t1 = time.perf_counter()
    pred = det.predict(test)
    t2 = time.perf_counter()
    m = evaluate(test.get_column("label").to_numpy(), pred)
    return {
        "model": model,
        "dataset": dataset,
        "noise": noise,
        "robust": robust,
        "seed": seed,
        "precision": m["precision"],
        "recall": m["recall"],
        "specificity": m["specificity"],
        "f1": m["f1"],
        "fit_s": t1 - t0,
        "detect_s": t2 - t1,
        "epochs_run": len(det.history_),
        "n_test": test.height,
        "n_test_anomalous": int(test.get_column("label").sum()),
    }


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["dataset"], r["noise"], r["robust"]), []).append(r)
    out = []
    for (model, dataset, noise, robust), rs in groups.items():
        agg = {"model": model, "dataset": dataset, "noise": noise, "robust": robust, "seeds": len(rs)}
        for key in ("precision", "recall", "specificity", "f1"):
            vals = [r[key] for r in rs]
            agg[key] = mean(vals)
            agg[f"{key}_sd"] = pstdev(vals)
        agg["fit_s"] = mean(r["fit_s"] for r in rs)
        agg["detect_s"] = mean(r["detect_s"] for r in rs)
        out.append(agg)
    return out


def print_table(summary: list[dict]) -> None:
    head = f"{'model':<10} {'data':<7} {'noise':>5} {'robust':<17} {'P':>6} {'R':>6} {'Spec':>6} {'F1':>6} {'F1 sd':>6} {'fit s':>7} {'det s':>6}"
    print(head)
    print("-" * len(head))
    for s in summary:
        print(
            f"{s['model']:<10} {s['dataset']:<7} {s['noise']:>5.2f} {s['robust']:<17} "
            f"{s['precision']:>6.3f} {s['recall']:>6.3f} {s['specificity']:>6.3f} {s['f1']:>6.3f} "
            f"{s['f1_sd']:>6.3f} {s['fit_s']:>7.1f} {s['detect_s']:>6.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.1])
    ap.add_argument(
        "--robust",
        nargs="+",
        default=["off", "confident"],
        help="off, confident, coteaching, small_loss, gce; 'coteaching:global' also sets selection='global'",
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--forget-rate", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=None, help="override the models' default epochs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra model parameters, e.g. embedding=semantic (values parsed as JSON when they can be)")
    ap.add_argument("--json", type=Path, default=None, help="also write every run and the summary as JSON")
    args = ap.parse_args(argv)

    rows = []
    for dataset in args.datasets:
        for model in args.models:
            for noise in args.noise:
                for robust in args.robust:
                    for seed in args.seeds:
                        r = run_one(model, dataset, noise, robust, seed, args)
                        rows.append(r)
                        print(
                            f"# {model} {dataset} noise={noise:g} robust={robust} seed={seed}: "
                            f"P={r['precision']:.3f} R={r['recall']:.3f} F1={r['f1']:.3f} "
                            f"fit={r['fit_s']:.1f}s epochs={r['epochs_run']}",
                            flush=True,
                        )
    summary = summarise(rows)
    print()
    print_table(summary)
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
