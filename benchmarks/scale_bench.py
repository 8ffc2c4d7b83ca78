"""Local against Dask: parse and group synthetic HDFS logs, wall time and peak memory.

    python benchmarks/scale_bench.py --lines 11000000,55000000 --workers 2

For each size a synthetic HDFS log is made once (out/bench/synth-N.log, `logsieve synth`'s
generator), then each engine runs in a fresh Python process: ``parse`` (raw log -> events)
then ``group`` (block sessions with labels -> windows), through the same library calls as
``logsieve parse/group [--engine dask --workers N]``. Reported per step: wall seconds, lines
per second per worker (local: one process), and the peak RSS of every process (the client,
which also hosts the Dask scheduler, and each worker, from getrusage in the process). A Dask
run also pays once for importing Dask and starting its LocalCluster ("start", its own row);
the "vs local" column charges that start-up to the step it precedes, as `logsieve parse
--engine dask` or `logsieve group --engine dask` pays it. Prints a Markdown table; ``--json
FILE`` keeps the raw rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "out" / "bench"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(engine: str, lines: int, workers: int) -> dict:
    """Parse then group in this process; returns timings and peak RSS of every process."""
    from logsieve.grouping.windows import Sessions
    from logsieve.parsing.parser import LogParser
    from logsieve.pipeline.jobs import group_job

    log = OUT / f"synth-{lines}.log"
    labels = OUT / f"synth-{lines}.labels.csv"
    tag = f"{engine}-{lines}"
    events, windows = OUT / f"events-{tag}", OUT / f"windows-{tag}"
    for p in (events, windows):
        subprocess.run(["rm", "-rf", str(p), f"{p}.parquet"], check=True)
    row: dict = {"engine": engine, "lines": lines, "workers": workers if engine == "dask" else 1}
    if engine == "local":
        t = time.perf_counter()
        LogParser("hdfs").parse_files([log], f"{events}.parquet")
        row["parse_s"] = time.perf_counter() - t
        row["parse_peak_mb"] = {"client": _peak_mb()}
        t = time.perf_counter()
        group_job(f"{events}.parquet", f"{windows}.parquet", Sessions(), labels=labels)
        row["group_s"] = time.perf_counter() - t
        row["group_peak_mb"] = {"client": _peak_mb()}
        return row
    t = time.perf_counter()
    from logsieve.scale.cluster import dask_client
    from logsieve.scale.group import dask_group
    from logsieve.scale.parse import dask_parse

    with dask_client(workers=workers) as client:
        row["start_s"] = time.perf_counter() - t  # import Dask, start the LocalCluster
        t = time.perf_counter()
        dask_parse(client, LogParser("hdfs"), [log], events)
        row["parse_s"] = time.perf_counter() - t
        peaks = client.run(_peak_mb)
        row["parse_peak_mb"] = {"client": _peak_mb(), **{f"worker{i}": v for i, v in enumerate(peaks.values())}}
        client.restart()  # fresh workers, so group's peaks are its own
        t = time.perf_counter()
        summary = dask_group(client, events, windows, Sessions(), labels=labels)
        row["shuffle_bytes"] = summary["shuffle_bytes"]
        row["group_s"] = time.perf_counter() - t
        peaks = client.run(_peak_mb)
        row["group_peak_mb"] = {"client": _peak_mb(), **{f"worker{i}": v for i, v in enumerate(peaks.values())}}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", default="11000000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--engines", default="local,dask")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "LINES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.workers)))
        return
    from logsieve.synth import generate

    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for lines in [int(x) for x in args.lines.split(",")]:
        log = OUT / f"synth-{lines}.log"
        if not log.exists():
            generate(log, lines, seed=0, labels_path=OUT / f"synth-{lines}.labels.csv")
        for engine in args.engines.split(","):
            load = os.getloadavg()[0]
            done = subprocess.run(
                [sys.executable, __file__, "--workers", str(args.workers), "--one", engine, str(lines)],
                check=True, capture_output=True, text=True, env=os.environ,
            )
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            rows[-1]["load"] = [load, os.getloadavg()[0]]  # 1-min load average before, after
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    for r in rows:
        if "shuffle_bytes" in r:
            print(f"{r['lines']:,} lines: session shuffle {r['shuffle_bytes'] / 2**20:,.0f} MiB")
    loads = ", ".join(f"{r['engine']} {r['lines']:,}: {r['load'][0]:.1f} -> {r['load'][1]:.1f}" for r in rows)
    print(f"load average (1 min) before -> after each run: {loads}")
    print("| lines | engine | step | wall s | vs local | lines/s per worker | peak RSS MB (each process) |")
    print("|---|---|---|---|---|---|---|")
    local = {(r["lines"], step): r[f"{step}_s"] for r in rows if r["engine"] == "local"
             for step in ("parse", "group")}  # fmt: skip
    for r in rows:
        name = "local" if r["engine"] == "local" else f"dask, {r['workers']} workers"
        if "start_s" in r:
            print(f"| {r['lines']:,} | {name} | start | {r['start_s']:.1f} | | | |")
        for step in ("parse", "group"):
            wall = r[f"{step}_s"]
            per = r["lines"] / wall / r["workers"]
            peaks = ", ".join(f"{k} {v:,.0f}" for k, v in r[f"{step}_peak_mb"].items())
            ratio = ""
            if r["engine"] != "local" and (r["lines"], step) in local:
                ratio = f"{(wall + r.get('start_s', 0.0)) / local[r['lines'], step]:.2f}x"
            print(f"| {r['lines']:,} | {name} | {step} | {wall:.1f} | {ratio} | {per:,.0f} | {peaks} |")


if __name__ == "__main__":
    main()
