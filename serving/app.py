"""The FastAPI app: the API layer over preprocessing, inference and post-processing.

``POST /v1/predict`` takes the texts, the champion's exported model turns them into
probabilities (the SavedModel tokenises inside its graph; the TFLite path tokenises with
``Tokeniser``), and ``labels_of`` turns those into labels. Errors share FastAPI's
validation-error shape, ``{"detail": [{"type", "loc", "msg"}]}``:

- 401: the API key is set and the request lacks it (or has another);
- 413: the body, the batch or a text is over its configured limit;
- 422: the body is not JSON, not UTF-8, or not a valid request (wrong types, empty list,
  blank text, both or neither of ``text`` and ``texts``);
- 503: no model is loaded yet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
from fastapi import APIRouter, FastAPI, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from lstm_model.config import ServingConfig
from lstm_model.exported import ExportedModel, labels_of
from serving.batching import MicroBatcher
from serving.champion import ModelSlot
from serving.guard import API_KEY_HEADER, RequestGuard
from serving.schemas import (
    ErrorResponse,
    ModelInfo,
    Prediction,
    PredictRequest,
    PredictResponse,
    Readiness,
)

ERRORS = {
    401: {"model": ErrorResponse, "description": "API key missing or wrong (when one is set)."},
    413: {"model": ErrorResponse, "description": "Body, batch or a text over its limit."},
    422: {"model": ErrorResponse, "description": "Not a valid request (JSON, UTF-8, fields)."},
    503: {"model": ErrorResponse, "description": "No model loaded yet."},
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

    app = FastAPI(
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
            reason = slot.refused.reason if slot.refused else slot.waiting_for
            raise Refused(503, "not_ready", f"no model loaded yet: {reason}", [])
        return model

    @v1.post("/predict", response_model=PredictResponse, responses=ERRORS)
    async def predict(body: PredictRequest, response: Response) -> PredictResponse:
        """Probability and label of one review (`text`) or of a batch (`texts`)."""
        texts = body.batch()
        if len(texts) > config.max_batch_size:
            raise Refused(
                413,
                "too_many_texts",
                f"{len(texts)} texts in one request; at most {config.max_batch_size}",
                ["body", "texts"],
            )
        for index, text in enumerate(texts):
            if len(text) > config.max_text_chars:
                raise Refused(
                    413,
                    "text_too_long",
                    f"text {index} has {len(text)} characters; at most {config.max_text_chars}",
                    ["body", "text"] if body.text is not None else ["body", "texts", index],
                )
        model = answering()  # read once: this request ends on this model whatever happens
        if batcher:
            model, probabilities = await batcher[0].predict(texts)
        else:
            probabilities = await anyio.to_thread.run_sync(model.predict, texts, limiter=limiter[0])
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
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive (says nothing about the model)."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz() -> JSONResponse:
        """A model is loaded and answering."""
        model = slot.current
        if model is None:
            reason = slot.refused.reason if slot.refused else slot.waiting_for
            return JSONResponse(Readiness(ready=False, reason=reason).model_dump(), 503)
        return JSONResponse(Readiness(ready=True, model_version=model.version).model_dump())

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        # Without "input": it would echo the request (up to max_body_bytes) back.
        detail = [
            {"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()
        ]
        return JSONResponse({"detail": detail}, 422)

    @app.exception_handler(Refused)
    async def refused(_: Request, error: Refused) -> JSONResponse:
        headers = {"Retry-After": str(int(config.poll_seconds) + 1)} if error.status == 503 else {}
        return JSONResponse(
            {"detail": [{"type": error.kind, "loc": error.loc, "msg": error.message}]},
            error.status,
            headers=headers,
        )

    app.include_router(v1)
    app.add_middleware(RequestGuard, max_body_bytes=config.max_body_bytes, api_key=api_key or None)
    return app
