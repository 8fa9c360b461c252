"""Synonym-replacement data augmentation, with a synonym list built from the training data.

No word list is downloaded: word vectors come from the training rows themselves (positive
PMI of co-occurrence within a small window, reduced by a randomized SVD), and a word's
nearest neighbour becomes its synonym only if it is similar enough and leans the same way
in the labels (its naive-Bayes log-count ratio has the same sign and a close size).
Distributional neighbours are often antonyms ("good"/"bad" occur in the same contexts);
the polarity check keeps those out, so replacing words does not flip a review's label.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np

from lstm_model.data.tokeniser import PAD_ID, RESERVED

log = logging.getLogger(__name__)

NEGATIONS = frozenset(
    {"no", "not", "never", "none", "nothing", "nobody", "nor", "neither", "without", "hardly"}
)
# The tokeniser drops apostrophes: "wasn't" is "wasnt", "can't" is "cant".
_CONTRACTED = frozenset(
    {"do", "does", "did", "was", "were", "is", "are", "ca", "wo", "could", "would", "should",
     "have", "has", "had", "must", "need", "might", "ai"}
)  # fmt: skip


def is_negation(word: str) -> bool:
    """A word that turns a statement around ("not", "never", "wasnt", ...)."""
    return word in NEGATIONS or (word.endswith("nt") and word[:-2] in _CONTRACTED)


def build_synonyms(
    ids: np.ndarray,
    labels: np.ndarray,
    vocab_size: int,
    *,
    words: Sequence[str] | None = None,
    top_words: int = 5_000,
    window: int = 2,
    dim: int = 64,
    min_similarity: float = 0.6,
    max_polarity_gap: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """``synonym[id]``: the id that may replace ``id`` (``id`` itself where none qualifies).

    With ``words`` (the vocabulary, by id), a negation and a non-negation are never paired
    ("was" -> "wasnt" would flip a review).
    """
    from sklearn.utils.extmath import randomized_svd

    first = len(RESERVED)
    size = max(0, min(top_words, vocab_size - first))
    synonyms = np.arange(vocab_size, dtype=np.int32)
    if size < 2:
        return synonyms
    counts = np.zeros(size * size, dtype=np.float64)
    for offset in range(1, window + 1):
        left, right = ids[:, :-offset].ravel() - first, ids[:, offset:].ravel() - first
        keep = (left >= 0) & (left < size) & (right >= 0) & (right < size)
        counts += np.bincount(left[keep] * size + right[keep], minlength=size * size)
    matrix = counts.reshape(size, size)
    matrix += matrix.T
    total, row = matrix.sum(), matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(matrix * total / np.outer(row, row))
    ppmi = np.nan_to_num(np.maximum(pmi, 0.0), posinf=0.0).astype(np.float32)
    u, s, _ = randomized_svd(ppmi, n_components=min(dim, size - 1), random_state=seed)
    vectors = u * np.sqrt(s)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1.0)
    nearest = similarity.argmax(axis=1)
    best = similarity[np.arange(size), nearest]
    polarity = _log_count_ratio(ids, labels, first, size)
    same_lean = (np.sign(polarity) == np.sign(polarity[nearest])) & (
        np.abs(polarity - polarity[nearest]) <= max_polarity_gap
    )
    chosen = (best >= min_similarity) & same_lean
    if words is not None:
        negation = np.array([is_negation(w) for w in words[first : first + size]])
        chosen &= negation == negation[nearest]
    synonyms[first : first + size][chosen] = nearest[chosen] + first
    log.info("synonyms from the training rows: %d of the top %d words have one", chosen.sum(), size)
    return synonyms


def augment(
    ids: np.ndarray, labels: np.ndarray, synonyms: np.ndarray, *, rate: float, copies: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The rows followed by ``copies`` copies in which each word that has a synonym is
    replaced by it with probability ``rate`` (padding and unknown words stay)."""
    rng = np.random.default_rng(seed)
    replacement = synonyms[ids]
    replaceable = replacement != ids
    out = [ids]
    for _ in range(copies):
        swap = replaceable & (rng.random(ids.shape) < rate)
        out.append(np.where(swap, replacement, ids).astype(ids.dtype))
    return np.concatenate(out), np.concatenate([labels] * (copies + 1))


def _log_count_ratio(ids: np.ndarray, labels: np.ndarray, first: int, words: int) -> np.ndarray:
    """Naive-Bayes log-count ratio of each word over the rows that contain it."""
    present = np.zeros((2, words), dtype=np.float64)
    for label in (0, 1):
        rows = ids[labels == label]
        for row in rows:
            seen = np.unique(row)
            seen = seen[(seen >= first) & (seen < first + words)] - first
            present[label, seen] += 1
    pos = (present[1] + 1) / (present[1].sum() + 1)
    neg = (present[0] + 1) / (present[0].sum() + 1)
    return np.log(pos / neg)


def crop(
    ids: np.ndarray,
    labels: np.ndarray,
    *,
    copies: int,
    min_tokens: int,
    max_tokens: int,
    seed: int,
    padding: Literal["pre", "post"] = "pre",
) -> tuple[np.ndarray, np.ndarray]:
    """The rows followed by ``copies`` copies of each, cut to a random run of
    ``min_tokens`` to ``max_tokens`` of its words (a row with fewer keeps them all) and
    padded as the tokeniser pads, with the row's label: short texts made from long ones."""
    if padding not in ("pre", "post"):
        raise ValueError(f"padding must be 'pre' or 'post', not {padding!r}")
    rng = np.random.default_rng(seed)
    maxlen = ids.shape[1]
    words = ids != PAD_ID
    lengths = words.sum(axis=1)
    out = [ids]
    for _ in range(copies):
        rows = np.zeros_like(ids)
        keep = np.minimum(lengths, rng.integers(min_tokens, max_tokens + 1, size=len(ids)))
        for i, (row, mask, n, k) in enumerate(zip(ids, words, lengths, keep, strict=True)):
            tokens = row[mask]
            start = int(rng.integers(0, n - k + 1)) if n else 0
            piece = tokens[start : start + k]
            if padding == "pre":
                rows[i, maxlen - len(piece) :] = piece
            else:
                rows[i, : len(piece)] = piece
        out.append(rows)
    return np.concatenate(out), np.concatenate([labels] * (copies + 1))
