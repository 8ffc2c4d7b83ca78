"""The service's front door, one pure ASGI middleware: bearer-token check (constant time),
body-size limit, request-duration metrics by route template, and the hot routes.

A hot route (``fast``: method and path -> a function of the body giving the status and
the JSON answer) is answered here, after the token and size checks, without FastAPI's
routing and request machinery, which cost more than a memoised ``/v1/score`` itself. The
route stays declared in FastAPI too (OpenAPI, and the same function behind it).

With a token, every route needs ``Authorization: Bearer TOKEN`` except ``/livez``,
``/readyz`` and the login form. The page (a browser cannot add the header to a page load)
may instead carry the ``logsieve_token`` cookie, which ``POST /login`` sets (HttpOnly,
SameSite=Strict) after the same constant-time comparison.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["COOKIE", "OPEN_PATHS", "Guard", "token_matches"]

COOKIE = "logsieve_token"
OPEN_PATHS = frozenset({"/livez", "/readyz", "/login"})

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
FastRoute = Callable[[bytes], Awaitable[tuple[int, bytes]]]


def token_matches(given: str | bytes | None, token: str) -> bool:
    """Constant-time comparison of ``given`` with the service token."""
    if given is None:
        return False
    raw = given.encode("utf-8", "replace") if isinstance(given, str) else given
    return hmac.compare_digest(raw, token.encode("utf-8"))


def _cookie(header: bytes) -> bytes | None:
    for part in header.split(b";"):
        name, _, value = part.strip().partition(b"=")
        if name == COOKIE.encode():
            return value
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any],
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:  # fmt: skip
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class Guard:
    """Token, body limit and metrics around the FastAPI app (module docstring)."""

    def __init__(self, app: Any, *, token: str | None, max_body: int,
                 observe: Callable[[str, str, int, float], None],
                 fast: dict[tuple[str, str], FastRoute] | None = None) -> None:  # fmt: skip
        self.app = app
        self.token = token
        self.max_body = max_body
        self.observe = observe
        self.fast = dict(fast or {})
        self.service: Any = None  # the Service behind the routes (tests, the CLI)

    def _authorised(self, scope: Scope) -> bool:
        if self.token is None or scope["path"] in OPEN_PATHS:
            return True
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer " and token_matches(auth[7:].strip(), self.token):
            return True
        cookie = headers.get(b"cookie")
        return cookie is not None and token_matches(_cookie(cookie), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_status(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                status[0] = int(msg["status"])
            await send(msg)

        fast = self.fast.get((scope["method"], scope["path"]))
        try:
            await self._handle(scope, receive, send_status, fast)
        finally:
            route = scope.get("route")
            name = scope["path"] if fast else getattr(route, "path", None) or "unmatched"
            self.observe(scope["method"], name, status[0], time.perf_counter() - t0)

    async def _handle(self, scope: Scope, receive: Receive, send: Send,
                      fast: FastRoute | None) -> None:  # fmt: skip
        if not self._authorised(scope):
            if scope["path"] == "/" and scope["method"] == "GET":
                await send(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [(b"location", b"/login"), (b"content-length", b"0")],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
            await _send_json(send, 401, {"error": "missing or wrong bearer token "
                                         "(Authorization: Bearer TOKEN)"},
                             [(b"www-authenticate", b"Bearer")])  # fmt: skip
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                await _send_json(send, 400, {"error": "Content-Length is not a number"})
                return
            if n > self.max_body:
                await _send_json(send, 413, {"error": f"body of {n} bytes is over the limit "
                                             f"of {self.max_body} bytes"})  # fmt: skip
                return
            if fast is None:
                await self.app(scope, receive, send)
                return
        if fast is None and scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        # A hot route, or no Content-Length (chunked): read the body here, up to the limit.
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _send_json(send, 413, {"error": f"body over the limit of "
                                             f"{self.max_body} bytes"})  # fmt: skip
                return
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        if fast is not None:
            status, data = await fast(body)
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ]})  # fmt: skip
            await send({"type": "http.response.body", "body": data})
            return
        sent = [False]

        async def replay() -> dict[str, Any]:
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
