"""Custom Keras layers of the n-gram branch, written in ``keras.ops`` only.

They work on every Keras backend, serialise with the model (registered), and lower to
TFLite built-in integer ops (FloorMod, Mul, Add, SelectV2), so the exported models need
no Flex ops and the one tokeniser's ids are the only input.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

# Multipliers of the rolling hash: small enough that (id mod buckets) * multiplier stays
# inside int32 for any buckets <= 2**20, so every backend computes the same ids.
_MULTIPLIERS = (2_039, 1_021)
MAX_BUCKETS = 2**20


@keras.saving.register_keras_serializable(package="lstm_model")
class HashedNgrams(layers.Layer):
    """Token-id rows -> ids of their word n-grams, hashed into ``buckets``.

    Output id 0 marks "no n-gram": any window that touches padding (id 0) or an
    out-of-vocabulary word (id 1). Real n-grams get ids 1..buckets. The output is
    ``order - 1`` positions shorter than the input.
    """

    def __init__(self, order: int, buckets: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 2 <= order <= len(_MULTIPLIERS) + 1:
            raise ValueError(f"n-gram order must be 2..{len(_MULTIPLIERS) + 1}, got {order}")
        if not 1 <= buckets <= MAX_BUCKETS:
            raise ValueError(f"buckets must be 1..{MAX_BUCKETS}, got {buckets}")
        self.order, self.buckets = order, buckets

    def call(self, ids: Any) -> Any:
        length = ids.shape[1]
        width = length - self.order + 1
        hashed = ops.mod(ids[:, :width], self.buckets)
        known = ids[:, :width] > 1
        for shift, multiplier in zip(range(1, self.order), _MULTIPLIERS, strict=False):
            word = ids[:, shift : shift + width]
            hashed = ops.mod(hashed * multiplier + ops.mod(word, self.buckets), self.buckets)
            known = ops.logical_and(known, word > 1)
        return ops.where(known, hashed + 1, ops.zeros_like(hashed))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[Any, ...]:
        length = input_shape[1]
        return (input_shape[0], None if length is None else length - self.order + 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "order": self.order, "buckets": self.buckets}


@keras.saving.register_keras_serializable(package="lstm_model")
class MaskedMean(layers.Layer):
    """Mean of embedded n-grams over every window with a non-zero id (fastText-style).

    Called on ``[vectors_1, ids_1, vectors_2, ids_2, ...]``: one pool over all orders.
    """

    def call(self, inputs: list[Any]) -> Any:
        total, count = None, None
        for vectors, ids in zip(inputs[::2], inputs[1::2], strict=True):
            mask = ops.expand_dims(ops.cast(ids > 0, vectors.dtype), -1)
            part, n = ops.sum(vectors * mask, axis=1), ops.sum(mask, axis=1)
            total = part if total is None else total + part
            count = n if count is None else count + n
        return total / ops.maximum(count, 1.0)

    def compute_output_shape(self, input_shapes: list[tuple[int | None, ...]]) -> tuple:
        return (input_shapes[0][0], input_shapes[0][-1])


@keras.saving.register_keras_serializable(package="lstm_model")
class LastSteps(layers.Layer):
    """The last ``steps`` positions of each row (pre-padded rows keep their words there)."""

    def __init__(self, steps: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steps = steps

    def call(self, ids: Any) -> Any:
        return ids[:, -self.steps :]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[Any, ...]:
        return (input_shape[0], self.steps)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "steps": self.steps}


@keras.saving.register_keras_serializable(package="lstm_model")
class AttentionPooling(layers.Layer):
    """Attention pooling over time (additive attention with one learned query).

    Each state gets a score ``q . tanh(W h + b)``; steps whose token id is padding (0) are
    left out; the softmax of the scores weighs the sum of the states. Inputs: the states
    (batch, steps, width) and the ids they were read from (batch, steps).
    """

    def __init__(self, units: int = 64, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.seed = seed

    def build(self, input_shape: Any) -> None:
        width = input_shape[0][-1]
        query_seed = None if self.seed is None else self.seed + 1
        self.project = self.add_weight(
            name="project", shape=(width, self.units),
            initializer=keras.initializers.GlorotUniform(seed=self.seed),
        )  # fmt: skip
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.query = self.add_weight(
            name="query", shape=(self.units, 1),
            initializer=keras.initializers.GlorotUniform(seed=query_seed),
        )  # fmt: skip

    def call(self, inputs: Any) -> Any:
        states, ids = inputs
        hidden = ops.tanh(ops.matmul(states, self.project) + self.bias)
        scores = ops.squeeze(ops.matmul(hidden, self.query), axis=-1)
        # A large negative, not -inf: a row of padding alone stays finite (uniform weights).
        scores = ops.where(ops.not_equal(ids, 0), scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)
        return ops.sum(states * ops.expand_dims(weights, -1), axis=1)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0][0], input_shape[0][-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "seed": self.seed}


@keras.saving.register_keras_serializable(package="lstm_model")
class TokenSum(layers.Layer):
    """Sum of per-token scores over the row, plus a bias: a linear model over counts.

    Called on ``[scores_1, scores_2, ...]`` (each batch x steps x 1), it returns
    (batch, 1). With frozen embedding tables as the scores, this is a logistic-regression
    logit over word and n-gram counts, fitted elsewhere (the NBSVM branch).
    """

    def build(self, input_shape: Any) -> None:
        self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros", trainable=False)

    def call(self, inputs: list[Any]) -> Any:
        total = self.bias
        for scores in inputs:
            total = total + ops.sum(scores, axis=1)
        return total

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0][0], 1)
