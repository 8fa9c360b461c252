"""Splits: seeded, stratified ones of row indices (training and validation shares), and
fixed ones of labelled texts (train or test by a hash of the normalised text)."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow.compute as pc

from lstm_model.data.tokeniser import TextBatch, normalise


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): ``fraction`` of each class to validation, seeded."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    validation: list[np.ndarray] = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = round(len(members) * fraction)
        validation.append(members[:cut])
        train.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))


def text_keys(texts: TextBatch) -> list[str]:
    """One key per text: the sha256 of its normalised form (the tokeniser's rules, runs of
    spaces made one), so texts that differ only in case, markup or punctuation share it."""
    collapsed = pc.replace_substring_regex(normalise(texts), r"\s+", " ")
    return [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in collapsed.to_pylist()]


def fixed_split(key: str, test_share: float) -> str:
    """``"test"`` or ``"train"`` by the text's key alone: the same text lands in the same
    split whatever file brings it and however often it comes, and about ``test_share`` of
    texts are held out."""
    position = int(hashlib.sha256(f"split:{key}".encode()).hexdigest()[:16], 16) / 2**64
    return "test" if position < test_share else "train"
