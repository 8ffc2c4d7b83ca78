"""Local against Dask: parse and group synthetic HDFS logs, wall time and peak memory.

    python benchmarks/scale_bench.py --lines 11000000,55000000 --workers 2

For each size a synthetic HDFS log is made once (out/bench/synth-N.log, `logsieve synth`'s
generator, seed 0), then each step runs in a fresh Python process per engine: ``parse`` (raw
log -> events) and ``group`` (block sessions with labels -> windows), through the same
library calls as ``logsieve parse/group [--engine dask --workers N]``. Reported per step:
wall seconds of the whole step, which for Dask includes importing Dask and starting the
LocalCluster (shown apart as well), as the CLI command pays it; the ratio to local; lines per
second per worker (local: one process); and the peak RSS of every process (the client, which
also hosts the Dask scheduler, and each worker, from getrusage in the process). Python's own
start-up and imports are not counted for either engine. Prints a Markdown table; ``--json
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


def run_step(engine: str, lines: int, workers: int, step: str) -> dict:
    """One step (parse or group) in this fresh process: wall seconds and peak RSS of every
    process (a Dask step starts, and pays for, its own LocalCluster, as the CLI does)."""
    from logsieve.grouping.windows import Sessions
    from logsieve.parsing.parser import LogParser
    from logsieve.pipeline.jobs import group_job

    log = OUT / f"synth-{lines}.log"
    labels = OUT / f"synth-{lines}.labels.csv"
    tag = f"{engine}-{lines}"
    events, windows = OUT / f"events-{tag}", OUT / f"windows-{tag}"
    suffix = ".parquet" if engine == "local" else ""
    out = events if step == "parse" else windows
    subprocess.run(["rm", "-rf", str(out), f"{out}.parquet"], check=True)
    row: dict = {}
    t = time.perf_counter()
    if engine == "local":
        if step == "parse":
            LogParser("hdfs").parse_files([log], f"{events}.parquet")
        else:
            group_job(f"{events}.parquet", f"{windows}.parquet", Sessions(), labels=labels)
        row[f"{step}_s"] = time.perf_counter() - t
        row[f"{step}_peak_mb"] = {"client": _peak_mb()}
        return row
    from logsieve.scale.cluster import dask_client
    from logsieve.scale.group import dask_group
    from logsieve.scale.parse import dask_parse

    with dask_client(workers=workers) as client:
        row[f"{step}_start_s"] = time.perf_counter() - t  # import Dask, start the cluster
        t = time.perf_counter()
        if step == "parse":
            dask_parse(client, LogParser("hdfs"), [log], events)
        else:
            summary = dask_group(client, f"{events}{suffix}", windows, Sessions(), labels=labels)
            row["shuffle_bytes"] = summary["shuffle_bytes"]
        row[f"{step}_s"] = time.perf_counter() - t
        peaks = client.run(_peak_mb)
        row[f"{step}_peak_mb"] = {
            "client": _peak_mb(), **{f"worker{i}": v for i, v in enumerate(peaks.values())}
        }  # fmt: skip
    return row


def run_one(engine: str, lines: int, workers: int, steps: list[str]) -> dict:
    """Parse, then group (or the steps given), each in a fresh Python process."""
    row: dict = {"engine": engine, "lines": lines, "workers": workers if engine == "dask" else 1}
    for step in steps:
        done = subprocess.run(
            [sys.executable, __file__, "--workers", str(workers), "--one", engine, str(lines), step],
            check=True, capture_output=True, text=True, env=os.environ,
        )  # fmt: skip
        row.update(json.loads(done.stdout.strip().splitlines()[-1]))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", default="11000000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--engines", default="local,dask")
    ap.add_argument("--steps", default="parse,group", help="parse,group; group reuses the "
                    "events of an earlier parse")  # fmt: skip
    ap.add_argument("--json", type=Path)
    ap.add_argument("--one", nargs=3, metavar=("ENGINE", "LINES", "STEP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_step(args.one[0], int(args.one[1]), args.workers, args.one[2])))
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
            rows.append(run_one(engine, lines, args.workers, args.steps.split(",")))
            rows[-1]["load"] = [load, os.getloadavg()[0]]  # 1-min load average before, after
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(table(rows))


def table(rows: list[dict]) -> str:
    """The Markdown table (and the shuffle volumes and load averages above it)."""
    out = [
        f"{r['lines']:,} lines: session shuffle {r['shuffle_bytes'] / 2**20:,.0f} MiB"
        for r in rows if "shuffle_bytes" in r
    ]  # fmt: skip
    loads = ", ".join(f"{r['engine']} {r['lines']:,}: {r['load'][0]:.1f} -> {r['load'][1]:.1f}"
                      for r in rows)  # fmt: skip
    out.append(f"load average (1 min) before -> after each run: {loads}")
    out.append("| lines | engine | step | wall s | of it Dask start-up s | vs local "
               "| lines/s per worker | peak RSS MB (each process) |")  # fmt: skip
    out.append("|---|---|---|---|---|---|---|---|")
    local = {(r["lines"], k[:-2]): v for r in rows if r["engine"] == "local"
             for k, v in r.items() if k in ("parse_s", "group_s")}  # fmt: skip
    for r in rows:
        name = "local" if r["engine"] == "local" else f"dask, {r['workers']} workers"
        for step in ("parse", "group"):
            if f"{step}_s" not in r:
                continue
            start = r.get(f"{step}_start_s", 0.0)
            wall = r[f"{step}_s"] + start  # the whole step, as its CLI command pays it
            per = r["lines"] / wall / r["workers"]
            peaks = ", ".join(f"{k} {v:,.0f}" for k, v in r[f"{step}_peak_mb"].items())
            ratio = ""
            if r["engine"] != "local" and (r["lines"], step) in local:
                ratio = f"{wall / local[r['lines'], step]:.2f}x"
            out.append(f"| {r['lines']:,} | {name} | {step} | {wall:.1f} | "
                       f"{start:.1f} | {ratio} | {per:,.0f} | {peaks} |")  # fmt: skip
    return "\n".join(out)


if __name__ == "__main__":
    main()
