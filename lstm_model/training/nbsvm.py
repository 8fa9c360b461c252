"""The NBSVM branch's fit (Wang & Manning, 2012), in closed form outside Keras.

Features are the counts of every known word and hashed bigram of a row (the model's own
``nbsvm_bigram_ids``), scaled by their naive-Bayes log-count ratios; liblinear fits the
logistic regression. The weights times the ratios are one score per word and bigram, the
branch's two frozen tables.

Owns: ``fit_nbsvm`` (into a model) and ``out_of_fold_logits`` (each fit row's logit from a
fit that never saw it, what the LSTM's residual stage learns beside).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import keras
import numpy as np
import scipy.sparse as sp

from lstm_model.model.builders import NBSVM_LOGIT
from lstm_model.training.weights import nb_ratios

log = logging.getLogger(__name__)


class _Fitted(NamedTuple):
    table: np.ndarray  # one score per word id, then per bigram id (0: no bigram)
    intercept: np.ndarray


def fit_nbsvm(
    model: keras.Model,
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    c: float,
    weights: np.ndarray | None = None,
) -> float:
    """Fit the NBSVM branch on the fit rows and freeze it into the model; its validation
    accuracy. ``weights`` weigh the fit rows in the ratios and the regression."""
    vocab = model.get_layer("nbsvm_words").input_dim
    fitted = _fit(_counts(model, x_fit), y_fit, c, weights, vocab)
    model.get_layer("nbsvm_words").set_weights([fitted.table[:vocab, None]])
    model.get_layer("nbsvm_bigrams").set_weights([fitted.table[vocab:, None]])
    model.get_layer(NBSVM_LOGIT).set_weights([fitted.intercept])
    x_val, y_val = validation
    logits = _counts(model, x_val) @ fitted.table.astype(np.float64) + fitted.intercept[0]
    accuracy = float(np.mean((logits > 0) == (y_val == 1)))
    log.info("NBSVM branch: %d features, validation accuracy %.4f", len(fitted.table), accuracy)
    return accuracy


def out_of_fold_logits(
    model: keras.Model,
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    groups: np.ndarray,
    *,
    folds: int,
    c: float,
    seed: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Each fit row's NBSVM logit from a fit on the other ``folds - 1`` folds.

    Rows of one group (a review and its augmented copies) share a fold, so no copy of a
    row helps score it. A row's in-sample logit is far more confident than a new review's,
    so a stage that learns beside it would see almost nothing left to learn.
    """
    if folds < 2:
        raise ValueError(f"out-of-fold logits need at least 2 folds, not {folds}")
    for name, values in (("groups", groups), ("weights", weights), ("labels", y_fit)):
        if values is not None and len(values) != len(x_fit):
            raise ValueError(f"{len(values)} {name} for {len(x_fit)} rows: one per row")
    unique, group_of_row = np.unique(groups, return_inverse=True)
    if len(unique) < folds:
        raise ValueError(f"{len(unique)} groups of rows cannot make {folds} folds")
    fold_of_group = np.random.default_rng(seed).permutation(len(unique)) % folds
    fold = fold_of_group[group_of_row]
    vocab = model.get_layer("nbsvm_words").input_dim
    features = _counts(model, x_fit)
    logits = np.empty(len(x_fit), dtype=np.float32)
    for k in range(folds):
        held = fold == k
        fitted = _fit(
            features[~held], y_fit[~held], c, None if weights is None else weights[~held], vocab
        )
        logits[held] = features[held] @ fitted.table + fitted.intercept[0]
    accuracy = float(np.mean((logits > 0) == (y_fit == 1)))
    log.info("NBSVM out-of-fold logits: %d folds, accuracy %.4f on the fit rows", folds, accuracy)
    return logits


def _counts(model: keras.Model, ids: np.ndarray) -> sp.csr_matrix:
    """Per row, the counts of each known word id, then of each hashed bigram id."""
    bigram_ids = model.get_layer("nbsvm_bigram_ids")
    vocab = model.get_layer("nbsvm_words").input_dim
    grams = np.concatenate(
        [
            keras.ops.convert_to_numpy(bigram_ids(ids[i : i + 4096]))
            for i in range(0, len(ids), 4096)
        ]
    ).astype(np.int64)
    rows = np.arange(len(ids))
    known, seen = ids >= 2, grams > 0
    matrix = sp.csr_matrix(
        (
            np.ones(int(known.sum() + seen.sum()), np.float32),
            (
                np.concatenate([np.broadcast_to(rows[:, None], ids.shape)[known],
                                np.broadcast_to(rows[:, None], grams.shape)[seen]]),
                np.concatenate([ids[known].astype(np.int64), vocab + grams[seen]]),
            ),
        ),
        shape=(len(ids), vocab + bigram_ids.buckets + 1),
    )  # fmt: skip
    matrix.sum_duplicates()
    return matrix


def _fit(
    features: sp.csr_matrix, y: np.ndarray, c: float, weights: np.ndarray | None, vocab: int
) -> _Fitted:
    from sklearn.linear_model import LogisticRegression

    ratios = nb_ratios(features, y, weights)
    regression = LogisticRegression(C=c, solver="liblinear", max_iter=1000)
    regression.fit(features @ sp.diags(ratios), y, sample_weight=weights)
    table = (regression.coef_.ravel() * ratios).astype(np.float32)
    table[:2] = 0.0  # padding and unknown words never count
    table[vocab] = 0.0  # bigram id 0: "no bigram"
    return _Fitted(table, regression.intercept_.astype(np.float32))
