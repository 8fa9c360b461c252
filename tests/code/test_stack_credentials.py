"""The stack's credentials: where they come from, where they go, and the clear refusal of
each wrong setting (the running server's side is tested in tests/system/test_stack.py)."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest

from deployments import stack as stack_module
from deployments.stack import (
    AUTH_ENV,
    SERVER_AUTH_ENV,
    Stack,
    StackError,
    _ensure,
    _renew_clients,
    credentials,
    down,
    status,
    up,
)

SECRET = "team:correct-horse"


def test_one_pair_serves_the_server_and_every_client() -> None:
    assert credentials({}) is None
    assert credentials({AUTH_ENV: ""}) is None  # set but empty: none
    assert credentials({AUTH_ENV: SECRET}) == SECRET
    assert credentials({SERVER_AUTH_ENV: SECRET}) == SECRET
    assert credentials({AUTH_ENV: SECRET, SERVER_AUTH_ENV: SECRET}) == SECRET


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({AUTH_ENV: "team"}, f"{AUTH_ENV} must be user:password"),
        ({AUTH_ENV: ":correct-horse"}, f"{AUTH_ENV} must be user:password"),
        ({AUTH_ENV: "team:"}, f"{AUTH_ENV} must be user:password"),
        ({SERVER_AUTH_ENV: "team: "}, f"{SERVER_AUTH_ENV} must be user:password"),
        ({AUTH_ENV: SECRET, SERVER_AUTH_ENV: "team:other"}, f"{AUTH_ENV} and {SERVER_AUTH_ENV}"),
    ],
)
def test_a_wrong_setting_is_named_and_its_value_never_shown(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(StackError, match=message) as raised:
        credentials(environ)
    assert "horse" not in str(raised.value) and "other" not in str(raised.value)


def test_a_dotenv_file_counts_as_prefect_reads_it_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(AUTH_ENV, raising=False)
    monkeypatch.delenv(SERVER_AUTH_ENV, raising=False)
    dotenv = tmp_path / ".env"
    monkeypatch.setattr(stack_module, "DOTENV", dotenv)
    assert credentials() is None  # no file
    dotenv.write_text(f"{AUTH_ENV}='{SECRET}'\n")
    assert credentials() == SECRET
    assert Stack(home=tmp_path).env()[AUTH_ENV] == SECRET
    monkeypatch.setenv(AUTH_ENV, "team:from-the-environment")
    assert credentials() == "team:from-the-environment"


def test_the_processes_get_the_client_variable_and_the_server_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SERVER_AUTH_ENV, SECRET)
    monkeypatch.delenv(AUTH_ENV, raising=False)
    stack = Stack(home=Path("x"), port=4300)
    env = stack.env()
    assert env[AUTH_ENV] == SECRET and SERVER_AUTH_ENV not in env  # up adds it to the server's
    token = base64.b64encode(SECRET.encode()).decode()
    assert stack.headers() == {"Authorization": f"Basic {token}"}
    monkeypatch.delenv(SERVER_AUTH_ENV)
    assert stack.headers() == {} and AUTH_ENV not in stack.env()


def test_the_ui_reaches_the_api_at_the_public_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTH_ENV, raising=False)
    monkeypatch.delenv(SERVER_AUTH_ENV, raising=False)
    local = Stack(home=Path("x"), port=4300)
    assert local.env()["PREFECT_UI_API_URL"] == "http://127.0.0.1:4300/api"
    public = Stack(home=Path("x"), port=4300, host="0.0.0.0", public_url="https://p.example/")
    assert public.env()["PREFECT_UI_API_URL"] == "https://p.example/api"
    assert public.ui_url == "https://p.example"
    assert public.env()["PREFECT_API_URL"] == "http://127.0.0.1:4300/api"  # its own processes
    one = Stack(home=Path("x"), port=4300, host="10.1.2.3")  # one interface: not loopback
    assert one.api_url == "http://10.1.2.3:4300/api" == one.ui_api_url
    assert Stack(home=Path("x"), port=4300, host="::1").api_url == "http://[::1]:4300/api"
    with pytest.raises(StackError, match=r"--host :: listens on every address.*--public-url"):
        Stack(home=Path("x"), host="::")


def test_a_server_open_to_the_network_needs_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(AUTH_ENV, raising=False)
    monkeypatch.delenv(SERVER_AUTH_ENV, raising=False)
    public = Stack(home=tmp_path, port=1, host="0.0.0.0", public_url="https://p.example")
    with pytest.raises(StackError, match=f"listen on 0.0.0.0.*set {AUTH_ENV}"):
        up(public)
    assert list(tmp_path.iterdir()) == []  # nothing was started


def test_processes_started_with_other_credentials_are_restarted(tmp_path: Path) -> None:
    """The server alone restarted with a new password: the workers and the watcher, which
    still send the old one, are stopped so that up starts them again with the new one."""
    stack = Stack(home=tmp_path, port=1)
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    try:
        _ensure(stack, "worker-cpu", sleeper)
        _ensure(stack, "server", sleeper)
        _renew_clients(stack, SECRET)  # the first up: recorded
        record = (tmp_path / "credentials.json").read_text()
        assert "horse" not in record and (tmp_path / "credentials.json").stat().st_mode & 0o077 == 0
        _renew_clients(stack, SECRET)  # the same again: nothing stops
        assert status(tmp_path) == {"server": True, "worker-cpu": True}
        _renew_clients(stack, "team:new-password")
        assert status(tmp_path) == {"server": True}  # the server is checked by its answers
    finally:
        down(tmp_path, timeout=10)
