"""DeepLog on the DeepLog paper's HDFS sessions: logsieve against the PyPI ``deeplog`` package.

The side-by-side part is ``logsieve bench deeplog`` (:func:`logsieve.evaluation.bench.bench_deeplog`:
train on ``hdfs_train``, 4,855 normal sessions; flag the 16,838 sessions of
``hdfs_test_abnormal``; h=10, L=2, alpha=64, g=9, 10 epochs; the peer's install line and
how it is run are in that module). This script runs the same and adds what needs more
data than the DeepLog folder:

- a false-positive proxy: a second logsieve model trained on the first 80 % of
  ``hdfs_train`` counts alarms on the last 20 % (normal sessions it never saw);
- false positives on the NORMAL blocks of the raw HDFS samples (:func:`normal_blocks_fpr`),
  as ``hdfs_test_normal`` (553,366 sessions) is not available.

Usage::

    .venv/bin/python benchmarks/bench_deeplog.py [--threads 1] [--epochs 10] [--skip-peer]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOGSIEVE_SHARED_DATA", REPO.parent / "shared" / "data"))
DATA = SHARED / "hdfs_deeplog"


def fit_deeplog(train, args):  # type: ignore[no-untyped-def]
    """A DeepLog with the benchmark's settings and seed, fitted on ``train``."""
    from logsieve.detectors.registry import create_detector
    from logsieve.evaluation.bench import deeplog_bench_params

    return create_detector("deeplog", **deeplog_bench_params(args.epochs, args.threads, args.seed, args.device)).fit(train)


def false_positive_proxy(train, args) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Alarms on the last 20 % of ``hdfs_train`` of a model fitted on the first 80 %."""
    cut = int(train.height * 0.8)
    held = train.slice(cut)
    return int(fit_deeplog(train.head(cut), args).predict(held).sum()), held.height


def normal_blocks_fpr(detector) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """False-positive rate on the NORMAL blocks of real HDFS logs.

    ``hdfs_test_normal`` (553,366 sessions) is not available, so the raw HDFS samples stand
    in: the LogLead 2% sample (11,151 normal blocks) and loglizer's first 100k lines (7,627
    normal blocks). Messages are put into DeepLog's key space with Loghub's HDFS template
    list (benchmarks/hdfs_keys.py), grouped by block, and every normal block is scored.
    """
    import polars as pl

    sys.path.insert(0, str(REPO / "benchmarks"))
    from hdfs_keys import loghub_hdfs_ids  # type: ignore[import-not-found]

    from logsieve.grouping import group_sessions, read_labels
    from logsieve.parsing.parser import LogParser

    templates = SHARED / "loghub_2k" / "HDFS" / "HDFS_templates.csv"
    sources = {
        "HDFS 2% sample": (SHARED / "hdfs_loglead_2pct" / "HDFS_2pct.log.gz", SHARED / "hdfs_loglead_2pct" / "anomaly_label.csv"),
        "HDFS first 100k lines": (
            SHARED / "loglizer_hdfs_100k" / "derived" / "HDFS_100k_reconstructed.log.gz",
            SHARED / "loglizer_hdfs_100k" / "derived" / "HDFS_100k_anomaly_label.csv.gz",
        ),
    }
    out: dict[str, dict] = {}
    for name, (log, labels) in sources.items():
        if not log.exists() or not labels.exists():
            continue
        events, _ = LogParser("hdfs").parse_files(log)
        events = events.with_columns(loghub_hdfs_ids(events["content"], templates))
        if labels.suffix == ".gz":
            import gzip
            import tempfile

            with tempfile.NamedTemporaryFile("wb", suffix=".csv", delete=False) as tmp:
                tmp.write(gzip.decompress(labels.read_bytes()))
            labels = Path(tmp.name)
        windows = group_sessions(events, labels=read_labels(labels))
        normal = windows.filter(pl.col("label") == 0)
        fp = int(detector.predict(normal).sum())
        out[name] = {"normal_blocks": normal.height, "false_positives": fp, "rate": fp / max(normal.height, 1)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both columns (default 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-peer", action="store_true", help="do not run the deeplog 0.0.3 column")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"data not found: {DATA}", file=sys.stderr)
        return 2
    from logsieve.evaluation.bench import (
        DEEPLOG_PAPER,
        bench_deeplog,
        bench_table,
        load_deeplog_hdfs,
    )

    train, test = load_deeplog_hdfs(DATA)
    fitted: list = []  # the benchmark's own logsieve model, for the false positives below
    result = bench_deeplog(
        train, test, epochs=args.epochs, threads=args.threads, seed=args.seed, device=args.device,
        peer=not args.skip_peer, on_fitted=fitted.append,
    )  # fmt: skip
    print(f"{'':<16}{'logsieve':>12}{'deeplog 0.0.3':>15}{'paper':>10}")
    for label, ours, peer, paper in bench_table(result):
        print(f"{label:<16}{ours:>12}{peer:>15}{paper:>10}")
    if "speedup" in result:
        print(f"speed-up (train + score): {result['speedup']:.1f}x")
    fp, held = false_positive_proxy(train, args)
    print(f"false-positive proxy (train on first 80% of hdfs_train, alarms on the last 20%): {fp}/{held} = {fp / held:.4f}")
    fpr = normal_blocks_fpr(fitted[0])
    paper_rate = DEEPLOG_PAPER["fp"] / DEEPLOG_PAPER["normal_sessions"]
    for name, r in fpr.items():
        print(
            f"false positives on the normal blocks of the {name}: {r['false_positives']}/{r['normal_blocks']} "
            f"= {r['rate']:.4f} (paper: {DEEPLOG_PAPER['fp']}/{DEEPLOG_PAPER['normal_sessions']:,} = {paper_rate:.4f})"
        )
    if args.json:
        result.update(fp_proxy={"false_positives": fp, "sessions": held}, normal_blocks_fpr=fpr)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
