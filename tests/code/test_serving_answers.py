"""The prediction service in-process (FastAPI's TestClient, lifespan included) over the
exported tiny champion, with the keyed service's settings: endpoints and OpenAPI, answers
equal to the batch scorer's, bad requests and bodies in the documented error shape.
What needs a real server process (huge and slow bodies, idle sockets, the log, the hot
switch across processes, SIGTERM) is in tests/system/test_serving.py."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from lstm_model.release.registry import Registry
from lstm_model.scoring.sequential import score_texts
from serving.app import create_app
from tests.helpers.serving import KEY, KEYED, texts_to_serve


@dataclass
class Service:
    client: TestClient
    registry: Path


@pytest.fixture(scope="module")
def keyed(exported_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The keyed service in this process, answering with version 1 (the SavedModel)."""
    registry = tmp_path_factory.mktemp("in-process") / "registry"
    shutil.copytree(exported_registry, registry, symlinks=True)
    app = create_app(registry, KEYED, api_key=KEY)
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").json().get("model_version") != 1:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.1)
        yield Service(client, registry)


@pytest.fixture(scope="module")
def texts(reviews_frame) -> list[str]:  # type: ignore[no-untyped-def]
    return texts_to_serve(reviews_frame)


def test_health_readiness_model_and_docs(keyed: Service) -> None:
    http = keyed.client
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz").json()
    assert ready == {"ready": True, "model_version": 1, "reason": None, "problem": None}
    info = http.get("/v1/model").json()
    manifest = Registry(keyed.registry).manifest(1)
    assert info["version"] == 1 and info["backend"] == "saved_model"
    assert info["metrics"]["accuracy"] == manifest["metrics"]["accuracy"]
    assert info["trained_at"] == manifest["created_at"] and info["refused"] is None
    assert "swagger-ui" in http.get("/docs").text
    spec = http.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/model", "/healthz", "/readyz"} <= set(spec["paths"])
    documented = spec["paths"]["/v1/predict"]["post"]["responses"]
    assert {"200", "401", "413", "422", "503"} <= set(documented)
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


def test_predictions_equal_the_batch_scorer(
    keyed: Service, texts: list[str], tmp_path: Path
) -> None:
    expected = score_texts(keyed.registry, texts, tmp_path / "scoring")
    http = keyed.client
    batched = []
    for at in range(0, len(texts), 16):
        response = http.post("/v1/predict", json={"texts": texts[at : at + 16]})
        assert response.status_code == 200 and response.headers["X-Model-Version"] == "1"
        batched += response.json()["predictions"]
    singles = [http.post("/v1/predict", json={"text": t}).json() for t in texts[-8:]]
    got = np.array([p["probability"] for p in batched])
    assert np.max(np.abs(got - expected)) <= 1e-6
    assert [p["label"] for p in batched] == ["positive" if p >= 0.5 else "negative" for p in got]
    assert {p["model_version"] for p in batched} == {1}
    single = np.array([s["predictions"][0]["probability"] for s in singles])
    assert np.max(np.abs(single - expected[-8:])) <= 1e-6
    assert all(s["model_version"] == 1 and len(s["predictions"]) == 1 for s in singles)


BAD_REQUESTS = [
    ({"texts": []}, 422, "too_short", ["body", "texts"]),
    ({"text": "   \n\t"}, 422, "blank_text", ["body", "text"]),
    ({"texts": ["fine", " "]}, 422, "blank_text", ["body", "texts"]),
    ({"texts": ["fine", 3]}, 422, "string_type", ["body", "texts", 1]),
    ({"text": 42}, 422, "string_type", ["body", "text"]),
    ({"texts": "not a list"}, 422, "list_type", ["body", "texts"]),
    ({"text": "a", "texts": ["b"]}, 422, "text_or_texts", ["body"]),
    ({}, 422, "text_or_texts", ["body"]),
    ({"text": "fine", "model": 3}, 422, "extra_forbidden", ["body"]),  # no name echoed
    ({"texts": ["fine"] * 17}, 413, "too_many_texts", ["body", "texts"]),
    ({"text": "a" * 6001}, 413, "text_too_long", ["body", "text"]),
    ({"texts": ["fine", "b" * 6001]}, 413, "text_too_long", ["body", "texts", 1]),
]


@pytest.mark.parametrize(("body", "status", "kind", "loc"), BAD_REQUESTS)
def test_bad_requests_get_clear_errors(
    keyed: Service, body: Any, status: int, kind: str, loc: list[str | int]
) -> None:
    response = keyed.client.post("/v1/predict", json=body)
    assert response.status_code == status, response.text
    [error] = response.json()["detail"]
    assert error["type"] == kind and error["loc"] == loc and error["msg"]
    assert "input" not in error  # the request is never echoed back


def test_bodies_that_are_not_json_text_are_refused(keyed: Service) -> None:
    json_type = {"Content-Type": "application/json"}
    http = keyed.client
    bad_utf8 = http.post("/v1/predict", content=b'{"text": "caf\xe9 \xff"}', headers=json_type)
    surrogate = http.post("/v1/predict", content=b'{"text": "a \\ud800 b"}', headers=json_type)
    not_json = http.post("/v1/predict", content=b'{"text": ', headers=json_type)
    plain = http.post("/v1/predict", content=b"a review", headers={"Content-Type": "text/plain"})
    too_big = http.post("/v1/predict", json={"text": "x" * 300_000})
    assert bad_utf8.status_code == 422
    assert bad_utf8.json()["detail"][0]["type"] == "utf8_invalid"
    assert "offset 13" in bad_utf8.json()["detail"][0]["msg"]  # no byte of the body echoed
    assert surrogate.status_code == 422
    assert surrogate.json()["detail"][0]["type"] == "invalid_unicode"
    assert not_json.status_code == 422 and not_json.json()["detail"][0]["type"] == "json_invalid"
    assert plain.status_code == 422
    assert too_big.status_code == 413
    assert too_big.json()["detail"][0]["type"] == "body_too_large"
