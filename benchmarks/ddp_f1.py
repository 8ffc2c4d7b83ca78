"""DDP against single-process training: F1 on the same windows, split and seed.

    python benchmarks/ddp_f1.py [--models deeplog,logrobust] [--procs 2] [--seed 0]

Needs out/data/hdfs2pct_sessions.parquet (``python benchmarks/prepare.py``). Each model is
trained twice through the jobs behind ``logsieve train``: once in one process, once with
``--ddp N`` (gloo on CPU), on the HDFS 2% sessions with the chronological 60/10/30 split of
docs/results.md, one torch thread per process; both are scored on the same test windows
(``logsieve detect`` + ``evaluate``). Prints a table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WINDOWS = REPO / "out" / "data" / "hdfs2pct_sessions.parquet"


def f1_of(model_dir: Path, tmp: Path) -> dict:
    from logsieve.evaluation.scores import evaluate_scores
    from logsieve.pipeline.jobs import detect_job

    scores = tmp / f"{model_dir.name}-scores.parquet"
    detect_job(model_dir / "test_windows.parquet", model_dir, scores)
    return evaluate_scores(scores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="deeplog,logrobust")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (mean reported)")
    args = ap.parse_args()
    if not WINDOWS.exists():
        raise SystemExit(f"{WINDOWS} missing: run python benchmarks/prepare.py first")
    from logsieve.pipeline.jobs import train_job
    from logsieve.scale.ddp import ddp_train

    rows = []
    with tempfile.TemporaryDirectory(prefix="ddp-f1-") as tmpdir:
        tmp = Path(tmpdir)
        for model in args.models.split(","):
            for seed in [int(s) for s in args.seeds.split(",")]:
                base = dict(windows_path=str(WINDOWS), model=model, params={"num_threads": 1},
                            split="0.6,0.1,0.3", seed=seed)
                t0 = time.perf_counter()
                train_job(**base, output_dir=tmp / f"{model}-single")
                t_single = time.perf_counter() - t0
                t0 = time.perf_counter()
                ddp_train(args.procs, {**base, "output_dir": str(tmp / f"{model}-ddp")})
                t_ddp = time.perf_counter() - t0
                single = f1_of(tmp / f"{model}-single", tmp)
                ddp = f1_of(tmp / f"{model}-ddp", tmp)
                rows.append((model, seed, single["f1"], ddp["f1"], t_single, t_ddp))
                print(rows[-1], flush=True)
    print(f"| model | seed | F1 one process | F1 --ddp {args.procs} | difference | train s (one) | train s (ddp) |")
    print("|---|---|---|---|---|---|---|")
    for model, seed, a, b, ta, tb in rows:
        print(f"| {model} | {seed} | {a:.3f} | {b:.3f} | {b - a:+.3f} | {ta:.1f} | {tb:.1f} |")


if __name__ == "__main__":
    main()
