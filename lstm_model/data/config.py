"""Where the data comes from and how text becomes token ids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from lstm_model.config import FrozenConfig

OFFICIAL_ARCHIVE_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
"""Where the official aclImdb v1 archive is published (Maas et al., 2011)."""

SOURCE_ENV = "LSTM_PIPELINE_SOURCE"

CACHE_ENV = "LSTM_PIPELINE_CACHE"

LOCAL_SOURCE_CANDIDATES: tuple[str, ...] = (
    "data/aclImdb_v1.tar.gz",
    "data/aclImdb",
    "../shared/data/aclImdb_v1_labeled.tar.gz",
)
"""Local copies looked for, relative to the working directory, before downloading."""


class TokeniserConfig(FrozenConfig):
    """How review text becomes a fixed-length row of token ids."""

    vocab_size: int = Field(
        50_000,
        ge=3,
        le=2_000_000,
        description="Size of the id space, reserved ids included (0 = padding, 1 = out of "
        "vocabulary); the top vocab_size - 2 training words get ids 2 and up.",
    )
    maxlen: int = Field(
        1_000,
        ge=1,
        le=10_000,
        description="Tokens per row after pad/truncate (1000 keeps 99.8% of IMDB reviews whole).",
    )
    padding: Literal["pre", "post"] = Field(
        "pre", description="Side that receives padding for short reviews."
    )
    truncating: Literal["pre", "post"] = Field(
        "pre",
        description="Side cut from long reviews: 'pre' drops the beginning and keeps the end, "
        "where reviews state their verdict.",
    )


def default_cache_dir() -> Path:
    """Download cache: ``$LSTM_PIPELINE_CACHE``, else ``$XDG_CACHE_HOME/lstm-pipeline``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstm-pipeline"
