"""The FastAPI application of ``logsieve serve``: :func:`create_app`.

Routes (OpenAPI at ``/docs``): ``POST /v1/score``, ``POST /v1/ingest``, ``GET /v1/alerts``,
``GET /v1/alerts/stream`` (server-sent events), ``GET /v1/alerts/{id}``,
``POST /v1/alerts/{id}/feedback``, ``GET /v1/model``, ``GET /v1/status``, ``GET /livez``,
``GET /readyz``, ``GET /metrics`` and the page at ``/``. Bad input gets a 4xx whose JSON
``error`` says what is wrong; no request names a file path (the model directory, the state
directory and the followed files are fixed at start).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from logsieve.errors import LogsieveError
from logsieve.pipeline import Pipeline
from logsieve.service.alerts import FEEDBACK_FILE, AlertStore
from logsieve.service.engine import StreamEngine
from logsieve.service.feedback import FeedbackGate, feedback_kind
from logsieve.service.guard import COOKIE, Guard, token_matches
from logsieve.service.metrics import Metrics
from logsieve.service.scoring import MEMO_BYTES, BadRequest, Scorer, parse_score_body

logger = logging.getLogger(__name__)

__all__ = ["Service", "ServiceConfig", "create_app", "read_model_version"]

STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")  # fmt: skip


@dataclass
class ServiceConfig:
    """What ``logsieve serve`` is started with."""

    model_dir: Path
    state_dir: Path
    watch: list[str] = field(default_factory=list)
    token: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    max_windows: int = 1000
    max_window_events: int = 10_000
    max_lines: int = 200_000
    max_line_bytes: int = 64 * 1024
    sse_heartbeat_s: float = 15.0
    score_memo_bytes: int = MEMO_BYTES


def read_model_version(model_dir: Path) -> int:
    """``model_version`` of ``pipeline.json`` (1 when absent)."""
    try:
        desc = json.loads((Path(model_dir) / "pipeline.json").read_text("utf-8"))
        return int(desc.get("model_version") or 1)
    except (OSError, ValueError, TypeError):
        return 1


# ---------------------------------------------------------------------------- request bodies
# /v1/score's body is checked by hand (parse_score_body): a pydantic model per window cost
# more than scoring a memoised window. The schema below is what /docs shows.


def _window_schema(items: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["window_id", items],
        "properties": {
            "window_id": {"type": "string", "minLength": 1, "maxLength": 1024},
            items: {"type": "array", "items": {"type": "string"}},
        },
    }


SCORE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["windows"],
                    "properties": {
                        "windows": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "oneOf": [_window_schema("event_ids"), _window_schema("lines")]
                            },
                        }
                    },
                },
                "example": {"windows": [{"window_id": "w1", "event_ids": ["E5", "E5", "E22"]}]},
            }
        },
    }
}


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Literal["normal", "anomaly"]


INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/plain": {"schema": {"type": "string"}, "example": "line one\nline two\n"},
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"lines": {"type": "array", "items": {"type": "string"}}},
                    "required": ["lines"],
                }
            },
        },
    }
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _error_bytes(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _fast_json(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, separators=(",", ":")), status_code=status,
                    media_type="application/json")  # fmt: skip


def _limit_torch_threads() -> None:
    """Half the usable cores (at least one) per torch call: the scorer and the engine each
    run the network on their own thread, so together they never use more threads than
    cores (torch's default is all cores for each)."""
    import os
    import sys

    torch = sys.modules.get("torch")  # loaded by a neural model; never imported here
    if torch is None:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // 2)
    if torch.get_num_threads() > threads:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------- the service
class Service:
    """The running parts behind the routes: scorer, engine, alert store, feedback, metrics."""

    def __init__(self, cfg: ServiceConfig) -> None:
        self.cfg = cfg
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.scorer: Scorer | None = None
        self.engine = StreamEngine(
            cfg.model_dir,
            cfg.state_dir,
            cfg.watch,
            on_alert=self._on_alert,
            on_latency=self._on_latency,
        )
        self.store = AlertStore(self.engine.alerts_path, cfg.state_dir / FEEDBACK_FILE)
        self.gate = FeedbackGate(cfg.model_dir)
        self.metrics = Metrics(self.engine.status, self.version)
        self.error: str | None = None
        self.ready = threading.Event()
        self.started = time.time()

    def version(self) -> int:
        return self.scorer.version if self.scorer is not None else 0

    def load(self) -> None:
        """Load the pipeline and start the engine (on a thread: /readyz says when done)."""
        try:
            pipe = Pipeline.load(self.cfg.model_dir)
            _limit_torch_threads()
            self.scorer = Scorer(pipe, read_model_version(self.cfg.model_dir),
                                 memo_bytes=self.cfg.score_memo_bytes)  # fmt: skip
            self.engine.start()
            self.ready.set()
            logger.info("ready: %s version %d, engine %s", pipe.name, self.version(),
                        self.engine.kind)  # fmt: skip
        except Exception as exc:
            logger.exception("the service could not start")
            self.error = f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.engine.stop()
        if self.scorer is not None:
            self.scorer.close()

    def ingest(self, lines: list[str]) -> int:
        """Lines into the stream (``POST /v1/ingest``, the demo's feed); how many."""
        n = self.engine.ingest(lines)
        self.metrics.lines_ingested.inc(n)
        return n

    def _on_alert(self, record: dict[str, Any]) -> None:
        self.metrics.alerts.inc()
        self.store.add(record)

    def _on_latency(self, seconds: float) -> None:
        self.metrics.alert_latency.observe(seconds)

    def feedback(self, alert: dict[str, Any], label: str) -> dict[str, Any]:
        assert self.scorer is not None
        report = self.gate.apply(self.scorer.pipe, alert, label)
        version = int(report["model_version"])
        pipe = Pipeline.load(self.cfg.model_dir)
        self.scorer.swap(pipe, version)  # the engine reloads by itself (pipeline.json changed)
        self.metrics.feedback.labels(label=label).inc()
        verdict = self.store.record_feedback(str(alert["alert_id"]), label, version)
        self.store.publish("model", {"version": version, "threshold": pipe.threshold})
        return {**report, "alert_id": verdict["alert_id"], "label": label}


def _ingest_lines(body: bytes, content_type: str, cfg: ServiceConfig) -> list[str] | JSONResponse:
    """The lines of an ingest body, or the 4xx saying what is wrong."""
    if content_type.startswith("application/json"):
        try:
            obj = json.loads(body)
        except ValueError as exc:
            return _error(400, f"body is not valid JSON: {exc}")
        if not isinstance(obj, dict) or set(obj) != {"lines"} or not isinstance(obj["lines"], list):
            return _error(422, 'body must be {"lines": [string, ...]}')
        lines = obj["lines"]
        for i, line in enumerate(lines):
            if not isinstance(line, str):
                return _error(422, f"lines[{i}] is {type(line).__name__}, not a string")
            if "\n" in line or "\r" in line:
                return _error(422, f"lines[{i}] contains a line break: send one line per item")
    elif content_type.startswith("text/plain") or not content_type:
        text = body.decode("utf-8", "replace")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        lines = [x[:-1] if x.endswith("\r") else x for x in lines]
    else:
        return _error(415, f"Content-Type {content_type!r}: send text/plain (one line per line) "
                           'or application/json {"lines": [...]}')  # fmt: skip
    if len(lines) > cfg.max_lines:
        return _error(413, f"{len(lines)} lines is over the limit of {cfg.max_lines} per request")
    for i, line in enumerate(lines):
        if len(line) > cfg.max_line_bytes:
            return _error(413, f"line {i + 1} is over {cfg.max_line_bytes} characters")
    return lines


def create_app(cfg: ServiceConfig) -> Any:
    """The ASGI application (FastAPI inside :class:`~logsieve.service.guard.Guard`)."""
    svc = Service(cfg)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc.store.bind(asyncio.get_running_loop())
        loader = threading.Thread(target=svc.load, name="logsieve-load", daemon=True)
        loader.start()
        try:
            yield
        finally:
            await asyncio.to_thread(loader.join)
            await asyncio.to_thread(svc.close)

    api = FastAPI(title="logsieve", summary="Log anomaly scoring, alerts and feedback.",
                  version="1", lifespan=lifespan)  # fmt: skip
    api.state.service = svc

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" or (tuple(e.get("loc", ())) == ("body",)
               and isinstance(e.get("input"), bytes)) for e in errors):  # fmt: skip
            return _error(400, "body is not valid JSON")
        parts = []
        for e in errors[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where or 'body'}: {e.get('msg')}")
        return JSONResponse({"error": "; ".join(parts), "detail": jsonable(errors[:20])},
                            status_code=422)  # fmt: skip

    def not_ready() -> JSONResponse | None:
        if svc.ready.is_set():
            return None
        return _error(503, svc.error or "the model is still loading")

    # ------------------------------------------------------------------ operations
    @api.get("/livez", tags=["operations"])
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        if not svc.ready.is_set() or svc.engine.error:
            return _error(503, svc.error or svc.engine.error or "the model is still loading")
        return JSONResponse({"status": "ready", "model_version": svc.version()})

    @api.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------------ scoring and ingest
    async def score_body(body: bytes) -> tuple[int, bytes]:
        """``POST /v1/score`` on a body: the status and the JSON answer (the route below and
        the Guard's hot path both run this)."""
        scorer = svc.scorer
        if scorer is None or not svc.ready.is_set():
            return 503, _error_bytes(svc.error or "the model is still loading")
        try:
            req = parse_score_body(body, cfg.max_windows, cfg.max_window_events)
            # every window already scored by this model version: answer here, no hand-over
            rows = None if any(req.is_lines) else scorer.cached(req.window_ids, req.items)
            if rows is None:
                req.check()
                rows = await asyncio.wrap_future(scorer.submit(req.windows()))
        except BadRequest as exc:
            return exc.status, _error_bytes(exc.message)
        except LogsieveError as exc:
            return 422, _error_bytes(str(exc))
        svc.metrics.windows_scored.inc(len(rows))
        return 200, ('{"results":[' + ",".join(rows) + "]}").encode()

    @api.post("/v1/score", tags=["scoring"], openapi_extra=SCORE_BODY)
    async def score(request: Request) -> Response:
        """Score windows (event ids, or raw lines parsed with the model's parser) exactly as
        batch ``detect`` does; returns one result per window, in order. (Served by the
        front door's hot path; this declaration gives the OpenAPI entry and is the same
        function.)"""
        status, data = await score_body(await request.body())
        return Response(data, status_code=status, media_type="application/json")

    @api.post("/v1/ingest", tags=["scoring"], openapi_extra=INGEST_BODY)
    async def ingest(request: Request) -> Response:
        """Raw lines into the stream: ``text/plain`` (one per line) or ``{"lines": [...]}``."""
        if (resp := not_ready()) is not None:
            return resp
        got = _ingest_lines(await request.body(), request.headers.get("content-type", ""), cfg)
        if isinstance(got, JSONResponse):
            return got
        n = await asyncio.to_thread(svc.ingest, got) if len(got) > 1000 else svc.ingest(got)
        return _fast_json({"accepted": n})

    # ------------------------------------------------------------------ alerts
    @api.get("/v1/alerts", tags=["alerts"])
    async def alerts(
        since: Annotated[
            str | None, Query(max_length=64, description="After this alert id.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        """Alerts in the schema of ``logsieve watch`` (plus ``feedback`` once given)."""
        return _fast_json({"alerts": svc.store.since(since, limit)})

    @api.get("/v1/alerts/stream", tags=["alerts"])
    async def stream(
        request: Request,
        since: Annotated[
            str | None, Query(max_length=64, description="Replay after this id.")
        ] = None,
    ) -> StreamingResponse:
        """Server-sent events: ``alert`` (id = alert id), ``feedback`` and ``model``."""
        after = since if since is not None else request.headers.get("last-event-id")
        queue = svc.store.subscribe()

        async def events() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                if after is not None:
                    for rec in svc.store.since(after, 1000):
                        yield _sse("alert", rec, rec["alert_id"])
                while True:
                    try:
                        kind, payload = await asyncio.wait_for(queue.get(), cfg.sse_heartbeat_s)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield ": keep-alive\n\n"
                        continue
                    yield _sse(kind, payload, payload.get("alert_id") if kind == "alert" else None)
            finally:
                svc.store.unsubscribe(queue)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})  # fmt: skip

    @api.get("/v1/alerts/{alert_id}", tags=["alerts"])
    async def alert(alert_id: str) -> Response:
        rec = svc.store.get(alert_id)
        if rec is None:
            return _error(404, f"no alert {alert_id!r}")
        return _fast_json(rec)

    @api.post("/v1/alerts/{alert_id}/feedback", tags=["alerts"])
    async def feedback(alert_id: str, body: FeedbackRequest) -> Response:
        """Mark an alert "normal" (not an anomaly) or "anomaly" (confirmed); the model is
        updated as ``logsieve feedback`` does it and the new version swapped in."""
        if (resp := not_ready()) is not None:
            return resp
        rec = svc.store.get(alert_id)
        if rec is None:
            return _error(404, f"no alert {alert_id!r}")
        try:
            report = await asyncio.to_thread(svc.feedback, rec, body.label)
        except LogsieveError as exc:
            return _error(422, str(exc))
        return _fast_json(report)

    # ------------------------------------------------------------------ model and status
    @api.get("/v1/model", tags=["model"])
    async def model() -> Response:
        if (resp := not_ready()) is not None:
            return resp
        assert svc.scorer is not None
        pipe = svc.scorer.pipe
        desc = pipe.describe()
        return _fast_json({
            "name": pipe.name, "version": svc.version(), "threshold": pipe.threshold,
            "input": pipe.detector.input_kind, "log_format": desc.get("log_format"),
            "grouping": desc.get("grouping"), "templates": len(pipe.templates),
            "engine": svc.engine.kind, "feedback": feedback_kind(),
        })  # fmt: skip

    @api.get("/v1/status", tags=["model"])
    async def status() -> Response:
        st = svc.engine.status()
        st.pop("sources", None)  # paths stay on the server
        st.update(
            {
                "model_version": svc.version(),
                "alerts": len(svc.store),
                "ready": svc.ready.is_set(),
                "uptime_s": round(time.time() - svc.started, 1),
                "score_memo": svc.scorer.memo_stats() if svc.scorer is not None else None,
            }
        )
        return _fast_json(st)

    # ------------------------------------------------------------------ the page
    @api.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(
            _asset("index.html"),
            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
        )

    @api.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in STATIC:  # a fixed set: no request names a file
            return _error(404, f"no asset {name!r}")
        return Response(_asset(name), media_type=STATIC[name])

    if cfg.token is not None:
        token = cfg.token

        @api.get("/login", include_in_schema=False)
        async def login_form() -> HTMLResponse:
            return HTMLResponse(_asset("login.html"), headers={"Content-Security-Policy": CSP})

        @api.post("/login", include_in_schema=False)
        async def login(request: Request) -> Response:
            from urllib.parse import parse_qs

            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            given = (form.get("token") or [""])[0]
            if not token_matches(given, token):
                return _error(401, "wrong token")
            resp = Response(status_code=303, headers={"Location": "/"})
            resp.set_cookie(COOKIE, given, httponly=True, samesite="strict")
            return resp

    def observe(method: str, route: str, status: int, seconds: float) -> None:
        if route != "/v1/alerts/stream":
            svc.metrics.requests.labels(method=method, route=route,
                                        status=str(status)).observe(seconds)  # fmt: skip

    guarded = Guard(api, token=cfg.token, max_body=cfg.max_body_bytes, observe=observe,
                    fast={("POST", "/v1/score"): score_body})  # fmt: skip
    guarded.service = svc
    return guarded


def _sse(kind: str, payload: dict[str, Any], event_id: str | None) -> str:
    head = f"event: {kind}\n" + (f"id: {event_id}\n" if event_id else "")
    return head + "data: " + json.dumps(payload, separators=(",", ":")) + "\n\n"


def _asset(name: str) -> bytes:
    return (resources.files("logsieve.service") / "static" / name).read_bytes()


def jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))
