"""Talking to a running stack as the UI does, and waiting for its runs."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx

from deployments.specs import DEPLOYMENTS
from deployments.stack import Stack

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# Workers ask for scheduled runs every 2 s instead of 10: a run starts sooner.
QUICK_WORKERS = {"PREFECT_WORKER_QUERY_SECONDS": "2"}


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(stack: Stack, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request to the stack's REST API with the stack's credentials, sent again (as
    Prefect's own client does) while the server answers 503: its SQLite database was busy,
    nothing was done."""
    kwargs["headers"] = {**stack.headers(), **kwargs.get("headers", {})}
    for attempt in range(6):
        response = httpx.request(method, f"{stack.api_url}{path}", timeout=30, **kwargs)
        if response.status_code != 503:
            break
        time.sleep(0.5 * 2**attempt)
    return response


def deployment(stack: Stack, name: str) -> dict[str, Any]:
    """The deployment called ``name``, as the API returns it."""
    flow = next(s.entrypoint.split(":")[1] for s in DEPLOYMENTS if s.name == name)
    flow = {"retrain": "retrain", "score_inbox": "score-inbox", "retention": "retention"}[flow]
    response = api(stack, "GET", f"/deployments/name/{flow}/{name}")
    response.raise_for_status()
    return response.json()


def run_from_ui(stack: Stack, name: str, parameters: dict[str, Any]) -> httpx.Response:
    """What the UI's "Run" (custom parameters) button sends."""
    return api(
        stack, "POST", f"/deployments/{deployment(stack, name)['id']}/create_flow_run",
        json={"parameters": parameters, "state": {"type": "SCHEDULED"}},
    )  # fmt: skip


def wait_for(stack: Stack, run_id: str, states: set[str], timeout: float) -> dict[str, Any]:
    """The flow run once its state is one of ``states``; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        run = api(stack, "GET", f"/flow_runs/{run_id}").json()
        if run["state"]["type"] in states:
            return run
        assert time.monotonic() < deadline, f"run still {run['state']['type']} after {timeout} s"
        time.sleep(1)


def inbox_with(root: Path, files: dict[str, list[str]]) -> None:
    """Text files of these lines in the scoring inbox under ``root``."""
    inbox = root / "scoring" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (inbox / name).write_text("\n".join(lines) + "\n")
