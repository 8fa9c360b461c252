"""Bounds of the reviews contract (``imdb_reviews``), and how many validation results
retention keeps."""

from __future__ import annotations

from pydantic import Field, model_validator

from lstm_model.config import FrozenConfig


class ReviewsContractConfig(FrozenConfig):
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


class ResultsRetentionConfig(FrozenConfig):
    """How many Great Expectations validation results retention keeps."""

    keep_results: int = Field(
        10,
        ge=1,
        le=100_000,
        description="Newest validation results kept per data contract (and in the Data Docs).",
    )
