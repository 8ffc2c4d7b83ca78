"""Whole-process speed: every run is a fresh process, timed from start to exit.

In-process figures (``benchmarks/run.py``, ``logsieve bench``) leave out what a user pays
as well: interpreter start-up, imports, loading a model and writing the output. This script
times the user's commands as separate processes and prints, per run, wall seconds, CPU
seconds (user + system, all threads) and peak RSS of that process alone (``os.wait4``).

    python benchmarks/whole_process.py parse     # logsieve parse vs drain3-improved, HDFS 2% x4
    python benchmarks/whole_process.py big       # parse + group of 11M synthetic HDFS lines
    python benchmarks/whole_process.py deeplog   # DeepLog from the CLI vs the PyPI deeplog package

``parse``: the HDFS 2% sample written out four times (890,316 lines, plain text) is parsed
by ``logsieve parse --format hdfs -o events.parquet`` and by a script that runs
drain3-improved line by line with the same header regex, masks, depth and similarity
threshold and writes each line's cluster id to a CSV (what a drain3 user does).

``big``: ``logsieve synth -n 11000000 --seed 1``, then ``logsieve parse`` and ``logsieve
group`` (block sessions) as separate processes.

``deeplog``: ``logsieve sequences`` x2 (DeepLog's ``hdfs_train`` and
``hdfs_test_abnormal``), ``logsieve train -m deeplog`` (h=10, L=2, alpha=64, g=9, 10
epochs, one torch thread, no validation split) and ``logsieve detect``, against one
process that reads the same files and trains and scores the PyPI ``deeplog`` 0.0.3 package
with the same settings (as ``logsieve bench deeplog`` runs it in-process).

Run the steps on a quiet machine: wall seconds stretch with other load, CPU seconds much
less. ``--repeat N`` keeps the run with the median wall time.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LOGSIEVE_SHARED_DATA", REPO.parent / "shared" / "data"))
WORK = REPO / "out" / "whole"
HDFS_2PCT = DATA / "hdfs_loglead_2pct" / "HDFS_2pct.log.gz"
DEEPLOG = DATA / "hdfs_deeplog"
LOGSIEVE = [sys.executable, "-m", "logsieve"]
LOAD_BEFORE = os.getloadavg()[0]

DRAIN3 = """
import csv, re, sys
from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig
src, out, depth, sim, header, *masks = sys.argv[1:]
cfg = TemplateMinerConfig()
cfg.drain_depth = int(depth)
cfg.drain_sim_th = float(sim)
cfg.masking_instructions = [MaskingInstruction(m, "*") for m in masks]
cfg.profiling_enabled = False
miner = TemplateMiner(config=cfg)
rx = re.compile(header)
with open(src, encoding="utf-8") as fh, open(out, "w", newline="") as o:
    w = csv.writer(o)
    w.writerow(["line_id", "cluster_id"])
    for n, line in enumerate(fh, 1):
        line = line.rstrip("\\n")
        m = rx.match(line)
        w.writerow([n, miner.add_log_message(m.group("Content") if m else line)["cluster_id"]])
"""

PEER_DEEPLOG = """
import sys, time
import numpy as np, torch
from deeplog import DeepLog
train_f, test_f, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
def read(path):
    with open(path) as fh:
        return [[int(k) for k in line.split()] for line in fh if line.strip()]
train, test = read(train_f), read(test_f)
keys = sorted({k for s in train + test for k in s})
mapping = {k: i for i, k in enumerate(keys)}
size, h = 30, 10
def contexts(seqs):
    ctx, tgt, sess = [], [], []
    for i, s in enumerate(seqs):
        ids = [mapping[k] for k in s]
        for j, e in enumerate(ids):
            ctx.append([len(keys)] * max(0, h - j) + ids[max(0, j - h):j])
            tgt.append(e)
            sess.append(i)
    return np.array(ctx, dtype=np.int64), np.array(tgt, dtype=np.int64), np.array(sess)
x_tr, y_tr, _ = contexts(train)
x_te, y_te, sess = contexts(test)
torch.set_num_threads(threads)
torch.manual_seed(0)
model = DeepLog(input_size=size, hidden_size=64, output_size=size)
model.fit(torch.from_numpy(x_tr), torch.from_numpy(y_tr), epochs=10, batch_size=128,
          optimizer=torch.optim.Adam, verbose=False)
pred, _ = model.predict(torch.from_numpy(x_te), k=9, verbose=False)
miss = ~(pred.numpy() == y_te[:, None]).any(axis=1)
flagged = np.zeros(len(test), dtype=bool)
np.logical_or.at(flagged, sess, miss)
print(f"peer recall {flagged.mean():.4f}", file=sys.stderr)
"""


def run(cmd: list[str], label: str, env: dict[str, str] | None = None) -> dict:
    """Run ``cmd`` as a child; wall and CPU seconds and peak RSS of that child alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=WORK, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{label} failed (exit {proc.returncode}):\n{err.decode()[-2000:]}")
    tail = err.decode().strip().splitlines()
    return {
        "run": label,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "note": tail[-1] if tail else "",
    }


def best(cmd: list[str], label: str, repeat: int, env: dict[str, str] | None = None) -> dict:
    rows = sorted((run(cmd, label, env) for _ in range(repeat)), key=lambda r: r["wall_s"])
    return rows[len(rows) // 2]


def table(rows: list[dict], lines: int | None = None) -> None:
    print(f"load average: {LOAD_BEFORE:.2f} before, {os.getloadavg()[0]:.2f} after")
    print("| run | wall s | CPU s | peak RSS MB |" + (" lines/s |" if lines else ""))
    print("|---|---|---|---|" + ("---|" if lines else ""))
    for r in rows:
        rate = f" {lines / r['wall_s']:,.0f} |" if lines else ""
        print(f"| {r['run']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['rss_mb']:,.0f} |{rate}")


def bench_parse(args: argparse.Namespace) -> None:
    if not HDFS_2PCT.exists():
        sys.exit(f"skipped: {HDFS_2PCT} not found (needs ../shared/data)")
    log = WORK / "hdfs2pct_x4.log"
    if not log.exists():
        with gzip.open(HDFS_2PCT, "rb") as fh:
            text = fh.read()
        log.write_bytes(text * 4)
    sys.path.insert(0, str(REPO / "src"))
    from logsieve.formats import get_format
    from logsieve.parsing.parser import LogParser

    ref = LogParser("hdfs")
    assert ref.drain_ is not None
    ours = best([*LOGSIEVE, "parse", log.name, "--format", "hdfs", "-o", "events.parquet",
                 "--quiet"], "logsieve parse -> Parquet", args.repeat)  # fmt: skip
    rows = [ours]
    if not args.skip_peer:
        peer_cmd = [sys.executable, "-c", DRAIN3, log.name, "drain3.csv", str(ref.drain_.depth),
                    str(ref.drain_.sim_th), get_format("hdfs").regex(),
                    *(m.pattern for m in ref.masks_)]  # fmt: skip
        rows.append(best(peer_cmd, "drain3-improved line by line -> CSV", args.repeat))
    table(rows, lines=890_316)
    if len(rows) == 2:
        print(f"whole process: logsieve {rows[1]['wall_s'] / ours['wall_s']:.1f}x faster "
              f"(CPU {rows[1]['cpu_s'] / ours['cpu_s']:.1f}x)")  # fmt: skip


def bench_big(args: argparse.Namespace) -> None:
    log = WORK / f"synth_{args.lines}.log"
    if not log.exists():
        run([*LOGSIEVE, "synth", "-n", str(args.lines), "--seed", "1", "-o", log.name,
             "--quiet"], "synth")  # fmt: skip
    rows = [
        best([*LOGSIEVE, "parse", log.name, "--format", "hdfs", "-o", "big_events.parquet",
              "--quiet"], f"logsieve parse, {args.lines:,} lines", args.repeat),
        best([*LOGSIEVE, "group", "big_events.parquet", "-o", "big_windows.parquet",
              "--quiet"], f"logsieve group (sessions), {args.lines:,} lines", args.repeat),
    ]  # fmt: skip
    table(rows, lines=args.lines)


def bench_deeplog(args: argparse.Namespace) -> None:
    train, test = DEEPLOG / "hdfs_train", DEEPLOG / "hdfs_test_abnormal"
    if not (train.exists() and test.exists()):
        sys.exit(f"skipped: {DEEPLOG} not found (needs ../shared/data)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    model = WORK / "deeplog_model"
    shutil.rmtree(model, ignore_errors=True)
    params = ["history_size=10", "num_layers=2", "hidden_size=64", "num_candidates=9",
              "epochs=10", "num_threads=1", "valid_fraction=0"]  # fmt: skip
    steps = [
        ([*LOGSIEVE, "sequences", str(train), "--label", "0", "-o", "dl_train.parquet",
          "--quiet"], "logsieve sequences hdfs_train"),
        ([*LOGSIEVE, "sequences", str(test), "--label", "1", "-o", "dl_test.parquet",
          "--quiet"], "logsieve sequences hdfs_test_abnormal"),
        ([*LOGSIEVE, "train", "dl_train.parquet", "-m", "deeplog", "--valid", "0",
          *(x for p in params for x in ("--set", p)), "-o", model.name, "--quiet"],
         "logsieve train -m deeplog"),
        ([*LOGSIEVE, "detect", "dl_test.parquet", "-m", model.name, "-o", "dl_scores.parquet",
          "--quiet"], "logsieve detect"),
    ]  # fmt: skip
    rows = [run(cmd, label, env) for cmd, label in steps]
    total = {
        "run": "logsieve, the four commands",
        "wall_s": sum(r["wall_s"] for r in rows),
        "cpu_s": sum(r["cpu_s"] for r in rows),
        "rss_mb": max(r["rss_mb"] for r in rows),
    }
    rows.append(total)
    if not args.skip_peer:
        peer = run([sys.executable, "-c", PEER_DEEPLOG, str(train), str(test), "1"],
                   "PyPI deeplog 0.0.3, one process", env)  # fmt: skip
        rows.append(peer)
        print(peer["note"])
    table(rows)
    if not args.skip_peer:
        print(f"whole process: logsieve {rows[-1]['wall_s'] / total['wall_s']:.1f}x faster "
              f"(CPU {rows[-1]['cpu_s'] / total['cpu_s']:.1f}x)")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["parse", "big", "deeplog"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lines", type=int, default=11_000_000)
    ap.add_argument("--skip-peer", action="store_true")
    args = ap.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONPATH"] = str(REPO / "src")
    {"parse": bench_parse, "big": bench_big, "deeplog": bench_deeplog}[args.what](args)


if __name__ == "__main__":
    main()
