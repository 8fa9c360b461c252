"""The linear baseline and the accuracy gate."""

from __future__ import annotations

from pydantic import Field

from lstm_model.config import FrozenConfig


class BaselineConfig(FrozenConfig):
    """The linear baseline fit beside every candidate: TF-IDF n-grams + logistic regression."""

    enabled: bool = Field(True, description="Fit the baseline and report it beside the model.")
    ngram_max: int = Field(2, ge=1, le=3, description="Longest word n-gram used as a feature.")
    min_df: int = Field(2, ge=1, description="Fewest training reviews an n-gram must occur in.")
    c: float = Field(4.0, gt=0.0, description="Inverse L2 strength of the logistic regression (C).")


class GateConfig(FrozenConfig):
    """What a candidate must reach to be promoted."""

    min_accuracy: float = Field(0.88, ge=0.0, le=1.0, description="Absolute test-accuracy bar.")
    max_regression: float = Field(
        0.005,
        ge=0.0,
        le=1.0,
        description="Largest accuracy drop allowed against the current champion, on "
        "aclImdb test and on each slice of labelled data.",
    )
    slice_gate: bool = Field(
        True,
        description="Also compare the candidate with the champion on each domain's test "
        "share (scoring the champion's exported model on it at gate time).",
    )
    slice_confidence: float = Field(
        0.95,
        gt=0.5,
        lt=1.0,
        description="A slice fails only when its drop exceeds max_regression and what "
        "chance reaches at this confidence (a paired test on the slice's texts).",
    )
    min_margin_over_baseline: float | None = Field(
        0.0,
        ge=-1.0,
        le=1.0,
        description="The candidate's test accuracy must exceed the linear baseline's by at "
        "least this much (default 0: match it; the default model beats it by about 0.005). "
        "Empty: not checked. Needs the baseline enabled.",
    )
