"""An ASGI middleware that checks a request before the app reads it.

In order: the API key (when one is set, and only from its header), a place among the
``max_concurrency`` requests handled at once (the health probes never need one, so they
answer however busy the service is), the declared body size, the body itself read up to
``max_body_bytes`` and no further within ``body_timeout`` seconds, and that a JSON body is
valid UTF-8. It runs before FastAPI parses anything, so a client without the key, or with
a huge, slow or undecodable body, costs at most ``max_body_bytes`` of memory and never
reaches the model. Its errors echo nothing the client sent.
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
            await self._guard(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name.lower(): value for name, value in scope["headers"]}
        if self._key and scope["path"].startswith(self.protected):
            given = headers.get(API_KEY_HEADER.lower().encode(), b"")
            if not hmac.compare_digest(given, self._key):
                what = "wrong" if given else "missing"
                await refuse(
                    send,
                    401,
                    "unauthorized",
                    f"{what} API key: send it in the {API_KEY_HEADER} header",
                    [],
                    [(b"www-authenticate", f'ApiKey header="{API_KEY_HEADER}"'.encode())],
                )
                return
        if scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            # The header's own text is never echoed: it could be anything up to 16 KB.
            size = declared.decode() if declared.isdigit() and len(declared) <= 20 else "?"
            await self._too_large(send, size)
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
                    await self._too_large(send, f"more than {self.max_body_bytes}")
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
        body = b"".join(chunks)
        if b"json" in headers.get(b"content-type", b""):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as error:
                await refuse(
                    send,
                    422,
                    "utf8_invalid",
                    f"the request body is not valid UTF-8: byte 0x{body[error.start]:02x} at "
                    f"offset {error.start} ({error.reason})",
                    ["body", error.start],
                )
                return
        await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, send: Send, size: str) -> None:
        await refuse(
            send,
            413,
            "body_too_large",
            f"the request body ({size} bytes) is over the limit of {self.max_body_bytes} bytes",
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
