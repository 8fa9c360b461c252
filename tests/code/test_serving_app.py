"""The prediction service in-process (FastAPI's TestClient, lifespan included): what any
client may send is answered in bounded time and size, in the documented error shape, and
nothing of the request comes back. No model is needed for these: bodies are read and
checked before the model is asked."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving.app import MAX_ERRORS, create_app
from serving.config import ServingConfig
from serving.exported import ExportedModel

KEY = "k-in-process-key"
MAX_ERROR_BYTES = 4096


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TestClient]:
    """The service over an empty registry (not ready: every body check still applies)."""
    app = create_app(tmp_path / "registry", ServingConfig(max_batch_size=64), api_key=KEY)
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        yield client


def _error(response) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    assert len(response.content) <= MAX_ERROR_BYTES, len(response.content)
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert 1 <= len(detail) <= MAX_ERRORS + 1
    assert all(set(e) == {"type", "loc", "msg"} for e in detail)
    return detail


HOSTILE_BODIES = {
    # 4 MB of one-character values: millions of objects and errors for a generic parser
    "amplification": b'{"texts":[' + b"1," * 1_999_990 + b"1]}",
    "many strings": b'{"texts":[' + b'"a",' * 800_000 + b'"a"]}',
    "deep nesting": b'{"texts":' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    "deep objects": b'{"text":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}",
    "huge integer": b'{"text": ' + b"9" * 1_000_000 + b"}",
    "huge float": b'{"text": 1e999999999}',
    "top-level array": b"[" + b'"a",' * 100_000 + b'"a"]',
    "long key": b'{"' + b"k" * 1_000_000 + b'": "a"}',
    "spaces": b" " * 3_000_000 + b'{"text": ',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_bodies_get_small_errors_fast(service: TestClient, name: str) -> None:
    started = time.perf_counter()
    response = service.post(
        "/v1/predict", content=HOSTILE_BODIES[name], headers={"Content-Type": "application/json"}
    )
    took = time.perf_counter() - started
    assert response.status_code in (413, 422), response.text[:300]
    _error(response)
    # Generous for a loaded 2-core machine; the generic parser took over 30 s on the first.
    assert took < 5, f"{name}: {took:.1f} s"


def test_nothing_of_the_request_is_echoed(service: TestClient) -> None:
    marker = "SECRET-MARKER-7f3a"
    bodies = [
        {"text": "fine", marker: 1},
        {marker: "x"},
        {"texts": ["fine", {marker: marker}]},
        {"text": 12345678901234567890, "extra": marker},
        {"texts": [marker, 3]},
    ]
    for body in bodies:
        response = service.post("/v1/predict", json=body)
        assert response.status_code == 422
        assert marker not in response.text and "1234567890" not in response.text
        assert all(e["loc"][0] == "body" for e in _error(response))
    unknown = service.post("/v1/predict", json={"text": "fine", marker: 1})
    assert _error(unknown) == [
        {
            "type": "extra_forbidden",
            "loc": ["body"],
            "msg": 'unknown field: a request has only "text" or "texts"',
        }
    ]


def test_errors_are_capped(service: TestClient) -> None:
    # 64 blank texts, 64 wrong types: the first problem is named, not every one.
    blank = service.post("/v1/predict", json={"texts": [" "] * 64})
    assert [e["type"] for e in _error(blank)] == ["blank_text"]
    wrong = service.post("/v1/predict", json={"texts": [1] * 64})
    assert _error(wrong) == [
        {
            "type": "string_type",
            "loc": ["body", "texts", 0],
            "msg": "Input should be a valid string",
        }
    ]
    too_many = service.post("/v1/predict", json={"texts": ["a"] * 65})
    assert too_many.status_code == 413
    assert _error(too_many)[0]["type"] == "too_many_texts"


def test_content_types(service: TestClient) -> None:
    # No content type: read as JSON, as FastAPI does; the request is valid, so only the
    # missing model stops it (503), not the body.
    bare = service.post("/v1/predict", content=b'{"text": "a fine film"}')
    assert bare.status_code == 503 and _error(bare)[0]["type"] == "not_ready"
    for kind, body in [
        ("text/plain", b"a review"),
        ("application/x-www-form-urlencoded", b"text=a+review"),
        ("application/json", b""),
        ("application/json", b"\xef\xbb\xbf{}"),
        ("application/json", b'{"text": "a"} {"text": "b"}'),
    ]:
        response = service.post("/v1/predict", content=body, headers={"Content-Type": kind})
        assert response.status_code == 422, (kind, body, response.text)
        _error(response)


def test_the_key_is_read_from_its_header_only(service: TestClient) -> None:
    body = {"text": "a fine film"}
    for attempt in (
        {"params": {"api_key": KEY}},
        {"headers": {"X-API-Key": "", "Authorization": f"Bearer {KEY}"}},
        {"headers": {"X-API-Key": "", "Cookie": f"X-API-Key={KEY}"}},
    ):
        response = service.post("/v1/predict", json=body, **attempt)  # type: ignore[arg-type]
        if "params" in attempt:  # the header is still sent by the client: the query is ignored
            assert response.status_code == 503
        else:
            assert response.status_code == 401
            assert KEY not in response.text


def test_health_does_not_depend_on_the_model_or_show_paths(service: TestClient) -> None:
    assert service.get("/healthz").json() == {"status": "ok"}
    ready = service.get("/readyz")
    assert ready.status_code == 503 and int(ready.headers["Retry-After"]) >= 1
    assert ready.json()["ready"] is False
    assert "/" not in ready.json()["reason"]  # no path of this machine


def test_docs_work_offline(service: TestClient) -> None:
    page = service.get("/docs").text
    assert "swagger-ui-bundle.js" in page
    assert "http://" not in page and "https://" not in page  # no third-party script or font
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert service.get(f"/static-offline-docs/{asset}").status_code == 200
    redoc = service.get("/redoc").text
    assert "https://" not in redoc and "http://" not in redoc
    spec = service.get("/openapi.json").json()
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["properties"]) == {"text", "texts"}


class _Broken:
    """A predictor whose outputs are wrong in the given way (the check under test is the
    service's, not the model's)."""

    def __init__(self, fault: str) -> None:
        self.fault = fault

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        values = np.full(len(texts), 0.7, dtype="float32")
        if self.fault == "nan":
            values[-1] = np.nan
        if self.fault == "range":
            values[0] = 1.5
        if self.fault == "count":
            values = values[:1]
        return values


@pytest.mark.parametrize("micro_batching", [True, False])
@pytest.mark.parametrize("fault", ["nan", "range", "count"])
def test_a_malformed_model_output_is_a_500_never_an_answer(
    tmp_path: Path, fault: str, micro_batching: bool
) -> None:
    config = ServingConfig(micro_batching=micro_batching)
    app = create_app(tmp_path / "registry", config)
    with TestClient(app) as client:
        app.state.slot.current = ExportedModel(
            version=3, backend="saved_model", predictor=_Broken(fault), metrics={}, trained_at=""
        )
        response = client.post("/v1/predict", json={"texts": ["good film", "bad film"]})
        fine = client.post("/v1/predict", json={"text": "one"})
    assert response.status_code == 500
    [error] = _error(response)
    assert error["type"] == "model_output_invalid" and error["msg"]
    if fault != "count":  # a single text: nan and range faults hit it too
        assert fine.status_code == 500
    else:
        assert fine.status_code == 200
        assert fine.json()["predictions"][0]["probability"] == pytest.approx(0.7)
