"""The stack's process records (a process is seen running as soon as up() started it) and
its crash-detection setting."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from deployments.specs import HEARTBEAT_SECONDS, ZOMBIE_ENV, zombie_seconds
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


def test_the_crash_detection_delay_is_the_stack_s_own_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``up`` hands to ``deployments.apply`` (the automation's ``within``), and that a
    delay no longer than a heartbeat's period, which would crash live runs, is refused."""
    monkeypatch.setenv(ZOMBIE_ENV, "75")
    assert zombie_seconds() == 75
    assert Stack(home=Path("x")).env()[ZOMBIE_ENV] == "75"  # unset: the environment's
    stack = Stack(home=Path("x"), crash_after_seconds=HEARTBEAT_SECONDS + 10)
    monkeypatch.setattr(os, "environ", stack.env())
    assert zombie_seconds() == HEARTBEAT_SECONDS + 10
    monkeypatch.undo()
    monkeypatch.delenv(ZOMBIE_ENV, raising=False)
    assert zombie_seconds() == 3 * HEARTBEAT_SECONDS
    with pytest.raises(ValueError, match="heartbeats come every 30 s"):
        Stack(home=Path("x"), crash_after_seconds=HEARTBEAT_SECONDS)
    monkeypatch.setenv(ZOMBIE_ENV, "5")
    with pytest.raises(ValueError, match=f"{ZOMBIE_ENV}=5"):
        zombie_seconds()
