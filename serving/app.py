"""The FastAPI app: the API layer over preprocessing, inference and post-processing.

``POST /v1/predict`` takes the texts (read by ``serving.body`` in bounded time and
memory), the champion's exported model turns them into probabilities (the SavedModel
tokenises inside its graph; the TFLite path tokenises with ``Tokeniser``), every output is
checked to be a probability, and ``labels_of`` turns those into labels. Errors share
FastAPI's validation-error shape, ``{"detail": [{"type", "loc", "msg"}]}``, with at most
``MAX_ERRORS`` entries, each capped in size, and nothing of the request echoed (no values,
no field names):

- 401: the API key is set and the request lacks it (or has another);
- 408: the body did not arrive within ``body_timeout_seconds``;
- 413: the body, the batch or a text is over its configured limit;
- 422: the body is not JSON, not UTF-8, or not a valid request (wrong types, empty list,
  blank text, both or neither of ``text`` and ``texts``);
- 500: the model gave something other than a probability per text (never sent as one);
- 503: no model is loaded yet, or ``max_concurrency`` requests are being handled.

The docs at ``/docs`` and ``/redoc`` load their scripts from this service, never from a CDN.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lstm_model.model.labels import labels_of
from lstm_model.release.canary import ModelOutputError, check_probabilities
from serving.batching import MicroBatcher
from serving.body import FIELDS, BodyError, read_predict_body
from serving.config import ServingConfig
from serving.exported import ExportedModel
from serving.guard import API_KEY_HEADER, RequestGuard, error_body
from serving.schemas import (
    ErrorResponse,
    ModelInfo,
    Prediction,
    PredictRequest,
    PredictResponse,
    Readiness,
)
from serving.slot import ModelSlot

log = logging.getLogger(__name__)

ERRORS = {
    401: {"model": ErrorResponse, "description": "API key missing or wrong (when one is set)."},
    408: {"model": ErrorResponse, "description": "The body did not arrive in time."},
    413: {"model": ErrorResponse, "description": "Body, batch or a text over its limit."},
    422: {"model": ErrorResponse, "description": "Not a valid request (JSON, UTF-8, fields)."},
    500: {"model": ErrorResponse, "description": "The model's output was not valid."},
    503: {"model": ErrorResponse, "description": "No model loaded yet, or too busy."},
}
MAX_ERRORS = 3
PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
    }
}


class Refused(Exception):
    """A request the service answers with an error of its own (413, 503)."""

    def __init__(self, status: int, kind: str, message: str, loc: list[str | int]) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.loc = status, kind, message, loc


def create_app(registry_root: Path, config: ServingConfig, api_key: str | None = None) -> FastAPI:
    """The service over the champion of ``registry_root``; ``api_key`` guards ``/v1/``."""
    slot = ModelSlot(registry_root, config)
    # Filled by the lifespan: both belong to the event loop the server runs.
    limiter: list[anyio.CapacityLimiter] = []
    batcher: list[MicroBatcher] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limiter.append(anyio.CapacityLimiter(config.inference_threads))
        if config.micro_batching:
            batcher.append(
                MicroBatcher(
                    answering, max_texts=config.max_batch_size, workers=config.inference_threads
                )
            )
            batcher[0].start()
            app.state.batcher = batcher[0]
        slot.start()
        yield
        slot.stop()
        if batcher:
            await batcher[0].stop()

    app = FastAPIOffline(
        title="IMDB sentiment",
        summary="Real-time predictions from the champion LSTM model.",
        version="1",
        lifespan=lifespan,
    )
    app.state.slot = slot
    # Only documents the key in OpenAPI: RequestGuard checks it before the body is read.
    key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)
    v1 = APIRouter(prefix="/v1", dependencies=[Security(key_scheme)] if api_key else [])

    def answering() -> ExportedModel:
        model = slot.current
        if model is None:
            raise Refused(503, "not_ready", f"no model loaded yet: {slot.reason}", [])
        return model

    @v1.post(
        "/predict", response_model=PredictResponse, responses=ERRORS, openapi_extra=PREDICT_BODY
    )
    async def predict(request: Request, response: Response) -> PredictResponse:
        """Probability and label of one review (`text`) or of a batch (`texts`)."""
        body = _parse(await request.body(), config.max_batch_size)
        texts = body.batch()
        for index, text in enumerate(texts):
            if len(text) > config.max_text_chars:
                raise Refused(
                    413,
                    "text_too_long",
                    f"text {index} has {len(text)} characters; at most {config.max_text_chars}",
                    ["body", "text"] if body.text is not None else ["body", "texts", index],
                )
        model = answering()  # read once: this request ends on this model whatever happens
        try:
            if batcher:
                model, values = await batcher[0].predict(texts)
            else:
                values = await anyio.to_thread.run_sync(model.predict, texts, limiter=limiter[0])
            probabilities = check_probabilities(values, len(texts))
        except ModelOutputError as error:
            log.error("model version %d: %s", model.version, error)
            raise Refused(500, "model_output_invalid", str(error), []) from None
        response.headers["X-Model-Version"] = str(model.version)
        return PredictResponse(
            model_version=model.version,
            predictions=[
                Prediction(probability=float(p), label=label, model_version=model.version)
                for p, label in zip(probabilities, labels_of(probabilities), strict=True)
            ],
        )

    @v1.get("/model", response_model=ModelInfo, responses=ERRORS)
    async def model_info() -> ModelInfo:
        """The model answering now: version, test metrics, training date."""
        model = answering()
        return ModelInfo(
            version=model.version,
            backend=model.backend,
            metrics=model.metrics,
            trained_at=model.trained_at,
            loaded_at=datetime.fromtimestamp(model.loaded_at, UTC).isoformat(),
            refused=slot.refused.model_dump() if slot.refused else None,
            problem=slot.problem,
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive (says nothing about the model)."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz() -> JSONResponse:
        """A model is loaded and answering; ``problem`` says what is wrong with the champion
        pointer, if anything, while the last good model keeps answering."""
        model = slot.current
        if model is None:
            return JSONResponse(
                Readiness(ready=False, reason=slot.reason, problem=slot.problem).model_dump(),
                503,
                headers={"Retry-After": str(slot.retry_after())},
            )
        ready = Readiness(ready=True, model_version=model.version, problem=slot.problem)
        return JSONResponse(ready.model_dump())

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return _errors(422, [(e["type"], list(e["loc"]), e["msg"]) for e in error.errors()])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        message = {404: "no such endpoint", 405: "method not allowed here"}.get(
            error.status_code, "the request cannot be answered"
        )
        return _errors(error.status_code, [(kind, [], message)], dict(error.headers or {}))

    @app.exception_handler(Exception)
    async def internal(_: Request, error: Exception) -> JSONResponse:
        log.exception("internal error: %s", type(error).__name__)
        return _errors(500, [("internal_error", [], "internal error: see the service's log")])

    @app.exception_handler(Refused)
    async def refused(_: Request, error: Refused) -> JSONResponse:
        headers = {"Retry-After": str(slot.retry_after())} if error.status == 503 else {}
        return _errors(error.status, [(error.kind, error.loc, error.message)], headers)

    app.include_router(v1)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=config.max_body_bytes,
        api_key=api_key or None,
        max_concurrency=config.max_concurrency,
        body_timeout=config.body_timeout_seconds,
    )
    return app


def _parse(raw: bytes, max_texts: int) -> PredictRequest:
    """The request from its raw body: its shape read by ``read_predict_body`` (bounded),
    then the field rules of ``PredictRequest`` over at most ``max_texts`` strings."""
    try:
        fields = read_predict_body(raw, max_texts)
    except BodyError as error:
        if error.status != 422:
            raise Refused(error.status, error.kind, error.msg, error.loc) from None
        raise RequestValidationError(
            [{"type": error.kind, "loc": error.loc, "msg": error.msg}]
        ) from None
    try:
        return PredictRequest.model_validate(fields)
    except ValidationError as error:
        detail = error.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in detail]) from None


def _errors(
    status: int, errors: list[tuple[str, list[Any], str]], headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error shape, at most ``MAX_ERRORS`` entries, none echoing the request."""
    detail = [error_body(kind, _public_loc(loc), msg) for kind, loc, msg in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        detail.append(error_body("more_errors", ["body"], f"{len(errors) - MAX_ERRORS} more"))
    return JSONResponse({"detail": detail}, status, headers=headers)


def _public_loc(loc: list[Any]) -> list[str | int]:
    """A location with only the service's own names and indices: a client's field names
    are never sent back (an unknown field is reported at ``body``)."""
    safe: list[str | int] = []
    for part in loc:
        if isinstance(part, int) or part in ("body", "query", "path", "header", *FIELDS):
            safe.append(part)
        else:
            break
    return safe
