"""Load benchmark of ``logsieve serve`` (issue 14): prints a table; not a test.

Starts ``logsieve serve`` on a free 127.0.0.1 port with a DeepLog model (``--model DIR``, or
one trained here on a synthetic HDFS log), then
- ``/v1/score``: ``--clients`` concurrent keep-alive clients (default 32) each sending
  50-window batches (HDFS test windows) until ``--requests`` requests in all (or
  ``--seconds``); requests/s and p50/p99 latency;
- ``/v1/ingest``: ``--ingest-lines`` synthetic HDFS lines as text/plain in batches of
  ``--batch-lines`` by 4 clients; accepted lines/s, and the rate the engine then processed
  them at.
The load generator is a small asyncio HTTP/1.1 client on the same machine, so it takes
CPU from the server: on a 2-core machine the figures are the server's under that load.

    python benchmarks/bench_serve.py [--model DIR] [--clients 32] [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train(root: Path) -> tuple[Path, Path]:
    from logsieve.grouping.specs import build_spec
    from logsieve.pipeline.jobs import group_job, parse_job, train_job
    from logsieve.synth import generate

    gen = generate(root / "log", lines=60_000, seed=0)
    parse_job([root / "log"], root / "events.parquet", format="hdfs")
    group_job(root / "events.parquet", root / "windows.parquet", build_spec(),
              labels=gen.labels_path)  # fmt: skip
    train_job(root / "windows.parquet", "deeplog", {"epochs": 5, "random_state": 0},
              root / "model", split="0.6,0.1,0.3", split_method="chronological",
              train_normal_only=True)  # fmt: skip
    return root / "model", root / "log"


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def open(self) -> None:
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path: str, body: bytes, ctype: str) -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        self.w.write(head + body)
        await self.w.drain()
        status_line = await self.r.readline()
        length = 0
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v)
        data = await self.r.readexactly(length)
        return int(status_line.split()[1]), data

    def close(self) -> None:
        self.w.close()


async def score_load(port: int, bodies: list[bytes], clients: int, requests: int,
                     seconds: float) -> tuple[list[float], float, int]:  # fmt: skip
    lat: list[float] = []
    errors = 0
    left = [requests]
    end = time.monotonic() + seconds

    async def client(i: int) -> None:
        nonlocal errors
        c = Conn(port)
        await c.open()
        k = i
        while left[0] > 0 and time.monotonic() < end:
            left[0] -= 1
            t0 = time.perf_counter()
            status, _ = await c.post("/v1/score", bodies[k % len(bodies)], "application/json")
            lat.append(time.perf_counter() - t0)
            errors += status != 200
            k += clients
        c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return lat, time.perf_counter() - t0, errors


async def ingest_load(port: int, batches: list[bytes], clients: int) -> tuple[float, int]:
    queue = list(batches)
    accepted = 0

    async def client() -> None:
        nonlocal accepted
        c = Conn(port)
        await c.open()
        while queue:
            body = queue.pop()
            status, data = await c.post("/v1/ingest", body, "text/plain")
            if status == 200:
                accepted += json.loads(data)["accepted"]
        c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - t0, accepted


def get(port: int, path: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--log", type=Path, help="HDFS log to ingest (default: the synthetic one)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--windows", type=int, default=50)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--ingest-lines", type=int, default=1_000_000)
    ap.add_argument("--batch-lines", type=int, default=10_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logsieve-bench-serve-"))
    if args.model is None:
        print("training a DeepLog model on 60,000 synthetic HDFS lines...", file=sys.stderr)
        model, log = train(work)
    else:
        model, log = args.model, args.log
    windows = pl.read_parquet(model / "test_windows.parquet")
    rows = [{"window_id": r["window_id"], "event_ids": r["event_ids"]}
            for r in windows.iter_rows(named=True)]  # fmt: skip
    n = args.windows
    bodies = [json.dumps({"windows": rows[i : i + n]}).encode()
              for i in range(0, max(1, len(rows) - n + 1), n)]  # fmt: skip
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "logsieve", "serve", "-m", str(model),
                             "--state-dir", str(work / "state"), "--port", str(port)],
                            env=env)  # fmt: skip
    try:
        for _ in range(600):
            try:
                if get(port, "/readyz").get("status") == "ready":
                    break
            except OSError:
                time.sleep(0.2)
        asyncio.run(score_load(port, bodies, 4, 40, 30))  # warm-up
        lat, secs, errors = asyncio.run(
            score_load(port, bodies, args.clients, args.requests, args.seconds)
        )
        lines = [ln for ln in Path(log).read_text().splitlines() if ln][: args.ingest_lines]
        while len(lines) < args.ingest_lines:
            lines += lines[: args.ingest_lines - len(lines)]
        b = args.batch_lines
        batches = [("\n".join(lines[i : i + b]) + "\n").encode() for i in range(0, len(lines), b)]
        before = get(port, "/v1/status")["lines_processed"]
        t_ing, accepted = asyncio.run(ingest_load(port, batches, 4))
        t0 = time.perf_counter()
        done = before
        while done < before + accepted and time.perf_counter() - t0 < 300:
            time.sleep(0.25)
            done = get(port, "/v1/status")["lines_processed"]
        t_proc = t_ing + (time.perf_counter() - t0)
        st = get(port, "/v1/status")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    cores = os.cpu_count()
    print(f"\nlogsieve serve load benchmark ({cores} cores, engine: {st.get('engine')}, "
          f"server and load generator on the same machine)\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| /v1/score: {n}-window batches, {args.clients} clients, {len(lat)} requests "
          f"({errors} errors) | {len(lat) / secs:,.0f} requests/s, {len(lat) * n / secs:,.0f} "
          f"windows/s |")
    print(f"| /v1/score latency p50 / p99 | {pct(lat, 0.5):.1f} ms / {pct(lat, 0.99):.1f} ms |")
    print(f"| /v1/ingest: {accepted:,} lines, {b:,}-line text/plain batches, 4 clients | "
          f"{accepted / t_ing:,.0f} lines/s accepted |")
    print(f"| engine: those lines processed (parsed, grouped, scored) | {done - before:,} lines "
          f"in {t_proc:.1f} s = {(done - before) / t_proc:,.0f} lines/s; "
          f"{st.get('open_windows', 0):,} open windows, {st.get('alerts', 0):,} alerts |")


if __name__ == "__main__":
    main()
