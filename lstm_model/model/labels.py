"""The decision threshold and the label names that evaluation, scoring and serving share."""

from __future__ import annotations

from collections.abc import Iterable

THRESHOLD = 0.5
"""A probability at or above it is the positive label."""
LABELS = ("negative", "positive")
"""Label names by label id (0, 1)."""


def labels_of(probabilities: Iterable[float]) -> list[str]:
    """The label name of each probability, at ``THRESHOLD``."""
    return [LABELS[int(p >= THRESHOLD)] for p in probabilities]
