"""Checks a model's outputs must pass before anyone relies on them.

Two checks, shared by batch scoring and the prediction service:

- ``check_probabilities`` (defined in ``lstm_model.model.outputs`` with
  ``ModelOutputError``, and importable from here): one finite probability in [0, 1] per
  text, at every call;
- ``verify_canary``: at load, the model scores the fixed ``CANARY_TEXTS`` and must give the
  probabilities recorded for the same format (``keras``, ``saved_model``, ``tflite``) when
  the version was registered (Keras) and exported (the other two). A model that loads but
  computes something else (swapped weights, a broken kernel, a re-hashed manifest over
  other files) fails it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lstm_model.model.outputs import ModelOutputError, check_probabilities

CANARY_TEXTS: tuple[str, ...] = (
    "One of the best films I have seen: moving, funny and beautifully acted.",
    "A dull, predictable mess. I want those two hours of my life back.",
    "ok",
    "Not bad at all, though the ending drags.<br /><br />Worth a look.",
    "Ce film était magnifique — 10/10 😀",
    "worst. movie. ever!!!",
    " ".join(["great"] * 400 + ["awful"] * 400),
)
CANARY_TOLERANCE = 1e-4
"""Largest |difference| from the recorded canary probabilities: the export parity bound."""


def canary_probabilities(
    predict: Callable[[Sequence[str]], Any], texts: Sequence[str] = CANARY_TEXTS
) -> list[float]:
    """The probabilities ``predict`` gives ``texts`` (checked), to record or compare."""
    values = check_probabilities(predict(list(texts)), len(texts))
    return [float(v) for v in values]


def record_canary(
    predict: Callable[[Sequence[str]], Any], fmt: str, record: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A manifest's ``canary`` record with ``fmt``'s probabilities added (the texts are
    recorded too, so a later change of ``CANARY_TEXTS`` leaves old versions checkable)."""
    record = dict(record or {"texts": list(CANARY_TEXTS)})
    record[fmt] = canary_probabilities(predict, record["texts"])
    return record


def verify_canary(
    predict: Callable[[Sequence[str]], Any],
    record: dict[str, Any] | None,
    fmt: str,
    what: str,
    tolerance: float = CANARY_TOLERANCE,
) -> float | None:
    """Score the recorded canary texts with ``predict`` and compare with ``fmt``'s recorded
    probabilities; return the largest difference. Raises ModelOutputError.

    A version registered before canaries were recorded has none: then only the output check
    applies (one probability per text) and the result is None.
    """
    if not record or fmt not in record:
        canary_probabilities(predict)
        return None
    texts, recorded = record.get("texts"), record[fmt]
    if (
        not isinstance(texts, list)
        or not isinstance(recorded, list)
        or len(texts) != len(recorded)
        or not all(isinstance(t, str) for t in texts)
    ):
        raise ModelOutputError(f"{what}: its canary record is malformed")
    got = canary_probabilities(predict, texts)
    diff = float(np.max(np.abs(np.asarray(got) - np.asarray(recorded, dtype="float64"))))
    if not diff <= tolerance:
        raise ModelOutputError(
            f"{what}: the canary texts score up to {diff:.2e} away from the probabilities "
            f"recorded for its {fmt} model (tolerance {tolerance:.0e}): it computes "
            "something else"
        )
    return diff
