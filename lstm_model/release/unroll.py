"""The LSTM of a model unrolled over its time steps, for the TFLite exports."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def unrolled(model: Any, max_steps: int) -> Any:
    """The same model and weights with every LSTM unrolled over its time steps, for the
    TFLite export; ``model`` itself when it has no LSTM, or one over more than
    ``max_steps`` steps (the conversion's time and memory grow with the steps).

    Keras 3's LSTM converts to a WHILE loop, whose state LiteRT copies at every step;
    unrolled, it scores several times as fast with the same probabilities (figures in
    docs/benchmarks.md). An unrolled LSTM also never traces the cuDNN kernel, which has no
    TFLite op.
    """
    steps = lstm_steps(model)
    if steps is None:
        return model
    if steps > max_steps:
        log.info("TFLite: an LSTM of %d steps stays a loop (limit %d)", steps, max_steps)
        return model
    config = model.get_config()

    def unroll(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "LSTM":
                node["config"]["unroll"] = True
            for value in node.values():
                unroll(value)
        elif isinstance(node, list):
            for value in node:
                unroll(value)

    unroll(config)
    clone = type(model).from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def lstm_steps(model: Any) -> int | None:
    """The most time steps any LSTM of ``model`` reads (None: it has no LSTM)."""
    import keras

    steps = [
        int(layer.input.shape[1])
        for layer in model.layers
        if isinstance(layer, keras.layers.LSTM)
        or (
            isinstance(layer, keras.layers.Bidirectional)
            and isinstance(layer.forward_layer, keras.layers.LSTM)
        )
    ]
    return max(steps) if steps else None
