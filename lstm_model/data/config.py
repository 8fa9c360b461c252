"""Where the data comes from, how the team's labelled texts come in, and how text becomes
token ids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

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

DOMAIN_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
"""A domain name (lower case): what a slice of labelled data is called in reports."""

ACLIMDB_DOMAIN = "imdb"
"""The domain of the aclImdb reviews, reserved."""


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


class LabelledConfig(FrozenConfig):
    """The labelled inbox: how the team's own labelled texts become training data."""

    settle_seconds: float = Field(
        10.0,
        ge=0.0,
        description="A file is taken once unmodified for this long (still being written "
        "otherwise). Names starting with '.' or ending .part/.tmp are never taken.",
    )
    domain: str | None = Field(
        None,
        pattern=DOMAIN_PATTERN,
        description="Domain of rows that name none (their file's name when empty).",
    )
    test_share: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="Share of texts held out for testing, by a hash of the normalised text, "
        "for rows whose file gives no split.",
    )
    max_class_share: float = Field(
        0.75,
        ge=0.5,
        le=1.0,
        description="Largest share either label may take of the training set once a drop "
        "is in; a drop that would pass it is quarantined with the numbers.",
    )
    max_text_chars: int = Field(20_000, ge=1, description="Longer texts are rejected, row by row.")
    max_row_bytes: int = Field(
        1 << 20,
        ge=1024,
        le=64 << 20,
        description="Longest row in bytes (a JSONL line, a CSV record); longer ones are "
        "rejected with their row number and sha256, never held in memory whole.",
    )
    max_row_group_bytes: int = Field(
        256 << 20,
        ge=1 << 20,
        description="Parquet: largest uncompressed size of the columns read in one row group; "
        "a file with a larger one is quarantined.",
    )
    reject_text_chars: int = Field(
        1000, ge=0, description="Characters of a rejected row's text kept in its rejects file."
    )
    chunk_rows: int = Field(50_000, ge=1, description="Rows read and checked at a time.")
    chunk_bytes: int = Field(
        64 << 20, ge=1 << 16, description="A chunk also ends once its rows hold this many bytes."
    )

    @field_validator("domain", mode="before")
    @classmethod
    def _lower_case_not_reserved(cls, domain: object) -> object:
        if not isinstance(domain, str):
            return domain
        if domain.strip().lower() == ACLIMDB_DOMAIN:
            raise ValueError(f"the domain {ACLIMDB_DOMAIN!r} is reserved for the aclImdb reviews")
        return domain.strip().lower() or None

    @property
    def text_column(self) -> str:
        """Reading: the column that holds the text."""
        return "text"

    @property
    def id_column(self) -> str:
        """Reading: the column that holds a row's id, if the file has one."""
        return "id"
