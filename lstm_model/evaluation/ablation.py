"""What each branch of a multi-branch model contributes, measured on the test split.

The combiner (the ``probability`` layer) weighs the branches' logits. Two views per branch:

- *alone*: the branch's own logit, the classifier it was while training fitted it before
  the combiner;
- *removed*: the full model with that branch's weight in the combiner set to zero, the
  other weights and the bias unchanged (knocked out, not refitted: refitting needs the
  validation rows, and the test split never chooses anything).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from lstm_model.model.labels import THRESHOLD

BRANCH_NAMES = {"ngram_logit": "n-grams", "lstm_logit": "LSTM", "nbsvm_logit": "NBSVM"}


class AblationRow(BaseModel):
    """One variant of the model and its test accuracy."""

    model_config = ConfigDict(frozen=True)

    variant: str
    accuracy: float
    change: float
    """Accuracy minus the full model's, in accuracy units (0.003 = 0.3 points)."""


def branch_ablation(model: Any, x: np.ndarray, y: np.ndarray) -> list[AblationRow]:
    """The full model, each branch alone and each branch removed (empty for a model with
    one branch)."""
    import keras

    from lstm_model.model.builders import BRANCH_LOGITS

    present = [name for name in BRANCH_LOGITS if name in {layer.name for layer in model.layers}]
    if len(present) < 2:
        return []
    logits_model = keras.Model(model.inputs, [model.get_layer(n).output for n in present])
    logits = np.concatenate(
        [
            np.asarray(out).reshape(len(x), 1)
            for out in logits_model.predict(x, batch_size=512, verbose=0)
        ],
        axis=1,
    ).astype("float64")
    kernel, bias = (
        np.asarray(w, dtype="float64") for w in model.get_layer("probability").get_weights()
    )
    truth = np.asarray(y).ravel().astype(bool)

    def accuracy(logit: np.ndarray) -> float:
        return float(np.mean((1.0 / (1.0 + np.exp(-logit)) >= THRESHOLD) == truth))

    full = accuracy(logits @ kernel.ravel() + bias[0])
    rows = [AblationRow(variant="full model", accuracy=full, change=0.0)]
    for i, name in enumerate(present):
        alone = accuracy(logits[:, i])
        rows.append(
            AblationRow(variant=f"{BRANCH_NAMES[name]} alone", accuracy=alone, change=alone - full)
        )
    for i, name in enumerate(present):
        weights = kernel.ravel().copy()
        weights[i] = 0.0
        removed = accuracy(logits @ weights + bias[0])
        rows.append(
            AblationRow(
                variant=f"without {BRANCH_NAMES[name]}", accuracy=removed, change=removed - full
            )
        )
    return rows


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
