"""What each branch of a multi-branch model contributes, measured on the test split.

The combiner (the ``probability`` layer) weighs the branches' logits. Two views per branch:

- *alone*: the branch's own logit, the classifier it was while training fitted it before
  the combiner;
- *removed*: the full model with that branch's weight in the combiner set to zero, the
  other weights and the bias unchanged (knocked out, not refitted: refitting needs the
  validation rows, and the test split never chooses anything).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from lstm_model.model.labels import THRESHOLD

BRANCH_NAMES = {"ngram_logit": "n-grams", "lstm_logit": "LSTM", "nbsvm_logit": "NBSVM"}
COMBINER = "probability"
"""The layer that weighs the branches' logits (the builder's output layer)."""


class AblationRow(BaseModel):
    """One variant of the model and its test accuracy."""

    model_config = ConfigDict(frozen=True)

    variant: str
    accuracy: float
    change: float
    """Accuracy minus the full model's, in accuracy units (0.003 = 0.3 points)."""


def predict_branches(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The model's probabilities and, for a model of several branches, their logits
    (texts x branches, in the combiner's order), from one pass over ``x``."""
    import keras

    present = _branches(model)
    if len(present) < 2:
        return model.predict(x, batch_size=512, verbose=0).ravel(), None
    both = keras.Model(
        model.inputs, [model.outputs[0], *(model.get_layer(name).output for name in present)]
    )
    probabilities, *logits = both.predict(x, batch_size=512, verbose=0)
    columns = [np.asarray(logit, dtype="float64").reshape(len(x), 1) for logit in logits]
    return np.asarray(probabilities).ravel(), np.concatenate(columns, axis=1)


def branch_ablation(
    model: Any, probabilities: np.ndarray, logits: np.ndarray | None, y: np.ndarray
) -> list[AblationRow]:
    """The full model (its own ``probabilities``), each branch alone and each branch
    removed, from ``predict_branches``; empty for one branch or no texts."""
    truth = np.asarray(y).ravel().astype(bool)
    if logits is None or not len(truth):
        return []
    present = _branches(model)
    kernel, bias = (np.asarray(w, dtype="float64") for w in model.get_layer(COMBINER).get_weights())
    if kernel.size != len(present) or logits.shape[1] != len(present):
        raise ValueError(
            f"the combiner weighs {kernel.size} logits, the model has {len(present)} branches "
            f"({', '.join(present)}): not a model the builder made"
        )
    cut = math.log(THRESHOLD / (1.0 - THRESHOLD))  # the threshold as a logit: no overflow

    def accuracy(logit: np.ndarray) -> float:
        return float(np.mean((logit >= cut) == truth))

    full = float(np.mean((np.asarray(probabilities).ravel() >= THRESHOLD) == truth))
    rows = [AblationRow(variant="full model", accuracy=full, change=0.0)]
    for i, name in enumerate(present):
        alone = accuracy(logits[:, i])
        rows.append(
            AblationRow(variant=f"{BRANCH_NAMES[name]} alone", accuracy=alone, change=alone - full)
        )
    for i, name in enumerate(present):
        weights = kernel.ravel().copy()
        weights[i] = 0.0
        removed = accuracy(logits @ weights + bias.ravel()[0])
        rows.append(
            AblationRow(
                variant=f"without {BRANCH_NAMES[name]}", accuracy=removed, change=removed - full
            )
        )
    return rows


def _branches(model: Any) -> list[str]:
    from lstm_model.model.builders import BRANCH_LOGITS

    names = {layer.name for layer in model.layers}
    return [name for name in BRANCH_LOGITS if name in names]


def render_ablation(rows: list[AblationRow]) -> str:
    """The ablation as a markdown section (empty for a one-branch model)."""
    if not rows:
        return ""
    lines = [
        "## What each branch contributes (test split)",
        "",
        "Alone: the branch's own logit, as training fitted it. Without: the full model with",
        "that branch's combiner weight at zero, nothing refitted.",
        "",
        "| variant | accuracy | change (points) |",
        "|---|---|---|",
    ]
    lines += [f"| {r.variant} | {r.accuracy:.4f} | {r.change * 100:+.2f} |" for r in rows]
    return "\n".join(lines) + "\n"
