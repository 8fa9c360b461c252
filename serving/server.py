"""Run the prediction service under uvicorn (``lstm-pipeline serve``).

Two things uvicorn does not do by itself are added here: a connection must send its
request line and headers within ``header_timeout_seconds`` (an idle or trickling client is
cut off, so it cannot hold a place for ever), and the access log never shows a query
string or a path that is not the service's own (a key sent there by mistake must not
reach a log).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

from serving.config import API_KEY_ENV, ServingConfig

log = logging.getLogger(__name__)


def serve(registry_root: Path, config: ServingConfig, log_level: str = "info") -> None:
    """Serve the champion of ``registry_root`` until SIGINT/SIGTERM (in-flight requests end)."""
    import uvicorn

    from serving.app import create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("uvicorn.access").addFilter(_without_query)
    api_key = os.environ.get(API_KEY_ENV) or None
    log.info(
        "serving the champion of %s with the %s backend; API key %s",
        registry_root,
        config.backend,
        f"required (from ${API_KEY_ENV})" if api_key else f"not required (${API_KEY_ENV} unset)",
    )
    app = create_app(registry_root, config, api_key)
    _allow_open_files(config.max_connections + 64)  # the rest: model files, logs, the loop
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        http=guarded_protocol(config.header_timeout_seconds, config.max_connections),
        timeout_keep_alive=5,
        timeout_graceful_shutdown=30,
        log_level=log_level,
    )


def guarded_protocol(seconds: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete
    ``seconds`` after its first byte (or after it opened), and refusing connections past
    ``max_connections`` at once, before they cost a request (uvicorn's own limit would also
    count idle connections against requests and answer the probes with plain text)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedProtocol(H11Protocol):
        _timer: asyncio.TimerHandle | None = None
        _cycle: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                _refused_connections.note(self.logger, max_connections)
                transport.close()
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._timer is None and (self.cycle is None or self.cycle.response_complete):
                self._arm()  # the first byte of the next request on a kept-alive connection
            super().data_received(data)

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not self._cycle:  # a new request's headers are complete
                self._cycle = self.cycle
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._timer = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _too_slow(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                self.logger.warning(
                    "closed a connection that sent no complete request headers in %g s", seconds
                )
                self.transport.close()

    return GuardedProtocol


class _Throttled:
    """Logs refused connections at most once every ``every`` seconds, with the count."""

    def __init__(self, every: float = 10.0) -> None:
        self.every, self.count, self.last = every, 0, 0.0

    def note(self, logger: logging.Logger, limit: int) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.last >= self.every:
            logger.warning("refused %d connection(s) past max_connections (%d)", self.count, limit)
            self.count, self.last = 0, now


_refused_connections = _Throttled()


def _allow_open_files(wanted: int) -> None:
    """Raise this process's soft limit on open files towards ``wanted`` (up to the hard
    limit), so ``max_connections`` is reached before the system refuses sockets."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning("open files are limited to %d: fewer than max_connections + 64", target)


LOGGED_PATHS = frozenset((
    "/v1/predict", "/v1/model", "/healthz", "/readyz", "/docs", "/redoc", "/openapi.json",
    *(f"/static-offline-docs/{asset}" for asset in (
        "swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")),
))  # fmt: skip


def _without_query(record: logging.LogRecord) -> bool:
    """Drop the query string from uvicorn's access log line (its third argument), and any
    path that is not the service's own: a key pasted into a URL must not reach the log."""
    args = record.args
    if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
        path = args[2].split("?", 1)[0]
        if path not in LOGGED_PATHS:
            path = "<another path>"
        record.args = (*args[:2], path, *args[3:])
    return True
