"""`logsieve watch` speed, latency and memory on synthetic HDFS with DeepLog; prints a table.

    python benchmarks/watch_speed.py                 # 2,000,000 lines, 10,000 lines/s, 1M sessions
    python benchmarks/watch_speed.py --lines 200000 --rate-seconds 5 --sessions 100000   # quick

1. throughput: `watch --no-follow` over N lines (whole process, one process: wall clock and
   CPU user+sys) next to batch `detect` (parse + group + detect) of the same file;
2. latency (run first): a writer appends RATE lines/s to a followed file, every line stamped with its
   write time; for each alert, (alert written) - (write time of its trigger line): p50/p99;
3. memory: `watch` following a log of SESSIONS sessions that all stay open: RSS once every
   line is in (all open), and the peak, which includes the SIGTERM checkpoint of them all.

The load average is printed with the figures: on a shared machine the wall clock is stretched
by the other processes, the CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
PY = sys.executable


def cli(*args: object, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "logsieve", *map(str, args)], env=ENV, check=True,
                          capture_output=True, text=True, **kw)  # type: ignore[call-overload]


def timed(*args: object) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds user+sys, peak RSS MB) of one CLI run, this child only."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([PY, "-m", "logsieve", *map(str, args)], env=ENV,
                            stdout=subprocess.DEVNULL)  # fmt: skip
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{args[0]} failed ({proc.returncode})")
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def open_sessions(d: Path, model: Path, n: int) -> tuple[float, float, float, float]:
    """(seconds to read them, CPU s, RSS MB with all n open, peak RSS MB with the SIGTERM
    checkpoint) of `watch` following a log of n sessions that never close."""
    sessions_log(d / "sessions.log", n)
    state = d / "st2"
    t0 = time.perf_counter()
    args = ["watch", d / "sessions.log", "-m", model, "--state-dir", state, "--max-open", n,
            "--checkpoint-lines", 10 * n, "--checkpoint-seconds", 1e9, "-q"]
    proc = subprocess.Popen([PY, "-m", "logsieve", *map(str, args)], env=ENV)
    while True:
        try:
            if json.loads((state / "status.json").read_text())["lines_processed"] >= n:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    rss = 0.0
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    proc.terminate()
    _, _, ru = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return wall, ru.ru_utime + ru.ru_stime, rss, ru.ru_maxrss / 1024


def train(d: Path) -> Path:
    from logsieve.synth import generate

    gen = generate(d / "train.log", lines=50_000, seed=1)
    cli("parse", d / "train.log", "--format", "hdfs", "-o", d / "ev.parquet", "-q")
    cli("group", d / "ev.parquet", "--labels", gen.labels_path, "-o", d / "win.parquet", "-q")
    cli("train", d / "win.parquet", "--model", "deeplog", "--normal-only", "--set", "epochs=3",
        "-o", d / "model", "-q")  # fmt: skip
    return d / "model"


def latency(d: Path, model: Path, rate: int, seconds: float) -> tuple[float, float, float, int]:
    from logsieve.synth import generate

    generate(d / "lat_src.log", lines=max(int(rate * seconds), 10_000), seed=7)
    lines = (d / "lat_src.log").read_text().splitlines(keepends=True)[: int(rate * seconds)]
    log, alerts = d / "live.log", d / "lat_alerts.jsonl"
    log.write_text("")
    # the set-up's own writes (the big log, the model) are flushed first: while the kernel
    # writes back hundreds of MB, it throttles every writer, the watcher's alert file too
    os.sync()
    proc = subprocess.Popen([PY, "-m", "logsieve", "watch", log, "-m", model, "--state-dir",
                             d / "lat_state", "--alerts", alerts, "-q"], env=ENV)  # fmt: skip
    t0 = time.perf_counter()
    while not (d / "lat_state" / "status.json").exists():  # start-up (imports, model load)
        if proc.poll() is not None or time.perf_counter() - t0 > 120:
            raise SystemExit("the watcher did not start")
        time.sleep(0.1)
    time.sleep(1)
    written: dict[int, float] = {}
    step = max(rate // 200, 1)  # 5 ms ticks
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        for i in range(0, len(lines), step):
            target = t0 + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            fh.writelines(lines[i : i + step])
            fh.flush()
            now = time.time()
            for j in range(i, min(i + step, len(lines))):
                written[j + 1] = now
    time.sleep(3)
    proc.terminate()
    proc.wait(timeout=60)
    delays = []
    for line in alerts.read_text().splitlines():
        a = json.loads(line)
        if a["trigger"]["kind"] == "line":
            delays.append(a["emitted_at"] - written[a["trigger"]["line_no"]])
    arr = np.array(delays) * 1000
    return (float(np.percentile(arr, 50)), float(np.percentile(arr, 99)), float(arr.max()),
            len(arr))  # fmt: skip


def sessions_log(path: Path, n: int) -> None:
    """n block sessions that all stay open (one allocateBlock line each, never finished)."""
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(f"081109 203518 {i % 300} INFO dfs.FSNamesystem: BLOCK* NameSystem."
                     f"allocateBlock: /user/root/rand/part-{i}. blk_{1000000000 + i}\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--rate-seconds", type=float, default=20)
    ap.add_argument("--sessions", type=int, default=1_000_000)
    args = ap.parse_args()
    from logsieve.synth import generate

    with tempfile.TemporaryDirectory(prefix="watch-bench-") as tmp:
        d = Path(tmp)
        model = train(d)
        generate(d / "big.log", lines=args.lines, seed=5)
        rows = []
        print(f"load average before: {os.getloadavg()} on {os.cpu_count()} CPUs")
        # latency first: the 1M-session run ends by writing a checkpoint of them all; run
        # right after it (and without the os.sync in latency), p99 was 191.6 ms once
        # against 75-83 ms when run alone
        p50, p99, top, n_alerts = latency(d, model, args.rate, args.rate_seconds)
        wall, cpu, rss = timed("detect", d / "big.log", "-m", model, "-o", d / "s.parquet", "-q")
        rows.append(("batch detect (parse+group+detect)", args.lines, wall, cpu, rss))
        wall, cpu, rss = timed("watch", d / "big.log", "-m", model, "--state-dir", d / "st",
                               "--alerts", d / "a.jsonl", "--no-follow", "-q")  # fmt: skip
        rows.append(("watch --no-follow", args.lines, wall, cpu, rss))
        wall, cpu, rss_open, rss = open_sessions(d, model, args.sessions)
        rows.append((f"watch, {args.sessions:,} open sessions", args.sessions, wall, cpu, rss))
        print(f"{'run':36} {'lines':>10} {'wall s':>7} {'lines/s':>9} {'CPU s':>7} "
              f"{'lines/CPU-s':>11} {'peak RSS MB':>11}")  # fmt: skip
        for name, n, wall, cpu, rss in rows:
            print(f"{name:36} {n:>10,} {wall:>7.1f} {n / wall:>9,.0f} {cpu:>7.1f} "
                  f"{n / cpu:>11,.0f} {rss:>11,.0f}")  # fmt: skip
        print(f"\nRSS with all {args.sessions:,} sessions open: {rss_open:,.0f} MB "
              f"(peak {rss:,.0f} MB includes the SIGTERM checkpoint of them all)")
        print(f"load average after: {os.getloadavg()}")
        print(f"\nlatency at {args.rate:,} lines/s for {args.rate_seconds:g} s: "
              f"{n_alerts} line alerts, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms "
              "(line written -> alert written)")
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
