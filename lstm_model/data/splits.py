"""Splits: seeded, stratified ones of row indices (training and validation shares), and
fixed ones of labelled texts (train or test by a hash of the normalised text)."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow.compute as pc

from lstm_model.data.tokeniser import TextBatch, normalise


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int, *, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): ``fraction`` of each class to validation, seeded.

    With ``groups`` (one key per row), whole groups of a class go to validation, in a
    seeded order, until its share is reached (the last group may overshoot it); groups so
    large that a class's share overshoots by half, or leaves it no training rows, are
    refused (ValueError).
    """
    if groups is not None and len(groups) != len(labels):
        raise ValueError(f"{len(groups)} groups for {len(labels)} rows: one group per row")
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    validation: list[np.ndarray] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        cut = round(len(members) * fraction)
        if groups is None:
            members = rng.permutation(members)
            held = np.zeros(len(members), dtype=bool)
            held[:cut] = True
        else:
            _, group = np.unique(groups[members], return_inverse=True)
            order = rng.permutation(group.max() + 1)
            filled = np.cumsum(np.bincount(group)[order])
            taken = order[: int(np.searchsorted(filled, cut)) + 1] if cut else order[:0]
            held = np.isin(group, taken)
            if held.all() or held.sum() > 1.5 * cut:
                raise ValueError(
                    f"groups too large for a validation share of {fraction}: class {label} "
                    f"would hold out {int(held.sum())} of its {len(members)} rows"
                )
        validation.append(members[held])
        train.append(members[~held])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))


def id_blocks(review_ids: np.ndarray, block: int) -> np.ndarray | None:
    """Groups of ``block`` consecutive review ids (``stratified_split``'s ``groups``); None
    for ``block`` 1, single rows. aclImdb numbers each movie's reviews consecutively."""
    if block < 1:
        raise ValueError(f"a run of review ids holds at least 1 id, not {block}")
    return None if block == 1 else np.asarray(review_ids, dtype=np.int64) // block


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
