"""The service's guard and error shapes, in-process: keys only from their header, bodies
read only where one is expected, every error in the documented shape, public reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.config import ServingConfig
from serving.slot import public

KEY = "k-guard-test-key"


@pytest.fixture
def app(tmp_path: Path):  # type: ignore[no-untyped-def]
    return create_app(tmp_path / "registry", ServingConfig(), api_key=KEY)


def test_a_key_anywhere_but_its_header_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    body = {"text": "a fine film"}
    with TestClient(app) as bare:  # no default key header at all
        attempts = [
            bare.post("/v1/predict", json=body, params={"api_key": KEY}),
            bare.post("/v1/predict", json=body, headers={"Authorization": f"Bearer {KEY}"}),
            bare.post("/v1/predict", json=body, cookies={"X-API-Key": KEY}),
            bare.post("/v1/predict", json={**body, "api_key": KEY}),
        ]
        keyed = bare.post("/v1/predict", json=body, headers={"X-API-Key": KEY})
    assert [r.status_code for r in attempts] == [401] * 4
    assert all(KEY not in r.text for r in attempts)
    assert keyed.status_code == 503  # accepted; only the model is missing


def test_a_repeated_field_is_refused_at_once(app) -> None:  # type: ignore[no-untyped-def]
    body = b'{"text": "a",' + b'"text": "a",' * 300_000 + b'"text": "a"}'
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        response = client.post(
            "/v1/predict", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"type": "duplicate_field", "loc": ["body"], "msg": "a field appears more than once"}
    ]


def test_unknown_paths_and_methods_answer_in_the_error_shape(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        missing = client.post("/v1/nothing-here", content=b"x" * 100)
        method = client.get("/v1/predict")
        root = client.get("/secret-looking-path")
    assert missing.status_code == 404 and missing.json()["detail"][0]["type"] == "not_found"
    assert method.status_code == 405
    assert method.json()["detail"][0]["type"] == "method_not_allowed"
    assert root.status_code == 404 and "secret" not in root.text


def test_errors_never_echo_the_declared_length_or_a_body_byte(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        declared = client.post(
            "/v1/predict",
            content=b"{}",
            headers={"Content-Type": "application/json", "Content-Length": "98765432101"},
        )
        bad_utf8 = client.post(
            "/v1/predict",
            content=b'{"text": "caf\xe9"}',
            headers={"Content-Type": "application/json"},
        )
    assert declared.status_code == 413 and "98765432101" not in declared.text
    assert bad_utf8.status_code == 422
    [error] = bad_utf8.json()["detail"]
    assert error["type"] == "utf8_invalid" and "offset 13" in error["msg"]
    assert "e9" not in error["msg"].lower()


def test_public_reasons_hide_paths_with_spaces_and_hashes() -> None:
    reason = (
        "model version 3: /srv/my models/reg/versions/3/export/model.tflite has sha256 "
        "0123456789ab…, the manifest says fedcba987654…; copied to /tmp/lstm-serving-v3-x/y"
    )
    shown = public(reason, "/srv/my models/reg", "/tmp")
    assert "/srv" not in shown and "my models" not in shown and "/tmp" not in shown
    assert "0123456789ab" not in shown and "fedcba987654" not in shown
    assert "model version 3" in shown and "export/model.tflite" in shown
