"""Model builders (Keras 3 functional API, any backend).

All variants share one shape: token ids -> Embedding -> LSTM or BiLSTM -> the last state,
or the states max/mean-pooled over time -> dropout -> one sigmoid unit. Which variant,
and every size and dropout, comes from ``ModelConfig``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
from keras import layers

from lstm_model.config import ModelConfig, TrainConfig

log = logging.getLogger(__name__)


def build_model(config: ModelConfig, *, vocab_size: int, maxlen: int) -> keras.Model:
    """An uncompiled classifier over rows of ``maxlen`` token ids below ``vocab_size``."""
    regulariser = keras.regularizers.L2(config.l2) if config.l2 else None
    pooled = config.pooling != "last"

    ids = keras.Input(shape=(maxlen,), dtype="int32", name="token_ids")
    x = layers.Embedding(
        vocab_size, config.embedding_dim, embeddings_regularizer=regulariser, name="embedding"
    )(ids)
    if config.embedding_dropout:
        x = layers.SpatialDropout1D(config.embedding_dropout, name="embedding_dropout")(x)
    lstm = layers.LSTM(
        config.units,
        dropout=config.dropout,
        recurrent_dropout=config.recurrent_dropout,
        return_sequences=pooled,
        kernel_regularizer=regulariser,
        recurrent_regularizer=regulariser,
        name="lstm",
    )
    x = layers.Bidirectional(lstm, name="bilstm")(x) if config.architecture == "bilstm" else lstm(x)
    if config.pooling == "max":
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
        x = layers.Dropout(config.head_dropout, name="head_dropout")(x)
    probability = layers.Dense(
        1, activation="sigmoid", kernel_regularizer=regulariser, name="probability"
    )(x)
    name = f"{config.architecture}_{config.pooling}"
    return keras.Model(ids, probability, name=name)


@keras.saving.register_keras_serializable(package="lstm_model")
class GradNormAdam(keras.optimizers.Adam):
    """Adam that also sums the global gradient norm (before clipping) of every step.

    Works on every backend because it only uses ``keras.ops`` and optimizer variables,
    which the JAX trainer carries through its stateless steps like any other state.
    """

    def build(self, variables: list[Any]) -> None:
        super().build(variables)
        self.grad_norm_sum = self.add_variable((), initializer="zeros", name="grad_norm_sum")
        self.grad_norm_steps = self.add_variable((), initializer="zeros", name="grad_norm_steps")

    def apply(self, grads: list[Any], trainable_variables: list[Any] | None = None) -> Any:
        if not self.built:
            self.build(trainable_variables)
        squares = [keras.ops.sum(keras.ops.square(g)) for g in grads if g is not None]
        self.grad_norm_sum.assign_add(keras.ops.sqrt(keras.ops.sum(keras.ops.stack(squares))))
        self.grad_norm_steps.assign_add(keras.ops.cast(1, self.grad_norm_steps.dtype))
        return super().apply(grads, trainable_variables)


def compile_model(model: keras.Model, config: TrainConfig) -> keras.Model:
    """Adam (with optional global-norm clipping), binary cross-entropy, accuracy."""
    model.compile(
        optimizer=GradNormAdam(
            learning_rate=config.learning_rate, global_clipnorm=config.global_clipnorm
        ),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def load_model(path: Path) -> keras.Model:
    """Load a saved classifier for inference (this module registers its optimizer)."""
    return keras.saving.load_model(path, compile=False)


def lstm_kernel(config: ModelConfig) -> str:
    """Which LSTM implementation this backend and device will run, for the logs."""
    backend = keras.backend.backend()
    gpu = _has_gpu(backend)
    if not gpu:
        return f"generic LSTM kernel on CPU ({backend})"
    if config.recurrent_dropout > 0:
        return (
            f"generic LSTM kernel on GPU ({backend}): recurrent_dropout="
            f"{config.recurrent_dropout} rules out cuDNN; set it to 0 for the cuDNN kernel"
        )
    if backend == "jax":
        return "generic LSTM kernel on GPU (jax has no cuDNN LSTM path in Keras)"
    return f"cuDNN LSTM kernel on GPU ({backend})"


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
