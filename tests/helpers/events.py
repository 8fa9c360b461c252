"""Reading what a real Prefect server holds: the events it received, and the messages its
alert automations sent to a loopback webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


def server_events(
    api_url: str, name: str, keep: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> list[dict[str, Any]]:
    """The events called ``name`` that ``keep`` accepts, once there is at least one (they
    reach the server a moment after they are emitted); [] after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(
            f"{api_url}/events/filter",
            json={"filter": {"event": {"name": [name]}}, "limit": 50},  # newest first
            timeout=30,
        )
        response.raise_for_status()
        found = response.json()["events"]
        kept = [e for e in found if keep(e)]
        if kept or time.monotonic() > deadline:
            return kept
        time.sleep(0.5)


def related_ids(event: dict[str, Any]) -> set[str]:
    """The ids of the resources an event is related to (its flow run, flow, ...)."""
    return {r["prefect.resource.id"] for r in event.get("related", [])}


class WebhookReceiver:
    """A loopback HTTP server that keeps the JSON body of every POST it receives."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(
        self, keep: Callable[[dict[str, Any]], bool], timeout: float = 90, settle: float = 5
    ) -> list[dict[str, Any]]:
        """The messages ``keep`` accepts, once there is one and ``settle`` seconds passed
        without another (so a duplicate would be seen); [] after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(keep(m) for m in self.messages):
                time.sleep(settle)
                break
            time.sleep(0.5)
        return [m for m in self.messages if keep(m)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
