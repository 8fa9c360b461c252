"""The real-time prediction service's settings (HTTP, limits, hot switch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lstm_model.config import FrozenConfig

API_KEY_ENV = "LSTM_PIPELINE_API_KEY"
"""Environment variable holding the serving API key; unset means no key is asked for."""


class ServingConfig(FrozenConfig):
    """The real-time prediction service (``lstm-pipeline serve``)."""

    host: str = Field(
        "127.0.0.1", min_length=1, description="Address to bind; loopback unless told otherwise."
    )
    port: int = Field(8000, ge=0, le=65_535, description="TCP port (0: any free port).")
    backend: Literal["saved_model", "tflite"] = Field(
        "saved_model",
        description="Exported format that answers: the SavedModel (raw text in, the tokeniser "
        "as TensorFlow ops) or the TFLite model (the Python tokeniser, then LiteRT). TFLite "
        "runs a static batch, so a single review costs a whole batch there.",
    )
    max_batch_size: int = Field(
        64, ge=1, le=4096, description="Most texts in one request (more: 413)."
    )
    max_text_chars: int = Field(
        20_000, ge=1, description="Longest text in characters (longer: 413), as batch scoring."
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Largest request body in bytes. A body over it is refused with 413 before "
        "it is read whole, so no request can make the process grow past it.",
    )
    max_concurrency: int = Field(
        64,
        ge=1,
        description="Most requests handled at once (bounds memory to about max_concurrency x "
        "max_body_bytes); more get 503 at once. /healthz and /readyz are never counted.",
    )
    max_connections: int = Field(
        1024,
        ge=2,
        description="Most open connections, idle ones included; past it a new connection is "
        "closed at once (a last resort: the header timeout closes idle ones first).",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0.0,
        description="A connection must send a whole request line and headers within this "
        "long; one that sends nothing, or trickles, is closed.",
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0.0,
        description="A request body must arrive whole within this long (else 408).",
    )
    inference_threads: int = Field(
        2, ge=1, le=256, description="Predictions computed at the same time (the rest queue)."
    )
    micro_batching: bool = Field(
        True,
        description="Let concurrent requests share one model call: a free inference thread "
        "takes every request waiting, up to max_batch_size texts (none is held back to wait "
        "for others).",
    )
    poll_seconds: float = Field(
        1.0, gt=0.0, le=3600.0, description="How often the champion pointer is checked."
    )
    retry_refused_seconds: float = Field(
        30.0,
        gt=0.0,
        description="A champion refused (files not matching the manifest) is checked again "
        "after this long; the previous model answers meanwhile.",
    )
