"""Load benchmark of ``logsieve serve`` (issue 14): prints a table; not a test.

Starts ``logsieve serve`` on a free 127.0.0.1 port with a DeepLog model (``--model DIR``, or
one trained here on a synthetic HDFS log), then
- ``/v1/score``: ``--clients`` concurrent keep-alive clients (default 32) each sending
  50-window batches (HDFS test windows) until ``--requests`` requests in all (or
  ``--seconds``); requests/s and p50/p99 latency;
- ``/v1/ingest``: ``--ingest-lines`` synthetic HDFS lines as text/plain in batches of
  ``--batch-lines`` by 4 clients; accepted lines/s, and the rate the engine then processed
  them at.
The load generator is this process, a separate one from the server: a small asyncio
HTTP/1.1 client (on uvloop when installed) with pre-encoded requests over keep-alive
connections. It runs on the same machine, so it takes CPU from the server; the table gives
the CPU seconds (user+sys) of both over the scoring run, and the load average. With
``--score-memo-mb 0`` the server scores every window through ``detect`` (no result memo).

    python benchmarks/bench_serve.py [--model DIR] [--clients 32] [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
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
    """One keep-alive HTTP/1.1 connection (requests pre-encoded; just enough parsing)."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def open(self) -> None:
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)

    @staticmethod
    def request(path: str, body: bytes, ctype: str) -> bytes:
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        return head + body

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.w.write(raw)
        head = await self.r.readuntil(b"\r\n\r\n")
        at = head.lower().find(b"content-length:")
        length = int(head[at + 15 : head.index(b"\r\n", at)]) if at >= 0 else 0
        data = await self.r.readexactly(length)
        return int(head[9:12]), data

    async def post(self, path: str, body: bytes, ctype: str) -> tuple[int, bytes]:
        return await self.send(self.request(path, body, ctype))

    def close(self) -> None:
        self.w.close()


def run_async(coro):  # type: ignore[no-untyped-def]
    """``asyncio.run`` on uvloop when it is installed (the serve extra brings it)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def score_load(port: int, bodies: list[bytes], clients: int, requests: int,
                     seconds: float) -> tuple[list[float], float, int]:  # fmt: skip
    raw = [Conn.request("/v1/score", b, "application/json") for b in bodies]
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
            status, _ = await c.send(raw[k % len(raw)])
            lat.append(time.perf_counter() - t0)
            errors += status != 200
            k += clients
        c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return lat, time.perf_counter() - t0, errors


def cpu_seconds(pid: int | None = None) -> float:
    """user + sys CPU seconds of this process, or of ``pid`` (from /proc)."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    ap.add_argument(
        "--score-memo-mb",
        type=float,
        default=None,
        help="pass --score-memo-mb to serve (0: every window through detect)",
    )
    ap.add_argument("--no-ingest", action="store_true", help="only the /v1/score part")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (else removed)")
    ap.add_argument(
        "--mixed",
        action="store_true",
        help="then /v1/score again while the engine works through --ingest-lines "
        "freshly ingested lines (the event loop shares the process with it)",
    )
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
    cmd = [sys.executable, "-m", "logsieve", "serve", "-m", str(model),
           "--state-dir", str(work / "state"), "--port", str(port)]  # fmt: skip
    if args.score_memo_mb is not None:
        cmd += ["--score-memo-mb", str(args.score_memo_mb)]
    proc = subprocess.Popen(cmd, env=env)
    try:
        for _ in range(600):
            try:
                if get(port, "/readyz").get("status") == "ready":
                    break
            except OSError:
                time.sleep(0.2)
        run_async(score_load(port, bodies, 4, 40, 30))  # warm-up
        load0 = os.getloadavg()
        cpu0 = (cpu_seconds(), cpu_seconds(proc.pid))
        lat, secs, errors = run_async(
            score_load(port, bodies, args.clients, args.requests, args.seconds)
        )
        cpu_gen, cpu_srv = cpu_seconds() - cpu0[0], cpu_seconds(proc.pid) - cpu0[1]
        load1 = os.getloadavg()
        memo = get(port, "/v1/status").get("score_memo") or {}
        accepted = done = before = 0
        t_ing = t_proc = float("nan")
        b = args.batch_lines
        batches: list[bytes] = []
        if not args.no_ingest or args.mixed:
            lines = [ln for ln in Path(log).read_text().splitlines() if ln][: args.ingest_lines]
            while len(lines) < args.ingest_lines:
                lines += lines[: args.ingest_lines - len(lines)]
            batches = [("\n".join(lines[i : i + b]) + "\n").encode()
                       for i in range(0, len(lines), b)]  # fmt: skip
        if not args.no_ingest:
            before = get(port, "/v1/status")["lines_processed"]
            t_ing, accepted = run_async(ingest_load(port, list(batches), 4))
            t0 = time.perf_counter()
            done = before
            while done < before + accepted and time.perf_counter() - t0 < 300:
                time.sleep(0.25)
                done = get(port, "/v1/status")["lines_processed"]
            t_proc = t_ing + (time.perf_counter() - t0)
        mixed: tuple[list[float], float, int, int] | None = None
        if args.mixed:
            m0 = get(port, "/v1/status")["lines_processed"]

            async def both() -> tuple[list[float], float, int]:
                feeding = asyncio.create_task(ingest_load(port, list(batches), 1))
                got = await score_load(port, bodies, args.clients, args.requests, args.seconds)
                await feeding
                return got

            lat_m, secs_m, err_m = run_async(both())
            mixed = (lat_m, secs_m, err_m, get(port, "/v1/status")["lines_processed"] - m0)
        st = get(port, "/v1/status")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        if not args.keep:  # the ingest spool alone is ~75 MB per 500,000 lines
            shutil.rmtree(work, ignore_errors=True)
    cores = os.cpu_count()
    print(
        f"\nlogsieve serve load benchmark ({cores} cores, engine: {st.get('engine')}, "
        f"server and load generator on the same machine; load average "
        f"{load0[0]:.2f} before, {load1[0]:.2f} after the scoring run)\n"
    )
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| /v1/score: {n}-window batches, {args.clients} clients, {len(lat)} requests "
        f"({errors} errors) | {len(lat) / secs:,.0f} requests/s, {len(lat) * n / secs:,.0f} "
        f"windows/s |"
    )
    print(f"| /v1/score latency p50 / p99 | {pct(lat, 0.5):.1f} ms / {pct(lat, 0.99):.1f} ms |")
    print(
        f"| /v1/score CPU (user+sys) over {secs:.1f} s | server {cpu_srv:.1f} s "
        f"({cpu_srv / secs:.0%} of a core), load generator {cpu_gen:.1f} s "
        f"({cpu_gen / secs:.0%}) |"
    )
    print(
        f"| /v1/score result memo (whole run, warm-up included) | {memo.get('hits', 0):,} "
        f"windows answered from it, {memo.get('misses', 0):,} through detect, "
        f"{memo.get('entries', 0):,} sequences |"
    )
    if mixed is not None:
        lat_m, secs_m, err_m, worked = mixed
        print(
            f"| /v1/score as above, while the engine processed {worked:,} freshly ingested "
            f"lines ({err_m} errors) | {len(lat_m) / secs_m:,.0f} requests/s; p50 "
            f"{pct(lat_m, 0.5):.1f} ms, p99 {pct(lat_m, 0.99):.1f} ms |"
        )
    if args.no_ingest:
        return
    print(
        f"| /v1/ingest: {accepted:,} lines, {b:,}-line text/plain batches, 4 clients | "
        f"{accepted / t_ing:,.0f} lines/s accepted |"
    )
    print(
        f"| engine: those lines processed (parsed, grouped, scored) | {done - before:,} lines "
        f"in {t_proc:.1f} s = {(done - before) / t_proc:,.0f} lines/s; "
        f"{st.get('open_windows', 0):,} open windows, {st.get('alerts', 0):,} alerts |"
    )


if __name__ == "__main__":
    main()
