"""An ASGI middleware that checks a request before the app reads it.

In order: the API key (when one is set), the declared body size, the body itself read up
to ``max_body_bytes`` and no further, and that a JSON body is valid UTF-8. It runs before
FastAPI parses anything, so a client without the key, or with a huge or undecodable body,
costs at most ``max_body_bytes`` of memory and never reaches the model.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_KEY_HEADER = "X-API-Key"


class RequestGuard:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, api_key: str | None, protected: str = "/v1/"
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._key = api_key.encode() if api_key else None
        self.protected = protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
            await self._too_large(send, declared.decode("latin-1"))
            return
        chunks: list[bytes] = []
        size = 0
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


async def refuse(
    send: Send,
    status: int,
    kind: str,
    message: str,
    loc: list[str | int],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer with the service's error shape, without involving the app."""
    body = json.dumps({"detail": [{"type": kind, "loc": loc, "msg": message}]}).encode()
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
