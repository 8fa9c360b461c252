"""The classifier's architecture, and the named (tokeniser, model) presets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lstm_model.config import FrozenConfig
from lstm_model.data.config import TokeniserConfig


class ModelConfig(FrozenConfig):
    """Architecture of the classifier.

    The LSTM branch: Embedding -> (Bi)LSTM -> pooling -> logit. With ``ngram_order`` > 0 a
    second branch (mean of embedded word n-grams, fastText-style) gives its own logit,
    and a two-weight logistic combiner, fit on the validation split, joins the two.
    """

    architecture: Literal["lstm", "bilstm"] = Field(
        "bilstm", description="One LSTM reading forwards, or a bidirectional pair."
    )
    pooling: Literal["last", "max", "mean", "max_mean", "attention"] = Field(
        "max_mean",
        description="'last': the final LSTM state; 'max'/'mean': pool the states over time; "
        "'max_mean': both, concatenated; 'attention': a learned attention-weighted sum of the "
        "states (padding left out).",
    )
    embedding_dim: int = Field(64, ge=1, le=4096, description="Width of the word embedding.")
    embedding_dropout: float = Field(
        0.4, ge=0.0, lt=1.0, description="Spatial dropout on the embedded sequence (whole words)."
    )
    units: int = Field(32, ge=1, le=4096, description="LSTM units (per direction).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LSTM inputs.")
    recurrent_dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Dropout on the recurrent state. Above 0 the LSTM cannot use cuDNN on GPU.",
    )
    head_dropout: float = Field(0.5, ge=0.0, lt=1.0, description="Dropout before the output.")
    use_cudnn: bool = Field(
        True,
        description="Let Keras use the fused cuDNN LSTM on a GPU when eligible; off forces "
        "the generic kernel (a fallback where a backend's fused path misbehaves).",
    )
    l2: float = Field(0.0, ge=0.0, description="L2 penalty on embedding, LSTM and output weights.")
    lstm_maxlen: int | None = Field(
        100,
        ge=1,
        le=10_000,
        description="The LSTM reads only the last this-many tokens of each row (empty: all). "
        "The n-gram branch always reads the whole row.",
    )
    ngram_order: int = Field(
        2,
        ge=0,
        le=3,
        description="0: LSTM only. 1, 2, 3: add an n-gram branch over words up to this "
        "length (1 = words, 2 = + bigrams, 3 = + trigrams).",
    )
    ngram_buckets: int = Field(
        2**20, ge=1, le=2**20, description="Hash buckets per n-gram order above 1."
    )
    ngram_dim: int = Field(4, ge=1, le=1024, description="Width of the n-gram embeddings.")
    ngram_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout on the pooled n-gram vector."
    )
    nbsvm: bool = Field(
        True,
        description="Add a third branch: a naive-Bayes-weighted logistic regression over word "
        "and bigram counts (NBSVM), fitted by liblinear on the training rows and frozen in the "
        "model; the combiner weighs it with the other two. Part of the two-branch model: off "
        "when ngram_order is 0.",
    )
    lstm_nbsvm_scores: bool = Field(
        False,
        description="The LSTM also reads, beside each word's embedding, the NBSVM branch's "
        "frozen scores of that word and of the bigram it ends: a sequence of evidence the "
        "LSTM can compose (negations, contrasts). Needs the NBSVM branch.",
    )
    lstm_region_buckets: int = Field(
        0,
        ge=0,
        le=2**20,
        description="Region embeddings for the LSTM: each step also reads a trainable "
        "embedding of the hashed bigram that ends at its word, summed with the word's "
        "embedding (this many hash buckets; 0: off).",
    )
    nbsvm_c: float = Field(
        0.3, gt=0.0, description="Inverse L2 strength (C) of the NBSVM branch's regression."
    )

    @property
    def has_nbsvm(self) -> bool:
        """Whether the model gets the NBSVM branch (only the two-branch model does)."""
        return self.nbsvm and self.ngram_order > 0

    @model_validator(mode="before")
    @classmethod
    def _nbsvm_needs_branches(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("ngram_order") == 0:
            if data.get("nbsvm"):
                raise ValueError("nbsvm needs the two-branch model (ngram_order >= 1)")
            data = {**data, "nbsvm": False}
        return data

    @model_validator(mode="after")
    def _scores_need_nbsvm(self) -> ModelConfig:
        if self.lstm_nbsvm_scores and not self.has_nbsvm:
            raise ValueError(
                "lstm_nbsvm_scores needs the NBSVM branch (nbsvm on, ngram_order >= 1)"
            )
        return self


CLASSIC_TOKENISER = TokeniserConfig(vocab_size=10_000, maxlen=200)

CLASSIC_MODEL = ModelConfig(
    architecture="lstm",
    lstm_maxlen=None,
    ngram_order=0,
    pooling="last",
    embedding_dim=128,
    embedding_dropout=0.0,
    units=64,
    dropout=0.2,
    recurrent_dropout=0.2,
    head_dropout=0.0,
)

BIDIRECTIONAL_MODEL = CLASSIC_MODEL.model_copy(update={"architecture": "bilstm"})

PRESETS: dict[str, tuple[TokeniserConfig, ModelConfig]] = {
    "classic": (CLASSIC_TOKENISER, CLASSIC_MODEL),
    "bidirectional": (CLASSIC_TOKENISER, BIDIRECTIONAL_MODEL),
    "bilstm_pool": (
        TokeniserConfig(vocab_size=20_000, maxlen=400),
        ModelConfig(ngram_order=0, lstm_maxlen=None),
    ),
    "default": (TokeniserConfig(), ModelConfig()),
}
"""Named (tokeniser, model) pairs: the classic and bidirectional reference models, the pooled
BiLSTM alone (the default's LSTM branch), and the default (BiLSTM + n-gram branch)."""
