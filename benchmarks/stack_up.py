"""Time to bring the local stack up (`make stack-up`), target 60 s, and down.

    uv run python benchmarks/stack_up.py [--repeats 3]

Each repeat starts from nothing (a new state folder, a free port): Prefect server on
SQLite, work pools, crash-detection automation, deployments, one worker per pool. Prints
the median beside the target and, as a reference measured in the same run, how long the
bare `prefect server start` takes to answer its health check.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from deployments.stack import Stack, down, up


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_server(home: Path) -> float:
    stack = Stack(home=home, port=_port())
    home.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(stack.port)], env=stack.env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"prefect server exited with {server.returncode}")
            try:
                if httpx.get(f"{stack.api_url}/health", timeout=2).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    ups, downs, bare = [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            bare.append(bare_server(Path(tmp) / "bare"))
            stack = Stack(home=Path(tmp) / "stack", port=_port())
            started = time.perf_counter()
            up(stack)
            ups.append(time.perf_counter() - started)
            started = time.perf_counter()
            down(stack.home)
            downs.append(time.perf_counter() - started)
    print(f"median of {args.repeats} fresh starts")
    print(f"stack up (server, pools, automation, deployments, 2 workers): "
          f"{statistics.median(ups):5.1f} s   target <= 60 s")  # fmt: skip
    print(f"reference, bare `prefect server start` to healthy:          "
          f"{statistics.median(bare):5.1f} s")  # fmt: skip
    print(f"stack down:                                                  "
          f"{statistics.median(downs):5.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
