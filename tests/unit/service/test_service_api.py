"""The service's routes through FastAPI's TestClient (in process, no socket)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from service_fixtures import model_copy, trained_model, wait_for  # noqa: E402

from logsieve.pipeline import Pipeline  # noqa: E402
from logsieve.service.app import ServiceConfig, create_app  # noqa: E402

TOKEN = "s3cret-token"


def _client(tmp: Path, **cfg: object) -> TestClient:
    model = model_copy(tmp)
    app = create_app(ServiceConfig(model_dir=model, state_dir=tmp / "state", **cfg))  # type: ignore[arg-type]
    return TestClient(app)


def _ready(c: TestClient, headers: dict[str, str] | None = None) -> None:
    assert wait_for(lambda: c.get("/readyz", headers=headers).status_code == 200, 60)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path, max_windows=60, max_body_bytes=8_000_000) as c:
        _ready(c)
        yield c


def test_score_equals_batch_detect_on_event_ids(client: TestClient) -> None:
    model = trained_model() / "model"
    windows = pl.read_parquet(model / "test_windows.parquet").head(60)
    body = {"windows": [{"window_id": r["window_id"], "event_ids": r["event_ids"]}
                        for r in windows.iter_rows(named=True)]}  # fmt: skip
    got = client.post("/v1/score", json=body)
    assert got.status_code == 200
    results = got.json()["results"]
    # a request carries no line ids: explanations name positions 1..n, as detect does on
    # the same windows with those line ids
    same = windows.select("window_id", "event_ids").with_columns(
        pl.int_ranges(1, pl.col("event_ids").list.len() + 1).alias("line_ids")
    )
    ref = Pipeline.load(model).detect(same).table
    assert [r["window_id"] for r in results] == ref["window_id"].to_list()
    assert [r["score"] for r in results] == ref["score"].to_list()
    assert [r["is_anomaly"] for r in results] == ref["is_anomaly"].to_list()
    want = [None if e is None else json.loads(e) for e in ref["explanation"].to_list()]
    assert [r["explanation"] for r in results] == want
    assert any(r["is_anomaly"] for r in results) and not all(r["is_anomaly"] for r in results)


def test_score_equals_batch_detect_on_raw_lines(client: TestClient, tmp_path: Path) -> None:
    root = trained_model()
    pipe = Pipeline.load(root / "model")
    lines = (root / "log").read_text().splitlines()[-4000:]
    (tmp_path / "tail.log").write_text("\n".join(lines) + "\n")
    windows, events = pipe.windows_from_log(tmp_path / "tail.log")
    windows = windows.head(40)
    ref = pipe.detect(windows).table
    text = dict(zip(events["line_id"].to_list(), lines, strict=True))
    body = {"windows": [{"window_id": r["window_id"], "lines": [text[i] for i in r["line_ids"]]}
                        for r in windows.iter_rows(named=True)]}  # fmt: skip
    results = client.post("/v1/score", json=body).json()["results"]
    assert [r["score"] for r in results] == ref["score"].to_list()
    assert [r["is_anomaly"] for r in results] == ref["is_anomaly"].to_list()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"windows": "x"}', 422, "windows"),
        (b'{"windows": [{"window_id": 5, "event_ids": []}]}', 422, "window_id"),
        (b'{"windows": [{"window_id": "a"}]}', 422, "event_ids"),
        (b'{"windows": []}', 422, "at least one window"),
        (b'{"windows": [{"window_id": "a", "event_ids": ["E1"], "x": 1}]}', 422, "x"),
        (
            json.dumps(
                {"windows": [{"window_id": str(i), "event_ids": ["E1"]} for i in range(61)]}
            ).encode(),
            413,
            "over the limit of 60",
        ),
        (b"[" + b"1," * 4_100_000 + b"1]", 413, "over the limit"),
    ],
)
def test_bad_score_input_gets_4xx_and_the_server_stays_up(
    client: TestClient, body: bytes, status: int, says: str
) -> None:
    got = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert got.status_code == status, got.text
    assert says in got.json()["error"]
    ok = client.post("/v1/score", json={"windows": [{"window_id": "w", "event_ids": ["E1"]}]})
    assert ok.status_code == 200 and ok.json()["results"][0]["window_id"] == "w"


def test_bad_ingest_input_and_routes(client: TestClient) -> None:
    bad = [
        ({"content": b'{"lines": "a"}', "headers": {"content-type": "application/json"}}, 422),
        ({"content": b'{"lines": [1]}', "headers": {"content-type": "application/json"}}, 422),
        (
            {"content": b'{"lines": ["a\\nb"]}', "headers": {"content-type": "application/json"}},
            422,
        ),
        ({"content": b"{", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"a", "headers": {"content-type": "image/png"}}, 415),
    ]
    for kwargs, status in bad:
        got = client.post("/v1/ingest", **kwargs)  # type: ignore[arg-type]
        assert got.status_code == status and got.json()["error"]
    assert client.get("/v1/alerts/nope").status_code == 404
    assert client.post("/v1/alerts/nope/feedback", json={"label": "normal"}).status_code == 404
    assert client.get("/v1/alerts?limit=0").status_code == 422
    assert client.get("/static/../../etc/passwd").status_code == 404
    assert client.post("/v1/ingest", content=b"x y\n", headers={"content-type": "text/plain"}
                       ).json() == {"accepted": 1}  # fmt: skip


def test_ingest_leads_to_alerts_that_batch_detect_flags_too(client: TestClient) -> None:
    root = trained_model()
    pipe = Pipeline.load(root / "model")
    windows, _ = pipe.windows_from_log(root / "log")
    table = pipe.detect(windows).table
    flagged = set(table.filter(pl.col("is_anomaly"))["window_id"].to_list())
    text = (root / "log").read_text()
    got = client.post("/v1/ingest", content=text, headers={"content-type": "text/plain"})
    assert got.json() == {"accepted": text.count("\n")}
    alerts = wait_for(lambda: client.get("/v1/alerts?limit=1000").json()["alerts"], 60)
    assert alerts, "no alert from a log batch detect flags windows in"
    assert {a["window_id"] for a in alerts} <= flagged
    one = client.get(f"/v1/alerts/{alerts[0]['alert_id']}").json()
    for key in ("alert_id", "window_id", "score", "threshold", "model_version", "emitted_at",
                "trigger", "lines", "explanation"):  # fmt: skip
        assert key in one
    assert one["score"] > one["threshold"]
    rest = client.get(f"/v1/alerts?since={alerts[0]['alert_id']}&limit=1000").json()["alerts"]
    # the engine may have raised more alerts since the first listing: that listing's tail
    # must start what `since` returns now, in order
    after = [a["alert_id"] for a in alerts[1:]]
    assert [a["alert_id"] for a in rest][: len(after)] == after


def test_feedback_raises_the_model_version_and_swaps_it_in(client: TestClient) -> None:
    text = (trained_model() / "log").read_text()
    client.post("/v1/ingest", content=text, headers={"content-type": "text/plain"})
    alerts = wait_for(lambda: client.get("/v1/alerts").json()["alerts"], 60)
    before = client.get("/v1/model").json()["version"]
    got = client.post(f"/v1/alerts/{alerts[0]['alert_id']}/feedback", json={"label": "normal"})
    assert got.status_code == 200, got.text
    assert got.json()["model_version"] == before + 1
    assert client.get("/v1/model").json()["version"] == before + 1
    marked = client.get(f"/v1/alerts/{alerts[0]['alert_id']}").json()["feedback"]
    assert marked["label"] == "normal" and marked["model_version"] == before + 1
    assert "logsieve_model_version %s.0" % (before + 1) in client.get("/metrics").text
    bad = client.post(f"/v1/alerts/{alerts[0]['alert_id']}/feedback", json={"label": "maybe"})
    assert bad.status_code == 422
    # scoring goes on with the new version
    ok = client.post("/v1/score", json={"windows": [{"window_id": "w", "event_ids": ["E1"]}]})
    assert ok.status_code == 200


def test_metrics_follow_the_naming_guide(client: TestClient) -> None:
    client.post("/v1/ingest", json={"lines": ["hello world"]})
    client.post("/v1/score", json={"windows": [{"window_id": "w", "event_ids": ["E1"]}]})
    text = client.get("/metrics").text
    for name in ("logsieve_lines_ingested_total 1.0", "logsieve_alerts_total",
                 "logsieve_alert_latency_seconds_bucket", "logsieve_open_windows",
                 "logsieve_model_version", "logsieve_http_request_duration_seconds_bucket",
                 "logsieve_windows_scored_total 1.0"):  # fmt: skip
        assert name in text
    assert 'route="/v1/score"' in text
    labels = " ".join(line for line in text.splitlines() if "{" in line)
    assert "blk_" not in labels and "window_id" not in labels and "alert_id" not in labels


def test_the_page_and_its_assets_are_served_by_logsieve_itself(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "Live alerts" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/app.css"):
        got = client.get(asset)
        assert got.status_code == 200 and "http" not in got.text.replace("http.", "")


def test_token_guards_every_v1_route_and_the_page(tmp_path: Path) -> None:
    with _client(tmp_path, token=TOKEN) as c:
        assert c.get("/livez").status_code == 200
        _ready(c)
        for method, path in [("get", "/v1/alerts"), ("get", "/v1/model"), ("post", "/v1/score"),
                             ("post", "/v1/ingest"), ("get", "/metrics"), ("get", "/docs")]:  # fmt: skip
            got = getattr(c, method)(path)
            assert got.status_code == 401 and "bearer token" in got.json()["error"]
            wrong = getattr(c, method)(path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
        page = c.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        ok = c.get("/v1/model", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert c.post("/login", data={"token": "nope"}).status_code == 401
        c.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert c.get("/").status_code == 200 and c.get("/v1/model").status_code == 200


def test_model_route_and_readyz(client: TestClient) -> None:
    m = client.get("/v1/model").json()
    assert m["name"] == "deeplog" and m["version"] >= 1 and m["threshold"] > 0
    assert "model_dir" not in m
    assert client.get("/readyz").json()["status"] == "ready"
    assert time.time() > 0


def _events_body(windows: pl.DataFrame) -> dict[str, list[dict[str, object]]]:
    return {"windows": [{"window_id": r["window_id"], "event_ids": r["event_ids"]}
                        for r in windows.iter_rows(named=True)]}  # fmt: skip


def _detect_rows(model: Path, windows: pl.DataFrame) -> list[dict[str, object]]:
    same = windows.select("window_id", "event_ids").with_columns(
        pl.int_ranges(1, pl.col("event_ids").list.len() + 1).alias("line_ids")
    )
    ref = Pipeline.load(model).detect(same).table
    return [
        {"window_id": w, "score": s, "is_anomaly": f, "explanation": None if e is None
         else json.loads(e)}
        for w, s, f, e in ref.select("window_id", "score", "is_anomaly", "explanation").iter_rows()
    ]  # fmt: skip


def test_repeated_windows_come_from_the_memo_which_a_new_model_version_empties(
    client: TestClient, tmp_path: Path
) -> None:
    model = tmp_path / "model"  # the client's own copy: feedback rewrites it
    windows = pl.read_parquet(model / "test_windows.parquet").head(60)
    first = client.post("/v1/score", json=_events_body(windows)).json()["results"]
    memo = client.get("/v1/status").json()["score_memo"]
    distinct = windows["event_ids"].list.join(",").n_unique()
    assert memo["entries"] == distinct and memo["hits"] == 0 and memo["misses"] == 60
    # the same sequences under other window ids: all answered from the memo, ids their own
    renamed = windows.with_columns(("again-" + pl.col("window_id")).alias("window_id"))
    again = client.post("/v1/score", json=_events_body(renamed)).json()["results"]
    assert client.get("/v1/status").json()["score_memo"]["hits"] == 60
    assert again == _detect_rows(model, renamed)
    assert [r["window_id"] for r in again] == renamed["window_id"].to_list()
    assert [{**r, "window_id": w} for r, w in zip(again, windows["window_id"], strict=True)
            if r["explanation"] is None] == [r for r in first if r["explanation"] is None]  # fmt: skip
    # feedback swaps in a new version with an empty memo: scored afresh, by the new model
    text = (trained_model() / "log").read_text()
    client.post("/v1/ingest", content=text, headers={"content-type": "text/plain"})
    alerts = wait_for(lambda: client.get("/v1/alerts").json()["alerts"], 60)
    got = client.post(f"/v1/alerts/{alerts[0]['alert_id']}/feedback", json={"label": "normal"})
    assert got.status_code == 200, got.text
    assert client.get("/v1/status").json()["score_memo"] == {"entries": 0, "bytes": 0,
                                                             "hits": 0, "misses": 0}  # fmt: skip
    after = client.post("/v1/score", json=_events_body(windows)).json()["results"]
    assert client.get("/v1/status").json()["score_memo"]["misses"] == 60
    want = _detect_rows(model, windows)
    assert [(r["score"], r["is_anomaly"]) for r in after] == [
        (r["score"], r["is_anomaly"]) for r in want
    ]


def test_item_types_are_checked_even_when_the_memo_could_answer(client: TestClient) -> None:
    ok = client.post("/v1/score", json={"windows": [{"window_id": "a", "event_ids": ["E1", "E2"]}]})
    assert ok.status_code == 200
    for items, says in [(["E1", 2], "windows[0].event_ids[1]: must be a string, not int"),
                        (["E1", ["E2"]], "windows[0].event_ids[1]: must be a string, not list"),
                        (["E1", None], "not NoneType")]:  # fmt: skip
        got = client.post("/v1/score", json={"windows": [{"window_id": "a", "event_ids": items}]})
        assert got.status_code == 422 and says in got.json()["error"], got.text
    got = client.post("/v1/score", json={"windows": [{"window_id": "a", "lines": [1]}]})
    assert got.status_code == 422 and "windows[0].lines[0]" in got.json()["error"]
    both = {"window_id": "a", "event_ids": [], "lines": []}
    got = client.post("/v1/score", json={"windows": [both]})
    assert got.status_code == 422 and "not both" in got.json()["error"]
    got = client.post("/v1/score", json={"windows": [{"window_id": "", "event_ids": []}]})
    assert got.status_code == 422 and "1 to 1024" in got.json()["error"]
    got = client.post("/v1/score", json={"stuff": []})
    assert got.status_code == 422 and "'stuff'" in got.json()["error"]


def test_the_declared_score_route_answers_as_the_front_doors_hot_path(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    guard = create_app(ServiceConfig(model_dir=model, state_dir=tmp_path / "state"))
    windows = pl.read_parquet(model / "test_windows.parquet").head(20)
    with TestClient(guard.app) as c:  # FastAPI itself, without the front door
        _ready(c)
        got = c.post("/v1/score", json=_events_body(windows))
        assert got.status_code == 200 and got.json()["results"] == _detect_rows(model, windows)
        bad = c.post("/v1/score", json={"windows": [{"window_id": "a", "event_ids": [1]}]})
        assert bad.status_code == 422 and "event_ids[0]" in bad.json()["error"]
        schema = c.get("/openapi.json").json()["paths"]["/v1/score"]["post"]["requestBody"]
        items = schema["content"]["application/json"]["schema"]["properties"]["windows"]["items"]
        assert [sorted(s["required"]) for s in items["oneOf"]] == [
            ["event_ids", "window_id"], ["lines", "window_id"]
        ]  # fmt: skip
