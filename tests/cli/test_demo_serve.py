"""``logsieve demo --serve``: the demo's model served on loopback, its test lines streamed in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="the serve extra is not installed")

import httpx  # noqa: E402
from service_fixtures import REPO, free_port, wait_for  # noqa: E402


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=10)
    except httpx.TransportError:
        return None


def test_demo_serve_starts_answers_readyz_and_streams_alerts(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "logsieve", "demo", "--serve", "--lines", "20000",
             "--port", str(port), "--workdir", str(tmp_path / "demo")],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        ready = wait_for(
            lambda: (
                proc.poll() is not None
                or ((r := _get(url + "/readyz")) is not None and r.status_code == 200)
            ),
            300,
            0.5,
        )
        assert ready and proc.poll() is None, log.read_text()
        assert f"serving the demo model at {url}/" in log.read_text()
        model = httpx.get(url + "/v1/model").json()
        assert model["name"] == "deeplog" and model["engine"] == "watch"
        # the held-out lines stream in and the model flags some of their windows
        alerts = wait_for(lambda: httpx.get(url + "/v1/alerts").json()["alerts"], 120, 0.5)
        assert alerts, log.read_text()
        status = httpx.get(url + "/v1/status").json()
        assert status["lines_accepted"] > 0 and status["error"] is None
        # the served model scores event-id windows too (its value model is set aside)
        one = {"windows": [{"window_id": "w", "event_ids": ["E1", "E2", "E3"]}]}
        assert httpx.post(url + "/v1/score", json=one).status_code == 200
        assert (tmp_path / "demo" / "serve-model" / "pipeline.json").is_file()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0, log.read_text()
