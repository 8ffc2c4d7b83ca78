"""The crash-and-rotation scenario of issue 13, runnable by anyone; prints what it checks.

    python benchmarks/watch_crash.py                # 250,000 lines: SIGKILL after 120,000,
                                                    # rotation at 180,000, SIGTERM, --no-follow
    python benchmarks/watch_crash.py --lines 30000 --kill-at 12000 --rotate-at 18000

Synthetic HDFS lines are appended in chunks to a followed file; the watcher is SIGKILLed once
and restarted, the file is rotated by rename, the watcher is stopped with SIGTERM and a final
`watch --no-follow` ends it. Then: are the alerted windows those batch `detect` flags on the
same lines, was any window alerted twice, and does status.json count every line once?
Exit status 0 when all three hold.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
PY = sys.executable


def cli(*args: object) -> None:
    subprocess.run([PY, "-m", "logsieve", *map(str, args)], env=ENV, check=True,
                   capture_output=True)  # fmt: skip


def wait_lines(state: Path, n: int, proc: subprocess.Popen) -> None:
    while True:
        try:
            if json.loads((state / "status.json").read_text())["lines_processed"] >= n:
                return
        except (OSError, ValueError, KeyError):
            pass
        if proc.poll() is not None:
            raise SystemExit(f"the watcher exited early ({proc.returncode})")
        time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=250_000)
    ap.add_argument("--kill-at", type=int, default=120_000)
    ap.add_argument("--rotate-at", type=int, default=180_000)
    ap.add_argument("--chunk", type=int, default=5_000)
    args = ap.parse_args()
    from logsieve.synth import generate

    with tempfile.TemporaryDirectory(prefix="watch-crash-") as tmp:
        d = Path(tmp)
        gen = generate(d / "train.log", lines=30_000, seed=3)
        cli("parse", d / "train.log", "--format", "hdfs", "-o", d / "ev.parquet", "-q")
        cli("group", d / "ev.parquet", "--labels", gen.labels_path, "-o", d / "w.parquet", "-q")
        cli("train", d / "w.parquet", "--model", "deeplog", "--normal-only", "--seed", "0",
            "--set", "epochs=2", "-o", d / "model", "-q")  # fmt: skip
        generate(d / "src.log", lines=args.lines, seed=4)
        lines = (d / "src.log").read_text().splitlines(keepends=True)[: args.lines]
        log, state, alerts = d / "live.log", d / "state", d / "alerts.jsonl"
        cmd = [PY, "-m", "logsieve", "watch", str(log), "-m", str(d / "model"), "--state-dir",
               str(state), "--alerts", str(alerts), "--checkpoint-lines", "10000",
               "--checkpoint-seconds", "1", "-q"]  # fmt: skip
        log.write_text("")
        proc = subprocess.Popen(cmd, env=ENV)
        written = 0
        try:
            for end in range(args.chunk, len(lines) + args.chunk, args.chunk):
                end = min(end, len(lines))
                if written == args.rotate_at:
                    os.replace(log, d / "live.log.1")
                    log.write_text("")
                    print(f"rotated by rename at {written:,} lines")
                with open(log, "a") as fh:
                    fh.writelines(lines[written:end])
                written = end
                if written == args.kill_at:
                    wait_lines(state, written * 3 // 4, proc)
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    print(f"SIGKILL after {written:,} lines written; restarted")
                    proc = subprocess.Popen(cmd, env=ENV)
                time.sleep(0.02)
            wait_lines(state, len(lines), proc)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=120)
            print(f"SIGTERM: exit {rc}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run([*cmd, "--no-follow"], env=ENV, check=True)
        status = json.loads((state / "status.json").read_text())
        got = [json.loads(x) for x in alerts.read_text().splitlines()]
        ids = [a["window_id"] for a in got]
        from logsieve.pipeline.jobs import detect_job

        detect_job([d / "live.log.1", log], d / "model", d / "s.parquet")  # both files, in order
        flagged = pl.read_parquet(d / "s.parquet").filter(pl.col("is_anomaly"))["window_id"]
        checks = {
            "alerted windows equal batch detect's": sorted(set(ids)) == sorted(flagged),
            "no window alerted twice": len(ids) == len(set(ids)),
            "status.json counted every line once": status["lines_processed"] == len(lines),
        }
        print(f"lines {len(lines):,}; counted {status['lines_processed']:,}; alerts {len(ids):,}; "
              f"batch flagged {len(flagged):,}; rotations {status['sources'][0]['rotations']}")
        for name, ok in checks.items():
            print(f"{'yes' if ok else 'NO ':4} {name}")
        return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
