"""Starting the service: the bind check and uvicorn (:func:`serve`)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from logsieve.errors import LogsieveError
from logsieve.service.app import ServiceConfig, create_app

logger = logging.getLogger(__name__)

__all__ = ["check_bind", "is_loopback", "make_server", "serve"]

HANDLED = (signal.SIGINT, signal.SIGTERM)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without a token (one-line error, exit code 2)."""
    if token is not None and not token.strip():
        raise LogsieveError("--token is empty")
    if not is_loopback(host) and token is None:
        raise LogsieveError(
            f"refusing to bind {host} without a token: pass --token (or set LOGSIEVE_TOKEN), "
            "or bind 127.0.0.1"
        )


def make_server(cfg: ServiceConfig, host: str, port: int) -> Any:
    """A ``uvicorn.Server`` for the service (not started)."""
    import uvicorn

    class _Server(uvicorn.Server):
        """SIGINT/SIGTERM stop the server gracefully and the process exits 0 (uvicorn would
        re-raise the signal after shutdown)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            old = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED}
            try:
                yield
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)

    check_bind(host, cfg.token)
    config = uvicorn.Config(
        create_app(cfg), host=host, port=port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=3, lifespan="on", server_header=False,
    )  # fmt: skip
    return _Server(config)


def serve(
    cfg: ServiceConfig,
    host: str = "127.0.0.1",
    port: int = 8321,
    *,
    feed: Sequence[str] = (),
    feed_lines_per_second: float = 10_000.0,
) -> None:
    """Run until SIGINT/SIGTERM (the engine checkpoints on the way out). ``feed``: lines
    ingested once the service is ready, as ``POST /v1/ingest`` would, at about
    ``feed_lines_per_second`` (so alerts arrive on the page live; ``logsieve demo --serve``)."""
    server = make_server(cfg, host, port)
    if feed:
        threading.Thread(target=_feed, args=(server, list(feed), feed_lines_per_second),
                         name="logsieve-feed", daemon=True).start()  # fmt: skip
    try:
        server.run()
    except OSError as exc:  # pragma: no cover - bind failures come as SystemExit from uvicorn
        raise LogsieveError(f"cannot listen on {host}:{port}: {exc}") from exc
    if not server.started:
        raise LogsieveError(f"could not listen on {host}:{port} (in use?)")


def _feed(server: Any, lines: list[str], per_second: float, chunk: int = 500) -> None:
    svc = server.config.app.service
    while not svc.ready.wait(0.2):
        if server.should_exit or svc.error:
            return
    pause = chunk / per_second if per_second > 0 else 0.0
    for i in range(0, len(lines), chunk):
        if server.should_exit:
            return
        try:
            svc.ingest(lines[i : i + chunk])
        except RuntimeError:  # the engine stopped: the server is going down
            return
        time.sleep(pause)
    logger.info("fed %d lines", len(lines))


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now (tests, benchmarks)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
