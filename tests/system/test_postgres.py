"""The multi-machine setup's server half: Prefect server on PostgreSQL, a worker runs a
deployment. PostgreSQL is Debian's package, started here on loopback."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from deployments.stack import Stack, down, up
from lstm_model.config import WORKSPACE_ENV
from tests.helpers.stack import (
    QUICK_WORKERS,
    TERMINAL,
    api,
    free_port,
    inbox_with,
    run_from_ui,
    wait_for,
)


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    assert found[-1], (
        f"PostgreSQL's {name} is needed (Debian package postgresql; .ci/run installs it)"
    )
    return found[-1]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (run as the postgres user under root)."""
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="pg-"))
    if as_user:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True)  # noqa: E731
    run(_postgres_bin("initdb"), "-D", str(data / "db"), "-U", "prefect", "--auth=trust")
    run(_postgres_bin("pg_ctl"), "-D", str(data / "db"), "-l", str(data / "log"), "-w",
        "-o", f"-h 127.0.0.1 -p {port} -k {data}", "start")  # fmt: skip
    try:
        run(
            _postgres_bin("createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "prefect",
            "prefect",
        )
        yield f"postgresql+asyncpg://prefect@127.0.0.1:{port}/prefect"
    finally:
        run(_postgres_bin("pg_ctl"), "-D", str(data / "db"), "-m", "fast", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_server_on_postgres_completes_a_deployment_run(  # type: ignore[no-untyped-def]
    postgres_url: str, registry_with_champion, tmp_path: Path
) -> None:
    stack = Stack(home=tmp_path / "stack", port=free_port(), database_url=postgres_url)
    # the watcher's inbox
    with mock.patch.dict(os.environ, {WORKSPACE_ENV: str(tmp_path), **QUICK_WORKERS}):
        up(stack)
    try:
        inbox_with(tmp_path, {"reviews.txt": ["Loved it.", "Hated it."]})
        response = run_from_ui(stack, "nightly-scoring", {
            "workspace": str(tmp_path), "registry": str(registry_with_champion),
            "config": {"settle_seconds": 0},
        })  # fmt: skip
        assert response.status_code == 201, response.text
        run = wait_for(stack, response.json()["id"], TERMINAL, timeout=240)
        assert run["state"]["type"] == "COMPLETED", run["state"]
        port = postgres_url.rsplit(":", 1)[1].split("/")[0]
        rows = subprocess.run(
            [_postgres_bin("psql"), "-h", "127.0.0.1", "-p", port, "-U", "prefect", "-d",
             "prefect", "-tAc", f"SELECT count(*) FROM flow_run WHERE id = '{run['id']}'"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert rows == "1"  # the run lives in PostgreSQL, not in a SQLite file
        assert not list((tmp_path / "stack" / "prefect").glob("*.db"))
        assert api(stack, "GET", "/health").status_code == 200
    finally:
        down(stack.home)
