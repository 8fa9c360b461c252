"""The optimizer every stage trains with: Adam that also reports the global gradient norm."""

from __future__ import annotations

from typing import Any

import keras

from lstm_model.training.config import TrainConfig


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


def compile_model(
    model: keras.Model, config: TrainConfig, *, learning_rate: float | None = None
) -> keras.Model:
    """Adam (with optional global-norm clipping), binary cross-entropy, accuracy."""
    model.compile(
        optimizer=GradNormAdam(
            learning_rate=learning_rate or config.learning_rate,
            global_clipnorm=config.global_clipnorm,
        ),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model
