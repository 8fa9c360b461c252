"""Test metrics per slice: aclImdb test, and the test share of each domain of labelled data.

A slice's accuracy comes with a 95% Wilson score interval: a slice of a few hundred texts
moves by several points between two equally good models, and the interval says how far.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from lstm_model.data.config import ACLIMDB_DOMAIN
from lstm_model.data.spans import Span, load_span
from lstm_model.model.labels import THRESHOLD
from lstm_model.training.result import DomainWeight

Z_95 = 1.959964

Predictor = Callable[[list[str]], np.ndarray]
"""Texts -> probabilities of the positive class."""


class SliceMetrics(BaseModel):
    """One slice's test metrics at threshold 0.5."""

    model_config = ConfigDict(frozen=True)

    slice: str
    n: int
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    f1: float
    roc_auc: float | None
    """None when the slice holds one label only (no ranking to measure)."""


class SliceTexts(BaseModel):
    """The test texts of one slice and their labels."""

    model_config = ConfigDict(frozen=True)

    slice: str
    texts: list[str]
    labels: list[int]


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``correct / n``."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def slice_metrics(name: str, labels: Sequence[int], probabilities: np.ndarray) -> SliceMetrics:
    """Metrics of one slice."""
    from sklearn import metrics as skm

    y = np.asarray(labels, dtype=int)
    p = np.asarray(probabilities, dtype="float64").ravel()
    predicted = (p >= THRESHOLD).astype(int)
    correct = int((predicted == y).sum())
    low, high = wilson_interval(correct, len(y))
    return SliceMetrics(
        slice=name,
        n=len(y),
        accuracy=correct / len(y) if len(y) else 0.0,
        accuracy_low=low,
        accuracy_high=high,
        f1=float(skm.f1_score(y, predicted, zero_division=0)),
        roc_auc=float(skm.roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else None,
    )


def domain_slices(spans: list[Span]) -> list[SliceTexts]:
    """The test share of every domain in ``spans``, one slice per domain, by name."""
    grouped: dict[str, tuple[list[str], list[int]]] = {}
    for span in spans:
        rows = load_span(span, ["text", "label", "domain", "split"])
        rows = rows.filter(pc.equal(rows["split"], "test"))
        for text, label, domain in zip(
            rows["text"].to_pylist(),
            rows["label"].to_pylist(),
            rows["domain"].to_pylist(),
            strict=True,
        ):
            texts, labels = grouped.setdefault(domain, ([], []))
            texts.append(text)
            labels.append(label)
    return [
        SliceTexts(slice=name, texts=texts, labels=labels)
        for name, (texts, labels) in sorted(grouped.items())
    ]


def score_slices(
    imdb_labels: np.ndarray,
    imdb_probabilities: np.ndarray,
    slices: list[SliceTexts],
    predict: Predictor,
) -> list[SliceMetrics]:
    """aclImdb test first (its probabilities given), then each domain slice, scored now."""
    scored = [slice_metrics(ACLIMDB_DOMAIN, imdb_labels.tolist(), imdb_probabilities)]
    for part in slices:
        scored.append(slice_metrics(part.slice, part.labels, predict(part.texts)))
    return scored


def render_slices(slices: list[SliceMetrics]) -> str:
    """A markdown table of the slices."""
    rows = "\n".join(
        f"| {s.slice} | {s.n} | {s.accuracy:.4f} | {s.accuracy_low:.4f}-{s.accuracy_high:.4f} "
        f"| {s.f1:.4f} | {'-' if s.roc_auc is None else f'{s.roc_auc:.4f}'} |"
        for s in slices
    )
    return (
        "## Slices\n\n| slice | n | accuracy | 95% interval | F1 | ROC AUC |\n"
        f"|---|---|---|---|---|---|\n{rows}\n"
    )


def render_domain_weights(weights: Sequence[DomainWeight]) -> str:
    """A markdown table of the training weight each labelled domain had ('' when none)."""
    if not weights:
        return ""
    rows = "\n".join(
        f"| {w.domain} | {w.weight:g} | {w.chosen_by} | {w.fit_rows} | {w.validation_rows} | "
        + (", ".join(f"{c}: {t['log_loss']:.3f}" for c, t in w.tried.items()) or "-")
        + " |"
        for w in weights
    )
    return (
        "## Domain weights\n\nEach row of a domain counted this many times an aclImdb review "
        "in training.\n\n| domain | weight | chosen by | fit rows | validation rows "
        "| validation log loss per weight tried |\n|---|---|---|---|---|---|\n"
        f"{rows}\n"
    )
