"""Request and response bodies of the prediction service (they make its OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator
from pydantic_core import PydanticCustomError


class PredictRequest(BaseModel):
    """One text (``text``) or a batch (``texts``), not both."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "A moving, beautifully acted film."},
                {"texts": ["Loved every minute.", "Two hours I will never get back."]},
            ]
        },
    )

    text: StrictStr | None = Field(None, description="A single review.")
    texts: list[StrictStr] | None = Field(
        None, min_length=1, description="A batch of reviews, answered in the same order."
    )

    @field_validator("text")
    @classmethod
    def _text_usable(cls, value: str | None) -> str | None:
        if value is not None:
            _check_text(value, 0)
        return value

    @field_validator("texts")
    @classmethod
    def _texts_usable(cls, values: list[str] | None) -> list[str] | None:
        for index, value in enumerate(values or []):
            _check_text(value, index)
        return values

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise PydanticCustomError(
                "text_or_texts", 'send exactly one of "text" (a string) or "texts" (a list)'
            )
        return self

    def batch(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


def _check_text(value: str, index: int) -> None:
    if not value.strip():
        raise PydanticCustomError(
            "blank_text", "text {index} is blank: it needs a non-space character", {"index": index}
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise PydanticCustomError(
            "invalid_unicode",
            "text {index} is not valid Unicode: a lone surrogate escape at character {at}",
            {"index": index, "at": error.start},
        ) from None


class Prediction(BaseModel):
    probability: float = Field(description="Probability that the review is positive.")
    label: Literal["negative", "positive"] = Field(description="The label at threshold 0.5.")
    model_version: int = Field(description="Registry version of the model that answered.")


class PredictResponse(BaseModel):
    model_version: int = Field(description="Registry version of the model that answered.")
    predictions: list[Prediction]


class ModelInfo(BaseModel):
    version: int = Field(description="Registry version answering now (the champion).")
    backend: Literal["saved_model", "tflite"]
    metrics: dict[str, Any] = Field(description="Its test-split metrics, from the registry.")
    trained_at: str = Field(description="When it was trained and registered (UTC, ISO 8601).")
    loaded_at: str = Field(description="When this service loaded it.")
    refused: dict[str, Any] | None = Field(
        None, description="The last champion version this service refused to load, and why."
    )
    problem: str | None = Field(
        None, description="What is wrong with the champion pointer, if anything."
    )


class Readiness(BaseModel):
    ready: bool
    model_version: int | None = None
    reason: str | None = Field(None, description="Why no model answers (when not ready).")
    problem: str | None = Field(
        None, description="What is wrong with the champion pointer, if anything."
    )


class ErrorDetail(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ErrorResponse(BaseModel):
    """Every error: FastAPI's validation-error shape, one entry per problem."""

    detail: list[ErrorDetail]
