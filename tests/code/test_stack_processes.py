"""The stack's process records: a process is seen running as soon as up() started it."""

from __future__ import annotations

import sys
from pathlib import Path

from deployments.stack import Stack, _ensure, down, status


def test_a_started_process_is_running_at_once(tmp_path: Path) -> None:
    """Popen can return before /proc/<pid>/cmdline shows the new program (measured: 9 of
    30 starts read it empty), which made status() report a fresh process as dead."""
    stack = Stack(home=tmp_path, port=1)
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    try:
        seen = []
        for i in range(30):
            _ensure(stack, f"p{i}", sleeper)
            seen.append(status(tmp_path)[f"p{i}"])  # right after the start, as up() returns
        assert seen == [True] * 30
    finally:
        assert len(down(tmp_path, timeout=10)) == 30
    assert status(tmp_path) == {}
