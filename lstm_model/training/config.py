"""How a model is fit, and what the tuning flow searches."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lstm_model.config import FrozenConfig
from lstm_model.data.config import ACLIMDB_DOMAIN, DOMAIN_PATTERN, TokeniserConfig


class TrainConfig(FrozenConfig):
    """How the model is fit."""

    epochs: int = Field(6, ge=1, le=1000, description="Most epochs; early stopping may end sooner.")
    batch_size: int = Field(128, ge=1, le=65_536, description="Samples per gradient step.")
    learning_rate: float = Field(1e-3, gt=0.0, description="Adam learning rate.")
    global_clipnorm: float | None = Field(
        5.0,
        gt=0.0,
        description="Clip gradients to this global norm; empty for no clipping. The logged "
        "grad_norm is typically 3-4 on this data, so 5 clips only outlier steps.",
    )
    validation_fraction: float = Field(
        0.1, gt=0.0, lt=0.5, description="Share of the train split held out for validation."
    )
    validation_block: int = Field(
        1,
        ge=1,
        le=1_000,
        description="Hold out the validation share in runs of this many consecutive review "
        "ids of a class, not single rows. aclImdb numbers each movie's reviews "
        "consecutively, so with runs most movies fall wholly on one side, as the test "
        "split's movies are all new to the model (1: single rows).",
    )
    early_stopping_monitor: Literal["val_loss", "val_accuracy"] = Field(
        "val_loss", description="Validation metric that early stopping watches and restores."
    )
    early_stopping_patience: int = Field(
        1, ge=0, description="Epochs without improvement of the monitored metric before stopping."
    )
    seed: int = Field(42, description="Seed of the split, the weights and the shuffling.")
    ngram_epochs: int = Field(
        8, ge=1, le=1000, description="Most epochs of the n-gram branch's own fit."
    )
    ngram_learning_rate: float = Field(
        5e-3,
        gt=0.0,
        description="Adam learning rate of the n-gram branch's fit (its mean-pooled "
        "embeddings learn slowly at the LSTM's rate).",
    )
    augment_copies: int = Field(
        0,
        ge=0,
        le=10,
        description="Synonym-replacement augmentation: add this many copies of the training "
        "rows with words swapped for synonyms built from the training data (0: off).",
    )
    augment_rate: float = Field(
        0.1, ge=0.0, le=1.0, description="Chance that a word with a synonym is swapped in a copy."
    )
    crop_copies: int = Field(
        0,
        ge=0,
        le=10,
        description="Short-text augmentation: add this many copies of the training rows, "
        "each cut to a random run of crop_min_tokens to crop_max_tokens of its words, with "
        "the row's label (0: off).",
    )
    crop_min_tokens: int = Field(
        5, ge=1, le=10_000, description="Fewest words a cropped copy keeps."
    )
    crop_max_tokens: int = Field(
        40, ge=1, le=10_000, description="Most words a cropped copy keeps."
    )
    lstm_residual_folds: int = Field(
        0,
        ge=0,
        le=20,
        description="Fit the LSTM beside the NBSVM branch: its stage trains sigmoid(LSTM "
        "logit + NBSVM logit), the NBSVM logit of each fit row coming from a fit on the "
        "other folds of this many (0: off, the LSTM fits the labels alone). Needs the NBSVM "
        "branch.",
    )
    domain_weights: dict[str, float] = Field(
        {},
        description="Fixed training weight of a labelled domain, as DOMAIN=WEIGHT: each of its "
        "rows counts WEIGHT times an aclImdb review. Domains not named get theirs chosen on "
        "their own validation share from domain_weight_candidates.",
    )
    domain_weight_candidates: tuple[float, ...] = Field(
        (1.0, 3.0, 10.0, 30.0),
        min_length=1,
        description="Weights tried for each labelled domain without a fixed one; the one with "
        "the lowest log loss on the domain's validation rows wins (only 1: no weighting).",
    )
    domain_weight_max_imdb_drop: float = Field(
        0.005,
        ge=0.0,
        le=1.0,
        description="A candidate weight that costs the aclImdb validation rows more accuracy "
        "than this (against weight 1) is never chosen.",
    )

    @field_validator("domain_weights")
    @classmethod
    def _known_domains_positive_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        for domain, weight in weights.items():
            if not re.match(DOMAIN_PATTERN, domain) or domain == ACLIMDB_DOMAIN:
                raise ValueError(
                    f"{domain!r} is not a labelled domain name (lower case, "
                    f"{DOMAIN_PATTERN}, not {ACLIMDB_DOMAIN!r})"
                )
            if not 0.0 < weight <= 1000.0:
                raise ValueError(f"the weight of {domain!r} is {weight}: it must be in (0, 1000]")
        return weights

    @field_validator("domain_weight_candidates")
    @classmethod
    def _positive_candidates(cls, candidates: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < c <= 1000.0 for c in candidates):
            raise ValueError(f"every candidate weight must be in (0, 1000]: {candidates}")
        return tuple(sorted(set(candidates)))

    @field_validator("lstm_residual_folds")
    @classmethod
    def _folds_zero_or_several(cls, folds: int) -> int:
        if folds == 1:
            raise ValueError(
                "lstm_residual_folds is 0 (off) or at least 2: one fold holds out nothing"
            )
        return folds

    @model_validator(mode="after")
    def _crop_range_ordered(self) -> TrainConfig:
        if self.crop_copies and self.crop_min_tokens > self.crop_max_tokens:
            raise ValueError(
                f"crop_min_tokens {self.crop_min_tokens} > crop_max_tokens {self.crop_max_tokens}"
            )
        return self


class SearchSpace(FrozenConfig):
    """What the tuning flow searches: the LSTM branch and the tokeniser's two sizes.

    Vocabulary size and sequence length need no re-tokenising: ids are ranked by training
    frequency and rows are pre-padded and pre-truncated, so clipping ids to ``vocab_size``
    and keeping the last ``maxlen`` columns of the widest tokenisation is exactly the
    tokenisation with those sizes.
    """

    families: tuple[Literal["lstm", "bilstm"], ...] = Field(
        ("lstm", "bilstm"), min_length=1, description="Model families: LSTM or BiLSTM."
    )
    poolings: tuple[Literal["last", "max", "mean", "max_mean", "attention"], ...] = Field(
        ("last", "max_mean"), min_length=1, description="Pooling of the LSTM states."
    )
    units_min: int = Field(32, ge=1, le=4096, description="Fewest LSTM units (per direction).")
    units_max: int = Field(256, ge=1, le=4096, description="Most LSTM units (powers of 2 apart).")
    maxlen_min: int = Field(100, ge=1, le=10_000, description="Shortest sequence length.")
    maxlen_max: int = Field(500, ge=1, le=10_000, description="Longest sequence length.")
    maxlen_step: int = Field(100, ge=1, description="Step between sequence lengths.")
    dropout_min: float = Field(0.1, ge=0.0, lt=1.0, description="Least dropout before the output.")
    dropout_max: float = Field(0.5, ge=0.0, lt=1.0, description="Most dropout before the output.")
    embedding_dims: tuple[int, ...] = Field(
        (32, 64, 128), min_length=1, description="Embedding widths to try."
    )
    vocab_sizes: tuple[int, ...] = Field(
        (10_000, 20_000, 50_000), min_length=1, description="Vocabulary sizes to try."
    )

    @model_validator(mode="after")
    def _ranges_ordered(self) -> SearchSpace:
        for low, high in (("units_min", "units_max"), ("maxlen_min", "maxlen_max"),
                          ("dropout_min", "dropout_max")):  # fmt: skip
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} {getattr(self, low)} > {high} {getattr(self, high)}")
        if min(self.vocab_sizes) < 3:
            raise ValueError("every vocabulary size must be at least 3 (two ids are reserved)")
        return self

    def widest_tokeniser(self) -> TokeniserConfig:
        """The one tokenisation every trial is cut from."""
        return TokeniserConfig(vocab_size=max(self.vocab_sizes), maxlen=self.maxlen_max)


class TuningConfig(FrozenConfig):
    """How the tuning flow searches (Keras Tuner) and what it saves."""

    algorithm: Literal["random", "hyperband"] = Field(
        "random", description="Keras Tuner's RandomSearch or Hyperband."
    )
    max_trials: int = Field(10, ge=1, le=10_000, description="Trials of the random search.")
    epochs: int = Field(
        3, ge=1, le=1000, description="Epochs per trial (Hyperband: the most any trial gets)."
    )
    hyperband_factor: int = Field(3, ge=2, le=10, description="Hyperband's reduction factor.")
    early_stopping_patience: int = Field(
        1, ge=0, description="Epochs without a better val_accuracy before a trial stops."
    )
    name: str = Field(
        "tuned",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="Name the best configuration is saved under (<workspace>/configs/<name>.json); "
        "the retraining flow takes it as its named_config parameter.",
    )
