"""Typed configuration: every default of the pipeline lives here.

Models are frozen pydantic models so that Prefect renders them as forms and a
configuration can be hashed into artifact cache keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

OFFICIAL_ARCHIVE_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
"""Where the official aclImdb v1 archive is published (Maas et al., 2011)."""

SOURCE_ENV = "LSTM_PIPELINE_SOURCE"
WORKSPACE_ENV = "LSTM_PIPELINE_HOME"
CACHE_ENV = "LSTM_PIPELINE_CACHE"

LOCAL_SOURCE_CANDIDATES: tuple[str, ...] = (
    "data/aclImdb_v1.tar.gz",
    "data/aclImdb",
    "../shared/data/aclImdb_v1_labeled.tar.gz",
)
"""Local copies looked for, relative to the working directory, before downloading."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def fingerprint(self) -> str:
        """Stable sha256 of the configuration, for cache keys and manifests."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


class TokeniserConfig(_Frozen):
    """How review text becomes a fixed-length row of token ids."""

    vocab_size: int = Field(
        10_000,
        ge=3,
        le=2_000_000,
        description="Size of the id space, reserved ids included (0 = padding, 1 = out of "
        "vocabulary); the top vocab_size - 2 training words get ids 2 and up.",
    )
    maxlen: int = Field(200, ge=1, le=10_000, description="Tokens per row after pad/truncate.")
    padding: Literal["pre", "post"] = Field(
        "pre", description="Side that receives padding for short reviews."
    )
    truncating: Literal["pre", "post"] = Field(
        "pre",
        description="Side cut from long reviews: 'pre' drops the beginning and keeps the end, "
        "where reviews state their verdict.",
    )


class ReviewsContractConfig(_Frozen):
    """Bounds of the ``imdb_reviews`` data contract."""

    min_rows: int = Field(1_000, ge=0, description="Fewest reviews accepted in the dataset.")
    max_rows: int = Field(1_000_000, ge=1, description="Most reviews accepted in the dataset.")
    min_text_chars: int = Field(10, ge=1, description="Shortest review text, in characters.")
    max_text_chars: int = Field(20_000, ge=1, description="Longest review text, in characters.")
    min_positive_fraction: float = Field(
        0.4, ge=0.0, le=1.0, description="Lowest share of positive reviews within each split."
    )
    max_positive_fraction: float = Field(
        0.6, ge=0.0, le=1.0, description="Highest share of positive reviews within each split."
    )
    max_examples: int = Field(5, ge=1, le=100, description="Offending rows shown per failure.")

    @model_validator(mode="after")
    def _bounds_ordered(self) -> ReviewsContractConfig:
        if self.min_rows > self.max_rows:
            raise ValueError(f"min_rows {self.min_rows} > max_rows {self.max_rows}")
        if self.min_text_chars > self.max_text_chars:
            raise ValueError(
                f"min_text_chars {self.min_text_chars} > max_text_chars {self.max_text_chars}"
            )
        if self.min_positive_fraction > self.max_positive_fraction:
            raise ValueError("min_positive_fraction > max_positive_fraction")
        return self


def default_workspace() -> Path:
    """Root folder of all artifacts: ``$LSTM_PIPELINE_HOME`` or ``./artifacts``."""
    return Path(os.environ.get(WORKSPACE_ENV) or "artifacts")


def default_cache_dir() -> Path:
    """Download cache: ``$LSTM_PIPELINE_CACHE``, else ``$XDG_CACHE_HOME/lstm-pipeline``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstm-pipeline"
