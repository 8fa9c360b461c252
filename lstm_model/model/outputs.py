"""What a classifier's outputs must be: one finite probability in [0, 1] per text.

Kept with the model so that every layer above it (scoring, release, the service) checks
outputs with the same rule and raises the same error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lstm_model.errors import PipelineError


class ModelOutputError(PipelineError):
    """A model gave something other than one probability in [0, 1] per text."""


def check_count(values: Any, n: int) -> np.ndarray:
    """``values`` as a flat float32 vector of exactly ``n`` values; raises ModelOutputError
    otherwise (never pads or cuts: a count that is off means the outputs are not the texts')."""
    array = np.asarray(values, dtype="float32").ravel()
    if array.shape != (n,):
        raise ModelOutputError(f"the model gave {array.size} outputs for a batch of {n} texts")
    return array


def check_probabilities(values: Any, n: int) -> np.ndarray:
    """``values`` as a float32 vector of ``n`` finite probabilities in [0, 1]; raises
    ModelOutputError naming what is wrong otherwise."""
    array = np.asarray(values, dtype="float64").ravel()
    if array.shape != (n,):
        raise ModelOutputError(f"the model gave {array.size} values for {n} texts")
    bad = ~np.isfinite(array) | (array < 0.0) | (array > 1.0)
    if bad.any():
        first = int(np.argmax(bad))
        raise ModelOutputError(
            f"the model gave {int(bad.sum())} value(s) that are not probabilities in [0, 1], "
            f"the first for text {first}: {array[first]!r}"
        )
    return array.astype("float32")
