"""``logsieve serve`` as a real uvicorn server on a loopback port (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import polars as pl
import pytest

pytest.importorskip("uvicorn", reason="the serve extra is not installed")

from service_fixtures import REPO, Server, model_copy, trained_model, wait_for  # noqa: E402

from logsieve.pipeline import Pipeline  # noqa: E402


def test_served_api_end_to_end(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    with Server(model, tmp_path / "state") as srv:
        c = srv.client
        # /v1/score equals batch detect
        windows = pl.read_parquet(model / "test_windows.parquet").head(50)
        body = {"windows": [{"window_id": r["window_id"], "event_ids": r["event_ids"]}
                            for r in windows.iter_rows(named=True)]}  # fmt: skip
        got = c.post("/v1/score", json=body).json()["results"]
        ref = Pipeline.load(model).detect(windows).table
        assert [r["score"] for r in got] == ref["score"].to_list()
        assert [r["is_anomaly"] for r in got] == ref["is_anomaly"].to_list()
        # bad input: 4xx, and the server stays up
        assert c.post("/v1/score", content=b"{", headers={"content-type": "application/json"}
                      ).status_code == 400  # fmt: skip
        assert c.post("/v1/score", json={"windows": [{"lines": 3}]}).status_code == 422
        assert c.get("/livez").json() == {"status": "ok"}
        # an SSE subscriber sees the alerts that ingest leads to
        seen: list[dict] = []

        def listen() -> None:
            with httpx.stream("GET", srv.url + "/v1/alerts/stream", timeout=60) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data: "):
                        seen.append(json.loads(line[6:]))
                        return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        wait_for(lambda: "logsieve_http" in c.get("/metrics").text, 5)
        text = (trained_model() / "log").read_text()
        assert c.post("/v1/ingest", content=text).json()["accepted"] == text.count("\n")
        alerts = wait_for(lambda: c.get("/v1/alerts").json()["alerts"], 60)
        assert alerts
        t.join(60)
        assert seen and seen[0]["alert_id"].startswith("a")
        # feedback raises the model version
        v0 = c.get("/v1/model").json()["version"]
        fb = c.post(f"/v1/alerts/{alerts[0]['alert_id']}/feedback", json={"label": "normal"})
        assert fb.status_code == 200 and fb.json()["model_version"] == v0 + 1
        assert c.get("/v1/model").json()["version"] == v0 + 1
        metrics = c.get("/metrics").text
        assert "logsieve_lines_ingested_total" in metrics and "logsieve_alerts_total" in metrics
        assert f"logsieve_model_version {v0 + 1}.0" in metrics
    assert srv.proc.returncode == 0
    assert (tmp_path / "state" / "alerts.jsonl").stat().st_size > 0


def test_no_token_gets_401(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    with Server(model, tmp_path / "state", token="tok-123") as srv:
        bare = httpx.get(srv.url + "/v1/model")
        assert bare.status_code == 401 and "bearer" in bare.json()["error"]
        assert srv.client.get("/v1/model").status_code == 200


def test_a_non_loopback_bind_without_a_token_is_refused(tmp_path: Path) -> None:
    model = trained_model() / "model"
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    got = subprocess.run(
        [sys.executable, "-m", "logsieve", "serve", "-m", str(model), "--state-dir",
         str(tmp_path / "s"), "--host", "0.0.0.0", "--port", "1"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert got.returncode == 2
    err = got.stderr.strip().splitlines()
    assert len(err) == 1 and "refusing to bind 0.0.0.0 without a token" in err[0]
    assert not (tmp_path / "s").exists()
