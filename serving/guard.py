"""An ASGI middleware that checks a request before the app reads it.

In order: the API key (when one is set, and only from its header), a place among the
``max_concurrency`` requests handled at once (the health probes never need one, so they
answer however busy the service is), and, for ``POST /v1/predict`` only, the declared body
size and the body itself read up to ``max_body_bytes`` and no further within
``body_timeout`` seconds. It runs before FastAPI parses anything, so a client without the
key holds no place, and one with a huge or slow body costs at most ``max_body_bytes`` of
memory and never reaches the model. Its errors echo nothing the client sent.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_KEY_HEADER = "X-API-Key"
PROBES = ("/healthz", "/readyz")
BODY_PATHS = ("/v1/predict",)
"""The only requests whose body is read; any other answers without waiting for one."""
MAX_MESSAGE_CHARS = 300


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        api_key: str | None,
        max_concurrency: int = 64,
        body_timeout: float = 30.0,
        protected: str = "/v1/",
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._key = api_key.encode() if api_key else None
        self.max_concurrency = max_concurrency
        self.body_timeout = body_timeout
        self.protected = protected
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        # The key first: a client without it never takes a place or sends a byte of body.
        given = self._given_key(scope)
        if self._key and scope["path"].startswith(self.protected) and not self._valid(given):
            await refuse(
                send,
                401,
                "unauthorized",
                f"{'wrong' if given else 'missing'} API key: send it in the "
                f"{API_KEY_HEADER} header",
                [],
                [(b"www-authenticate", f'ApiKey header="{API_KEY_HEADER}"'.encode())],
            )
            return
        if self.in_flight >= self.max_concurrency:
            await refuse(
                send,
                503,
                "busy",
                f"{self.max_concurrency} requests are being handled: try again shortly",
                [],
                [(b"retry-after", b"1")],
            )
            return
        self.in_flight += 1
        try:
            if scope["method"] == "POST" and scope["path"] in BODY_PATHS:
                await self._with_body(scope, receive, send)
            else:  # nothing else reads a body: the app answers (404, 405) without waiting
                await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    @staticmethod
    def _given_key(scope: Scope) -> bytes:
        header = API_KEY_HEADER.lower().encode()
        return next((value for name, value in scope["headers"] if name.lower() == header), b"")

    def _valid(self, given: bytes) -> bool:
        return self._key is not None and hmac.compare_digest(given, self._key)

    async def _with_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._too_large(send, "the declared length")  # its text is never echoed
            return
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self.body_timeout) as timer:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client went away; nothing to answer
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_bytes:
                    await self._too_large(send, "the body")
                    return
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        if timer.cancelled_caught:
            await refuse(
                send,
                408,
                "body_timeout",
                f"the request body did not arrive within {self.body_timeout:g} s",
                ["body"],
                [(b"connection", b"close")],
            )
            return
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, send: Send, what: str) -> None:
        await refuse(
            send,
            413,
            "body_too_large",
            f"{what} is over the limit of {self.max_body_bytes} bytes",
            ["body"],
            # The rest of the body is never read: the connection cannot be reused.
            [(b"connection", b"close")],
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: disconnect notices

    return replay


def error_body(kind: str, loc: list[str | int], message: str) -> dict[str, Any]:
    """One entry of the error shape, its message capped at ``MAX_MESSAGE_CHARS``."""
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return {"type": kind, "loc": loc, "msg": message}


async def refuse(
    send: Send,
    status: int,
    kind: str,
    message: str,
    loc: list[str | int],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer with the service's error shape, without involving the app."""
    body = json.dumps({"detail": [error_body(kind, loc, message)]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
