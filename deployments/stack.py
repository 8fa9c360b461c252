"""The local stack, one command up and one down.

    python -m deployments.stack up   [--home artifacts/stack] [--port 4200] [--database-url URL]
                                     [--host 127.0.0.1] [--public-url URL]
                                     [--crash-after-seconds N]
    python -m deployments.stack down [--home artifacts/stack]
    python -m deployments.stack status [--home artifacts/stack]

``up`` starts a Prefect server bound to ``--host`` (127.0.0.1 by default; SQLite under
``<home>/prefect`` unless ``--database-url`` names PostgreSQL), waits for it to answer,
checks the credentials (below), creates the work pools, applies the deployments, starts one
process worker per pool and the inbox watcher (``deployments/inbox_events.py``), and prints
the UI address. Every process it starts is recorded in ``<home>/<name>.pid`` with its
command line; ``down`` stops exactly those (and nothing whose command line differs, should
the pid have been reused). Running ``up`` twice starts nothing new: live processes are
kept, pools and deployments are upserted.

With ``$PREFECT_API_AUTH_STRING`` set (``user:password``), the server is started with
Prefect's basic authentication and every process of the stack (workers, the inbox watcher,
the flow runs) uses the same credentials; the UI asks for them once per browser. They pass
through the environment only, never a command line, so ``ps`` does not show them. ``up``
fails with a message naming the variable when it is malformed, missing where the running
server needs it, refused by that server, or set while the running server has none; and
it refuses to bind any address but loopback without them.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from deployments.alerts import WEBHOOK_ENV
from deployments.specs import HEARTBEAT_SECONDS, WORK_POOLS, ZOMBIE_ENV, check_zombie_seconds

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOME = Path("artifacts/stack")
DEFAULT_PORT = 4200
HOST = "127.0.0.1"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WILDCARDS = {"0.0.0.0", "::"}
AUTH_ENV = "PREFECT_API_AUTH_STRING"
SERVER_AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"
# Prefect's settings read a .env file in the working folder, which for every process of the
# stack is the repository.
DOTENV = ROOT / ".env"
CREDENTIALS_RECORD = "credentials.json"


class StackError(RuntimeError):
    """A setting or state of the stack that its operator has to fix; the message says how."""


@dataclass(frozen=True)
class Stack:
    """Where the stack keeps its state and which address its server has."""

    home: Path
    port: int = DEFAULT_PORT
    database_url: str | None = None
    host: str = HOST
    """The address the server binds; any but loopback needs credentials, and every address
    (0.0.0.0, ::) needs ``public_url``."""
    public_url: str | None = None
    """The address browsers and other hosts reach the server at (None: ``http://<host>:<port>``);
    the UI sends its API calls there."""
    crash_after_seconds: int | None = None
    """Seconds without a heartbeat before a running flow run is marked Crashed (None:
    ``$LSTM_PIPELINE_CRASH_AFTER_SECONDS``, else 3 missed heartbeats); every ``up`` applies it."""
    alert_webhook: str | None = None
    """Where alerts go (None: ``$LSTM_PIPELINE_ALERT_WEBHOOK``, else no alerts); see
    ``deployments.alerts``."""

    def __post_init__(self) -> None:
        if self.crash_after_seconds is not None:
            check_zombie_seconds(self.crash_after_seconds)
        if self.host in WILDCARDS and not self.public_url:
            raise StackError(
                f"--host {self.host} listens on every address of this host: give "
                "--public-url, the address browsers reach the server at"
            )

    @property
    def local_url(self) -> str:
        """Where the stack's own processes reach the server, on this host."""
        host = HOST if self.host in WILDCARDS else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Where the stack's own processes reach the API."""
        return f"{self.local_url}/api"

    @property
    def ui_url(self) -> str:
        """Where a browser opens the UI."""
        return (self.public_url or self.local_url).rstrip("/")

    @property
    def ui_api_url(self) -> str:
        """Where the UI, in a browser on any host, sends its API calls."""
        return f"{self.ui_url}/api"

    def env(self) -> dict[str, str]:
        """Environment of every process of the stack (and of clients that talk to it)."""
        auth = credentials()
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home / "prefect"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_API_URL": self.ui_api_url,
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
        }
        if self.database_url:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = self.database_url
        if self.crash_after_seconds is not None:
            env[ZOMBIE_ENV] = str(self.crash_after_seconds)
        if self.alert_webhook is not None:
            env[WEBHOOK_ENV] = self.alert_webhook
        env.pop(SERVER_AUTH_ENV, None)  # the server's own, added to its environment alone
        if auth is not None:
            env[AUTH_ENV] = auth
        return env

    def headers(self) -> dict[str, str]:
        """The HTTP headers that authenticate a client of this stack's API (none without
        credentials)."""
        auth = credentials()
        if auth is None:
            return {}
        return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def credentials(environ: Mapping[str, str] | None = None) -> str | None:
    """The stack's ``user:password`` from ``$PREFECT_API_AUTH_STRING`` (or the server's
    ``$PREFECT_SERVER_API_AUTH_STRING``: one pair serves both), None when neither is set.

    ``environ`` defaults to this process's environment over the repository's ``.env``
    file, which Prefect reads too. Raises StackError, naming the variable and never
    echoing its value, when the value is not ``user:password`` or the two variables differ.
    """
    if environ is None:
        from dotenv import dotenv_values

        dotenv = {k: v for k, v in dotenv_values(DOTENV).items() if v is not None}
        environ = {**dotenv, **os.environ}
    client, server = environ.get(AUTH_ENV) or None, environ.get(SERVER_AUTH_ENV) or None
    if client and server and client != server:
        raise StackError(
            f"{AUTH_ENV} and {SERVER_AUTH_ENV} differ: the stack's server and its clients "
            f"share one user:password; set {AUTH_ENV} alone"
        )
    auth = client or server
    if auth is None:
        return None
    name = AUTH_ENV if client else SERVER_AUTH_ENV
    user, colon, password = auth.partition(":")
    if not (colon and user.strip() and password.strip()):
        raise StackError(f"{name} must be user:password: a user name, a colon and a password")
    return auth


def up(stack: Stack, timeout: float = 90) -> dict[str, int]:
    """Bring the stack up (idempotent); returns the pid of each of its processes."""
    stack.home.mkdir(parents=True, exist_ok=True)
    prefect = [sys.executable, "-m", "prefect"]
    server = [*prefect, "server", "start", "--host", stack.host, "--port", str(stack.port)]
    auth = credentials()
    if auth is None and stack.host not in LOOPBACK:
        raise StackError(
            f"the server would listen on {stack.host}, where anyone who reaches this host "
            f"could run flows: set {AUTH_ENV} to a user:password first (and put TLS in "
            "front of it: basic authentication sends the password in the clear)"
        )
    server_env = {} if auth is None else {SERVER_AUTH_ENV: auth}
    pids = {"server": _ensure(stack, "server", server, server_env)}
    _wait_healthy(stack, timeout)
    _check_credentials(stack, auth)
    _renew_clients(stack, auth)
    _run_apply(stack)
    for pool in WORK_POOLS:
        name = f"worker-{pool.name}"
        command = [*prefect, "worker", "start", "--pool", pool.name, "--type", "process",
                   "--name", f"{pool.name}-{os.uname().nodename}"]  # fmt: skip
        pids[name] = _ensure(stack, name, command)
    pids["inbox-events"] = _ensure(
        stack, "inbox-events", [sys.executable, "-m", "deployments.inbox_events"]
    )
    log.info("Prefect UI: %s", stack.ui_url)
    if auth is not None:
        log.info("the UI asks for the user:password in $%s", AUTH_ENV)
    return pids


def down(home: Path, timeout: float = 30) -> list[str]:
    """Stop every process that ``up`` started (workers first); returns their names."""
    stopped = []
    for pid_file in sorted(home.glob("*.pid"), key=lambda p: p.stem == "server"):
        record = json.loads(pid_file.read_text())
        if _alive(record):
            _stop(record["pid"], timeout)
            stopped.append(pid_file.stem)
        pid_file.unlink()
    return stopped


def status(home: Path) -> dict[str, bool]:
    """Each recorded process and whether it is still running."""
    return {p.stem: _alive(json.loads(p.read_text())) for p in sorted(home.glob("*.pid"))}


def _ensure(
    stack: Stack, name: str, command: list[str], extra_env: Mapping[str, str] | None = None
) -> int:
    """Start ``command`` in its own session unless the recorded one is still running."""
    pid_file = stack.home / f"{name}.pid"
    if pid_file.exists():
        record = json.loads(pid_file.read_text())
        if _alive(record):
            log.info("%s already running (pid %d)", name, record["pid"])
            return int(record["pid"])
    log_path = stack.home / f"{name}.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**stack.env(), **(extra_env or {})}, stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    record = {"pid": process.pid, "cmdline": command}
    # Popen returns while the kernel may still be swapping in the new program, and until
    # then /proc/<pid>/cmdline reads empty: wait, so that status() right after up() holds.
    deadline = time.monotonic() + 10
    while not _alive(record) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    pid_file.write_text(json.dumps(record) + "\n")
    log.info("%s started (pid %d), log %s", name, process.pid, log_path)
    return process.pid


def _wait_healthy(stack: Stack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{stack.api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise StackError(
                f"Prefect server at {stack.api_url} did not answer within {timeout:.0f} s; "
                f"see {stack.home / 'server.log'}"
            )
        time.sleep(0.5)


def _check_credentials(stack: Stack, auth: str | None) -> None:
    """Fail, naming the variable, unless the running server takes exactly these credentials
    (a server left running from an earlier ``up`` may have others, or none)."""
    # Any route but the health probes is behind the server's authentication.
    url = f"{stack.api_url}/admin/version"
    answer = httpx.get(url, headers=stack.headers(), timeout=10)
    if answer.status_code == 401 and auth is None:
        raise StackError(
            f"the Prefect server at {stack.ui_url} requires authentication: set {AUTH_ENV} "
            "to the user:password it was started with"
        )
    if answer.status_code == 401:
        raise StackError(
            f"the Prefect server at {stack.ui_url} refused the credentials in {AUTH_ENV}: set "
            "it to the user:password the server was started with, or run `down` and `up` "
            "to start the server with the new one"
        )
    if answer.is_error:
        raise StackError(
            f"the Prefect server at {stack.ui_url} answered {answer.status_code} to "
            f"{url}; see {stack.home / 'server.log'}"
        )
    if auth is not None and httpx.get(url, timeout=10).status_code != 401:
        raise StackError(
            f"{AUTH_ENV} is set, but the Prefect server at {stack.ui_url} was started "
            "without authentication: run `down`, then `up`, to start it with authentication"
        )


def _renew_clients(stack: Stack, auth: str | None) -> None:
    """Stop the workers and the watcher that run with other credentials than ``auth`` (the
    server alone was restarted with new ones), so that ``up`` starts them again with these.

    What the processes were started with is kept as a salted hash, readable by the stack's
    user alone."""
    record = stack.home / CREDENTIALS_RECORD
    if record.exists():
        kept = json.loads(record.read_text())
        if kept["sha256"] == _digest(auth, bytes.fromhex(kept["salt"])):
            return
        for pid_file in stack.home.glob("*.pid"):
            entry = json.loads(pid_file.read_text())
            if pid_file.stem != "server" and _alive(entry):
                log.info("%s runs with other credentials: restarting it", pid_file.stem)
                _stop(entry["pid"], timeout=30)
                pid_file.unlink()
    salt = os.urandom(16)
    written = record.with_suffix(".tmp")
    written.unlink(missing_ok=True)
    written.touch(mode=0o600)
    written.write_text(json.dumps({"salt": salt.hex(), "sha256": _digest(auth, salt)}) + "\n")
    written.replace(record)


def _digest(auth: str | None, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", (auth or "").encode(), salt, 100_000).hex()


def _run_apply(stack: Stack) -> None:
    """Apply pools and deployments in a child process that talks to this stack's server
    (the Prefect settings of this process may point elsewhere)."""
    subprocess.run(
        [sys.executable, "-m", "deployments.apply", "--root", str(ROOT)],
        cwd=ROOT, env=stack.env(), check=True,
    )  # fmt: skip


def _alive(record: dict[str, object]) -> bool:
    """Whether the recorded process runs, with the recorded command line."""
    _reap(int(record["pid"]))  # type: ignore[call-overload]
    try:
        raw = Path(f"/proc/{record['pid']}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return raw.split(b"\0")[:-1] == [a.encode() for a in record["cmdline"]]  # type: ignore[union-attr]


def _stop(pid: int, timeout: float) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _group_running(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status of a process this one started (else it stays a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _group_running(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state != "Z":
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description="The local Prefect stack: up, down, status.")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="state folder")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--host",
        default=HOST,
        help=f"address the server binds (default {HOST}); any other needs ${AUTH_ENV}",
    )
    parser.add_argument(
        "--public-url",
        default=None,
        help="address browsers and other hosts reach the server at, e.g. "
        "https://prefect.example.org (default: http://HOST:PORT)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL"),
        help="e.g. postgresql+asyncpg://user:password@host:5432/prefect (default: SQLite)",
    )
    parser.add_argument(
        "--crash-after-seconds",
        type=int,
        default=None,
        help=f"mark a flow run Crashed after this long without a heartbeat (default: "
        f"${ZOMBIE_ENV}, else {3 * HEARTBEAT_SECONDS}; more than {HEARTBEAT_SECONDS})",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    home = args.home.resolve()
    if args.command == "up":
        started = time.perf_counter()
        try:
            stack = Stack(
                home=home,
                port=args.port,
                database_url=args.database_url,
                host=args.host,
                public_url=args.public_url,
                crash_after_seconds=args.crash_after_seconds,
            )
            up(stack)
        except StackError as exc:
            log.error("error: %s", exc)
            raise SystemExit(1) from None
        log.info("stack up in %.1f s; open %s", time.perf_counter() - started, stack.ui_url)
    elif args.command == "down":
        log.info("stopped: %s", ", ".join(down(home)) or "nothing was running")
    else:
        for name, alive in status(home).items():
            log.info("%-12s %s", name, "running" if alive else "stopped")


if __name__ == "__main__":
    main()
