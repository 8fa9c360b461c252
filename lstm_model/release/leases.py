"""Leases: which processes are using which registry version, so that retention never
frees a model that a service or a scoring run has loaded.

A process that loads a version holds a lease on it: one small file under
``<registry>/leases/`` naming the version, the host, the process id and the process's start
time. A lease lasts as long as its process (a dead process's lease is stale and ignored,
and retention deletes it; one from another host, whose process cannot be checked, counts
for ``FOREIGN_LEASE_SECONDS`` after it was taken), or until the process lets it go (the
service does when it switches to another champion). Leases are taken and judged under
the registry's lock, so a version is never freed between a process's check and its lease.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import atomic_write_json
from lstm_model.release.layout import LEASES_DIR

FOREIGN_LEASE_SECONDS = 7 * 24 * 3600.0
"""A lease from another host cannot be checked: it counts as live for this long."""


class Lease(BaseModel):
    """One process's use of one version."""

    model_config = ConfigDict(frozen=True)

    version: int
    host: str
    pid: int
    started: float
    """The process's start time (seconds since the epoch): a reused pid is another process."""
    holder: str
    at: str

    def describe(self) -> str:
        """Who holds it, for messages."""
        return f"{self.holder} (pid {self.pid} on {self.host}, since {self.at})"


def take(registry_root: Path, version: int, holder: str) -> Path:
    """Write this process's lease on ``version`` (the caller holds the registry's lock)."""
    me = psutil.Process()
    lease = Lease(
        version=version, host=platform.node(), pid=me.pid, started=me.create_time(),
        holder=holder, at=datetime.now(UTC).isoformat(),
    )  # fmt: skip
    path = _path(registry_root, version, me.pid)
    atomic_write_json(path, lease.model_dump())
    return path


def give_back(registry_root: Path, version: int) -> None:
    """Remove this process's lease on ``version``, if it has one."""
    with contextlib.suppress(FileNotFoundError):
        _path(registry_root, version, os.getpid()).unlink()


def leases(registry_root: Path) -> tuple[list[Lease], list[Path]]:
    """(live leases, files of stale or unreadable ones)."""
    folder = registry_root / LEASES_DIR
    live, stale = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            lease = Lease(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            stale.append(path)
            continue
        if _alive(lease, path):
            live.append(lease)
        else:
            stale.append(path)
    return live, stale


def _alive(lease: Lease, path: Path) -> bool:
    if lease.host != platform.node():
        try:
            return time.time() - path.stat().st_mtime < FOREIGN_LEASE_SECONDS
        except OSError:  # given back meanwhile
            return False
    try:
        return abs(psutil.Process(lease.pid).create_time() - lease.started) < 1.0
    except psutil.Error:
        return False


def _path(registry_root: Path, version: int, pid: int) -> Path:
    return registry_root / LEASES_DIR / f"v{version}.{platform.node()}.{pid}.json"
