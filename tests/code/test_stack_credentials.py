"""The stack's credentials: where they come from, where they go, and the clear refusal of
each wrong setting (the running server's side is tested in tests/system/test_stack.py)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from deployments.stack import (
    API_KEY_ENV,
    AUTH_ENV,
    SERVER_AUTH_ENV,
    Stack,
    StackError,
    credentials,
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
        ({AUTH_ENV: SECRET, API_KEY_ENV: "pnu_x"}, f"{API_KEY_ENV} is set"),
    ],
)
def test_a_wrong_setting_is_named_and_its_value_never_shown(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(StackError, match=message) as raised:
        credentials(environ)
    assert "horse" not in str(raised.value) and "other" not in str(raised.value)


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
    assert public.env()["PREFECT_API_URL"] == "http://127.0.0.1:4300/api"  # its own processes


def test_a_server_open_to_the_network_needs_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(AUTH_ENV, raising=False)
    monkeypatch.delenv(SERVER_AUTH_ENV, raising=False)
    with pytest.raises(StackError, match=f"listen on 0.0.0.0.*set {AUTH_ENV}"):
        up(Stack(home=tmp_path, port=1, host="0.0.0.0"))
    assert list(tmp_path.iterdir()) == []  # nothing was started
