"""Model builders (Keras 3 functional API, any backend).

The LSTM branch: token ids -> Embedding -> LSTM or BiLSTM -> the last state, or the states
max/mean-pooled over time -> dropout -> one unit. Optionally a second branch pools the
embeddings of the row's words and hashed word n-grams (fastText-style) into a second
logit, and a sigmoid unit over both logits gives the probability. Which variant, and every
size and dropout, comes from ``ModelConfig``.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from lstm_model.model.config import ModelConfig
from lstm_model.model.layers import AttentionPooling, HashedNgrams, LastSteps, MaskedMean, TokenSum
from lstm_model.model.outputs import check_count

log = logging.getLogger(__name__)


NGRAM_LOGIT = "ngram_logit"
LSTM_LOGIT = "lstm_logit"
NBSVM_LOGIT = "nbsvm_logit"
BRANCH_LOGITS = (NGRAM_LOGIT, LSTM_LOGIT, NBSVM_LOGIT)
"""The branches' logits in the order the combiner (``probability``) takes those present."""


def build_model(config: ModelConfig, *, vocab_size: int, maxlen: int, seed: int) -> keras.Model:
    """An uncompiled classifier over rows of ``maxlen`` token ids below ``vocab_size``.

    Every random initial weight and dropout mask derives from ``seed`` and its layer's name.
    """
    seeds = _Seeds(seed)
    ids = keras.Input(shape=(maxlen,), dtype="int32", name="token_ids")
    nbsvm = _NbsvmLayers(config, vocab_size) if config.has_nbsvm else None
    scores = nbsvm if config.lstm_nbsvm_scores else None
    lstm_features = _lstm_branch(
        ids, config, vocab_size=vocab_size, maxlen=maxlen, scores=scores, seeds=seeds
    )
    name = f"{config.architecture}_{config.pooling}"
    if not config.ngram_order:
        probability = layers.Dense(
            1, activation="sigmoid", kernel_initializer=seeds.glorot("probability"),
            kernel_regularizer=_l2(config), name="probability",
        )(lstm_features)  # fmt: skip
        return keras.Model(ids, probability, name=name)

    lstm_logit = layers.Dense(
        1,
        kernel_initializer=seeds.glorot(LSTM_LOGIT),
        kernel_regularizer=_l2(config),
        name=LSTM_LOGIT,
    )(lstm_features)
    ngram_features = _ngram_branch(ids, config, vocab_size, seeds)
    ngram_logit = layers.Dense(1, kernel_initializer=seeds.glorot(NGRAM_LOGIT), name=NGRAM_LOGIT)(
        ngram_features
    )
    logits = [ngram_logit, lstm_logit]
    name = f"{name}_ngram{config.ngram_order}"
    if nbsvm is not None:
        logits.append(nbsvm.logit(ids))
        name += "_nbsvm"
    # Starts as the plain sum of the logits; training refits it on validation data.
    probability = layers.Dense(
        1, activation="sigmoid", kernel_initializer="ones", name="probability"
    )(layers.Concatenate(name="branch_logits")(logits))
    return keras.Model(ids, probability, name=name)


def branch_models(model: keras.Model) -> dict[str, keras.Model]:
    """Each branch of a two-branch model as its own classifier sharing the same layers.

    Empty for an LSTM-only model. Training fits these one at a time, then the combiner.
    """
    names = {layer.name for layer in model.layers}
    if NGRAM_LOGIT not in names:
        return {}
    return {
        branch: keras.Model(
            model.inputs,
            layers.Activation("sigmoid", name=f"{branch}_probability")(
                model.get_layer(logit).output
            ),
            name=f"{model.name}_{branch}",
        )
        for branch, logit in (("ngram", NGRAM_LOGIT), ("lstm", LSTM_LOGIT))
    }


def residual_model(model: keras.Model) -> keras.Model:
    """The LSTM branch as a classifier beside a given logit: sigmoid(LSTM logit + offset),
    the offset (one per row) a second input. Fitting it fits the LSTM to what the offset's
    model leaves unexplained, as a boosting step does."""
    offset = keras.Input(shape=(1,), dtype="float32", name="offset")
    logit = layers.Add(name="lstm_residual_logit")([model.get_layer(LSTM_LOGIT).output, offset])
    return keras.Model(
        [*model.inputs, offset],
        layers.Activation("sigmoid", name="lstm_residual_probability")(logit),
        name=f"{model.name}_lstm_residual",
    )


def branch_logit(model: keras.Model, logit: str, ids: np.ndarray) -> np.ndarray:
    """One branch's logit (a layer name of ``BRANCH_LOGITS``) for each row of ``ids``."""
    branch = keras.Model(model.inputs, model.get_layer(logit).output)
    return np.asarray(branch.predict(ids, batch_size=512, verbose=0), dtype="float32").ravel()


def _l2(config: ModelConfig) -> keras.regularizers.Regularizer | None:
    return keras.regularizers.L2(config.l2) if config.l2 else None


class _Seeds:
    """The seed of each random layer of one model, from the model's seed and the layer's name.

    Keras layers built without a seed draw one from Python's global ``random``, which other
    threads also draw from (Prefect's clients do): the same seed could then build another
    model. Keyed by name, a layer starts the same whichever optional layers a config adds or
    leaves out, so two variants differ by their config, not by their draws.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __call__(self, name: str) -> int:
        # A str seeds Random through SHA-512: the same in every process and on every machine.
        return random.Random(f"{self.seed}/{name}").randint(1, 10**9)

    def uniform(self, name: str) -> keras.initializers.Initializer:
        """Keras's default for embeddings, seeded."""
        return keras.initializers.RandomUniform(-0.05, 0.05, seed=self(name))

    def glorot(self, name: str) -> keras.initializers.Initializer:
        """Keras's default for kernels, seeded."""
        return keras.initializers.GlorotUniform(seed=self(name))


def _lstm_branch(
    ids: Any,
    config: ModelConfig,
    *,
    vocab_size: int,
    maxlen: int,
    scores: _NbsvmLayers | None,
    seeds: _Seeds,
) -> Any:
    """Embedding -> (Bi)LSTM -> last state or pooled states -> dropout. With ``scores``, the
    NBSVM scores of each word and of the bigram it ends join the embedding."""
    regulariser = _l2(config)
    pooled = config.pooling != "last"
    x = ids
    if config.lstm_maxlen is not None and config.lstm_maxlen < maxlen:
        x = LastSteps(config.lstm_maxlen, name="lstm_window")(x)
    window = x
    x = layers.Embedding(
        vocab_size, config.embedding_dim, embeddings_initializer=seeds.uniform("embedding"),
        embeddings_regularizer=regulariser, name="embedding",
    )(x)  # fmt: skip
    if config.lstm_region_buckets:
        regions = HashedNgrams(2, config.lstm_region_buckets, name="lstm_bigram_ids")(window)
        regions = layers.Embedding(
            config.lstm_region_buckets + 1, config.embedding_dim,
            embeddings_initializer=seeds.uniform("lstm_bigram_embedding"),
            embeddings_regularizer=regulariser,
            name="lstm_bigram_embedding",
        )(regions)  # fmt: skip
        # The first word ends no bigram: a zero vector keeps the steps aligned (elsewhere
        # "no bigram", id 0, has its own trainable row, as padding has in the embedding).
        regions = layers.ZeroPadding1D((1, 0), name="lstm_bigram_steps")(regions)
        x = layers.Add(name="lstm_regions")([x, regions])
    if config.embedding_dropout:
        x = layers.SpatialDropout1D(
            config.embedding_dropout, seed=seeds("embedding_dropout"), name="embedding_dropout"
        )(x)
    if scores is not None:
        x = layers.Concatenate(name="lstm_inputs")([x, *scores.per_step(window)])

    def lstm(name: str, go_backwards: bool = False) -> layers.LSTM:
        return layers.LSTM(
            config.units,
            dropout=config.dropout,
            recurrent_dropout=config.recurrent_dropout,
            return_sequences=pooled,
            go_backwards=go_backwards,
            use_cudnn="auto" if _fused_lstm_allowed(config) else False,
            kernel_initializer=seeds.glorot(f"{name}/kernel"),
            recurrent_initializer=keras.initializers.Orthogonal(seed=seeds(f"{name}/recurrent")),
            kernel_regularizer=regulariser,
            recurrent_regularizer=regulariser,
            seed=seeds(f"{name}/dropout"),
            name=name,
        )

    if config.architecture == "bilstm":
        # Given one layer, Bidirectional copies its config, seeds too: both would start equal.
        forward, backward = lstm("forward_lstm"), lstm("backward_lstm", go_backwards=True)
        x = layers.Bidirectional(forward, backward_layer=backward, name="bilstm")(x)
    else:
        x = lstm("lstm")(x)
    if config.pooling == "attention":
        x = AttentionPooling(config.units, seed=seeds("attention_pool"), name="attention_pool")(
            [x, window]
        )
    elif config.pooling == "max":
        x = layers.GlobalMaxPooling1D(name="max_pool")(x)
    elif config.pooling == "mean":
        x = layers.GlobalAveragePooling1D(name="mean_pool")(x)
    elif config.pooling == "max_mean":
        x = layers.Concatenate(name="max_mean_pool")(
            [
                layers.GlobalMaxPooling1D(name="max_pool")(x),
                layers.GlobalAveragePooling1D(name="mean_pool")(x),
            ]
        )
    if config.head_dropout:
        x = layers.Dropout(config.head_dropout, seed=seeds("head_dropout"), name="head_dropout")(x)
    return x


def _ngram_branch(ids: Any, config: ModelConfig, vocab_size: int, seeds: _Seeds) -> Any:
    """Mean of the embeddings of every word and hashed n-gram in the row."""
    parts = [
        layers.Embedding(
            vocab_size, config.ngram_dim, embeddings_initializer=seeds.uniform("ngram1_embedding"),
            name="ngram1_embedding",
        )(ids),
        ids,
    ]  # fmt: skip
    for order in range(2, config.ngram_order + 1):
        grams = HashedNgrams(order, config.ngram_buckets, name=f"ngram{order}_ids")(ids)
        vectors = layers.Embedding(
            config.ngram_buckets + 1, config.ngram_dim,
            embeddings_initializer=seeds.uniform(f"ngram{order}_embedding"),
            name=f"ngram{order}_embedding",
        )(grams)  # fmt: skip
        parts += [vectors, grams]
    x = MaskedMean(name="ngram_mean")(parts)
    if config.ngram_dropout:
        x = layers.Dropout(config.ngram_dropout, seed=seeds("ngram_dropout"), name="ngram_dropout")(
            x
        )
    return x


class _NbsvmLayers:
    """The NBSVM branch: a linear logit over word and bigram counts whose weights are
    fitted outside Keras (``training.nbsvm``) and frozen, NBSVM (Wang & Manning, 2012)
    inside the model. Its layers are shared when the LSTM also reads the scores."""

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        self.words = layers.Embedding(
            vocab_size, 1, embeddings_initializer="zeros", trainable=False, name="nbsvm_words"
        )
        self.bigram_ids = HashedNgrams(2, config.ngram_buckets, name="nbsvm_bigram_ids")
        self.bigrams = layers.Embedding(
            config.ngram_buckets + 1, 1, embeddings_initializer="zeros", trainable=False,
            name="nbsvm_bigrams",
        )  # fmt: skip

    def logit(self, ids: Any) -> Any:
        """The branch's logit: the sum of the row's word and bigram scores, plus a bias."""
        return TokenSum(name=NBSVM_LOGIT)([self.words(ids), self.bigrams(self.bigram_ids(ids))])

    def per_step(self, ids: Any) -> list[Any]:
        """Each position's word score and the score of the bigram ending there (0 first)."""
        bigrams = self.bigrams(self.bigram_ids(ids))
        return [self.words(ids), layers.ZeroPadding1D((1, 0), name="lstm_bigram_scores")(bigrams)]


def load_model(path: Path) -> keras.Model:
    """Load a saved classifier for inference (importing this module registers its layers)."""
    return keras.saving.load_model(path, compile=False)


def predict_ids(model: keras.Model, ids: Any, batch_size: int = 512) -> np.ndarray:
    """The model's output for each row of token ids (float32), one ``predict_on_batch``
    per batch; raises ModelOutputError when a batch gives a number of outputs other than
    its rows (never padded or cut). Judging the values is the caller's (``outputs``).

    ``predict_on_batch`` reuses one traced function and skips ``model.predict``'s data
    pipeline: measured 1.65x the texts/s of ``model.predict`` here, same memory.
    """
    out = np.empty(len(ids), dtype="float32")
    for at in range(0, len(ids), batch_size):
        batch = ids[at : at + batch_size]
        out[at : at + len(batch)] = check_count(model.predict_on_batch(batch), len(batch))
    return out


def gpu_visible() -> bool:
    """Whether the Keras backend sees a GPU to train on."""
    return _has_gpu(keras.backend.backend())


def lstm_kernel(config: ModelConfig) -> str:
    """Which LSTM implementation this backend and device will run, for the logs.

    On a GPU this asks the backend's fused LSTM for one tiny step, which is exactly what
    ``keras.layers.LSTM`` tries first; when that raises, Keras silently runs the generic
    kernel, and so says this message.
    """
    backend = keras.backend.backend()
    if not _has_gpu(backend):
        return f"generic LSTM kernel on CPU ({backend})"
    if not config.use_cudnn:
        return f"generic LSTM kernel on GPU ({backend}): use_cudnn is off"
    if backend == "jax":
        return f"generic LSTM kernel on GPU (jax): {_JAX_FUSED_LSTM}"
    if config.recurrent_dropout > 0:
        return (
            f"generic LSTM kernel on GPU ({backend}): recurrent_dropout="
            f"{config.recurrent_dropout} rules out cuDNN; set it to 0 for the cuDNN kernel"
        )
    reason = _fused_lstm_failure()
    if reason is None:
        return f"cuDNN LSTM kernel on GPU ({backend})"
    return f"generic LSTM kernel on GPU ({backend}): the fused cuDNN path is unavailable ({reason})"


_JAX_FUSED_LSTM = (
    "the fused cuDNN path of Keras 3.15's JAX backend is off: on an H200 its LSTM reached "
    "0.85 training accuracy at 0.50 validation accuracy (seeds 7 and 42), while the "
    "generic kernel learnt (0.89)"
)


def _fused_lstm_allowed(config: ModelConfig) -> bool:
    """Whether Keras may pick the fused cuDNN LSTM (see ``_JAX_FUSED_LSTM`` for JAX)."""
    return config.use_cudnn and keras.backend.backend() != "jax"


def _fused_lstm_failure() -> str | None:
    """None when the backend's cuDNN LSTM runs here; else why not."""
    # keras.src.backend.lstm is the hook keras.layers.LSTM calls; no public name exists.
    from keras.src import backend as keras_backend

    ops = keras.ops
    x = ops.ones((1, 2, 2))
    state = ops.zeros((1, 2))
    try:
        keras_backend.lstm(
            x, state, state, None,
            kernel=ops.ones((2, 8)), recurrent_kernel=ops.ones((2, 8)), bias=ops.zeros((8,)),
            activation=keras.activations.tanh, recurrent_activation=keras.activations.sigmoid,
        )  # fmt: skip
    except NotImplementedError as error:
        return str(error) or "the backend declined it"
    except Exception as error:  # a broken cuDNN install must not stop training
        return f"{type(error).__name__}: {error}"
    return None


def _has_gpu(backend: str) -> bool:
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "jax":
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
    except Exception:
        return False
    return False
