"""Typed configuration: every default of the pipeline lives here.

Models are frozen pydantic models so that Prefect renders them as forms and a
configuration can be hashed into artifact cache keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

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


class ModelConfig(_Frozen):
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
        400,
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
    ngram_dim: int = Field(8, ge=1, le=1024, description="Width of the n-gram embeddings.")
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


class TrainConfig(_Frozen):
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


class BaselineConfig(_Frozen):
    """The linear baseline fit beside every candidate: TF-IDF n-grams + logistic regression."""

    enabled: bool = Field(True, description="Fit the baseline and report it beside the model.")
    ngram_max: int = Field(2, ge=1, le=3, description="Longest word n-gram used as a feature.")
    min_df: int = Field(2, ge=1, description="Fewest training reviews an n-gram must occur in.")
    c: float = Field(4.0, gt=0.0, description="Inverse L2 strength of the logistic regression (C).")


class GateConfig(_Frozen):
    """What a candidate must reach to be promoted."""

    min_accuracy: float = Field(0.88, ge=0.0, le=1.0, description="Absolute test-accuracy bar.")
    max_regression: float = Field(
        0.005,
        ge=0.0,
        le=1.0,
        description="Largest accuracy drop allowed against the current champion.",
    )
    min_margin_over_baseline: float | None = Field(
        0.0,
        ge=-1.0,
        le=1.0,
        description="The candidate's test accuracy must exceed the linear baseline's by at "
        "least this much (default 0: match it; the default model beats it by about 0.005). "
        "Empty: not checked. Needs the baseline enabled.",
    )


class ExportConfig(_Frozen):
    """Exported formats and their parity check."""

    model_name: str = Field(
        "imdb_sentiment",
        pattern=r"^[a-z0-9_]+$",
        description="Name in the TensorFlow Serving layout <model_name>/<version>/.",
    )
    parity_tolerance: float = Field(
        1e-4, gt=0.0, description="Largest |p_export - p_keras| allowed on the test set."
    )
    tflite_batch_size: int = Field(
        64, ge=1, le=4096, description="Static batch size of the TFLite model."
    )


class ScoringConfig(_Frozen):
    """Batch scoring of files dropped into an inbox."""

    settle_seconds: float = Field(
        10.0,
        ge=0.0,
        description="A file is picked up once unmodified for this long (still being "
        "written otherwise). Names starting with '.' or ending .part/.tmp are never taken.",
    )
    text_column: str = Field("text", min_length=1, description="Text column of CSV/JSONL/Parquet.")
    id_column: str = Field("id", min_length=1, description="Optional id column.")
    max_text_chars: int = Field(
        20_000, ge=1, description="Longer texts are rejected (row by row), not scored."
    )
    max_row_bytes: int = Field(
        1 << 20,
        ge=1024,
        description="Longest row in bytes (a line of TXT or JSONL, a record of CSV). A longer "
        "row is rejected with its row number and sha256 and never held in memory whole.",
    )
    reject_text_chars: int = Field(
        1000,
        ge=0,
        description="Characters of a rejected row's text kept in the rejects file; the whole "
        "row stays in the archived input, found by its row number and sha256.",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        description="A file whose scoring fails for a reason other than its content (a bug, a "
        "full disk) stays in the inbox for the next run; after this many failed runs in a "
        "row it is quarantined with the last error.",
    )
    batch_size: int = Field(512, ge=1, le=65_536, description="Texts per prediction batch.")
    chunk_rows: int = Field(
        50_000,
        ge=1,
        description="Rows read, checked, tokenised and scored at a time (bounds memory).",
    )
    rescore: bool = Field(
        False,
        description="Also score archived files again with the current champion if it has "
        "not scored them yet (after a promotion). Off: a new champion only sees new files.",
    )
    max_score_shift: float = Field(
        0.15,
        ge=0.0,
        le=1.0,
        description="Warn when the run's positive rate differs from the champion's on its "
        "test split by more than this.",
    )
    max_oov_shift: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Warn when the out-of-vocabulary rate exceeds the training data's by more.",
    )
    max_length_ratio: float = Field(
        2.0,
        ge=1.0,
        description="Warn when the mean text length is this many times longer or shorter "
        "than the training data's.",
    )


class ScaleOutConfig(_Frozen):
    """Where scoring runs: in the flow's process (default), or spread over Dask workers."""

    dask_workers: int = Field(
        0,
        ge=0,
        le=256,
        description="0: score file by file in the flow's process (no Dask). N > 0: start a "
        "local Dask cluster of N worker processes and score files, and the chunks of large "
        "files, in parallel.",
    )
    dask_address: str | None = Field(
        None,
        pattern=r"^[a-z]+://\S+$",
        description="Address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786) to use "
        "instead of a local cluster. Its workers need this package and the scoring folders.",
    )

    @property
    def parallel(self) -> bool:
        return self.dask_workers > 0 or self.dask_address is not None


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


API_KEY_ENV = "LSTM_PIPELINE_API_KEY"
"""Environment variable holding the serving API key; unset means no key is asked for."""


class ServingConfig(_Frozen):
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
        description="Most open connections, idle ones included; past it the server answers "
        "503 without reading the request (a last resort: timeouts close idle ones first).",
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


class SearchSpace(_Frozen):
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


class TuningConfig(_Frozen):
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
