"""A small trained DeepLog model for the service tests, built once per test process
(synthetic HDFS, 30,000 lines, 5 epochs: about 13 s on the 2-core machine), and helpers to
start and stop a real ``logsieve serve`` on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
_MODEL: Path | None = None


def trained_model() -> Path:
    """The directory holding ``log`` (the synthetic HDFS log) and ``model/`` (read-only use:
    copy it with :func:`model_copy` before feedback changes it)."""
    global _MODEL
    if _MODEL is None:
        from logsieve.grouping.specs import build_spec
        from logsieve.pipeline.jobs import group_job, parse_job, train_job
        from logsieve.synth import generate

        root = Path(tempfile.mkdtemp(prefix="logsieve-serve-tests-"))
        gen = generate(root / "log", lines=30_000, seed=0)
        parse_job([root / "log"], root / "events.parquet", format="hdfs")
        group_job(root / "events.parquet", root / "windows.parquet", build_spec(),
                  labels=gen.labels_path)  # fmt: skip
        train_job(root / "windows.parquet", "deeplog", {"epochs": 5, "random_state": 0},
                  root / "model", split="0.6,0.1,0.3", split_method="chronological",
                  train_normal_only=True)  # fmt: skip
        _MODEL = root
    return _MODEL


def model_copy(dest: Path) -> Path:
    """A private copy of the trained model directory (feedback rewrites it in place)."""
    target = dest / "model"
    shutil.copytree(trained_model() / "model", target)
    return target


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python -m logsieve serve`` in a subprocess on 127.0.0.1; always stopped."""

    def __init__(self, model: Path, state: Path, *extra: str, token: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        src = os.environ.get("LOGSIEVE_TEST_SRC", str(REPO / "src"))  # another tree to serve
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=src)
        env.pop("LOGSIEVE_TOKEN", None)
        if token is not None:
            env["LOGSIEVE_TOKEN"] = token
        self.log = state.parent / f"serve-{self.port}.log"
        self._log_fh = open(self.log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "logsieve", "serve", "-m", str(model), "--state-dir",
             str(state), "--port", str(self.port), *extra],
            env=env, stdout=self._log_fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def wait_ready(self, timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                if self.client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"serve not ready: {self.log.read_text()}")

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log_fh.close()
        return int(self.proc.returncode)

    def __enter__(self) -> Server:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(predicate, timeout: float = 30, step: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy (returned) or time runs out."""
    end = time.monotonic() + timeout
    while True:
        got = predicate()
        if got or time.monotonic() > end:
            return got
        time.sleep(step)
