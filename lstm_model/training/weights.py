"""Training weights of the labelled domains.

A drop of a few hundred texts beside 25,000 aclImdb reviews barely moves a fit, so each
labelled domain gets a weight: its rows count that many times an aclImdb review. A weight
is fixed by the training config, or chosen on the domain's own validation rows (the
validation share of the train split, never its test share): for each candidate weight a
naive-Bayes logistic regression over word counts (Wang & Manning's NBSVM features, a few
seconds per fit) is trained on the fit rows, and the candidate with the lowest log loss on
the domain's validation rows wins, unless it costs the aclImdb validation rows more than
``domain_weight_max_imdb_drop`` of accuracy. The chosen weights then weigh every stage of
the real fit. Weights are scaled to mean 1 over the fit rows, so the learning rates and the
regularisation keep their meaning.

Owns: ``choose_domain_weights``, ``sample_weights``, ``nb_ratios``.
Imports numpy, scipy and scikit-learn, never Keras.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from lstm_model.data.config import ACLIMDB_DOMAIN
from lstm_model.training.config import TrainConfig
from lstm_model.training.result import DomainWeight

log = logging.getLogger(__name__)

_PROBE_C = 0.1


def choose_domain_weights(
    fit: tuple[np.ndarray, np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray, np.ndarray],
    vocab_size: int,
    config: TrainConfig,
) -> list[DomainWeight]:
    """The weight of every labelled domain among the fit rows: fixed, or chosen (see above).

    ``fit`` and ``validation`` are (token ids, labels, domain of each row).
    """
    x_fit, y_fit, d_fit = fit
    x_val, y_val, d_val = validation
    labelled = sorted(set(d_fit.tolist()) - {ACLIMDB_DOMAIN})
    if not labelled:
        return []
    fixed = {d: config.domain_weights[d] for d in labelled if d in config.domain_weights}
    chosen: list[DomainWeight] = []
    features = scaled = None
    for domain in labelled:
        fit_rows, val_rows = int((d_fit == domain).sum()), int((d_val == domain).sum())
        if domain in fixed:
            chosen.append(DomainWeight(domain=domain, weight=fixed[domain], chosen_by="fixed",
                                       fit_rows=fit_rows, validation_rows=val_rows))  # fmt: skip
            continue
        if val_rows == 0 or len(config.domain_weight_candidates) == 1:
            by = "no validation rows" if val_rows == 0 else "fixed"
            weight = 1.0 if val_rows == 0 else config.domain_weight_candidates[0]
            chosen.append(DomainWeight(domain=domain, weight=weight, chosen_by=by,
                                       fit_rows=fit_rows, validation_rows=val_rows))  # fmt: skip
            continue
        if features is None:
            features, scaled = word_counts(x_fit, vocab_size), word_counts(x_val, vocab_size)
        tried = {}
        for candidate in sorted({1.0, *config.domain_weight_candidates}):
            weights = sample_weights(d_fit, {**fixed, domain: candidate})
            probability = _probe(features, y_fit, weights, scaled)
            tried[candidate] = _scores(probability, y_val, d_val, domain)
        floor = tried[1.0]["imdb_accuracy"] - config.domain_weight_max_imdb_drop
        allowed = [c for c in config.domain_weight_candidates if tried[c]["imdb_accuracy"] >= floor]
        best = min(allowed or [1.0], key=lambda c: (tried[c]["log_loss"], c))
        weight = DomainWeight(
            domain=domain, weight=best, chosen_by="validation", fit_rows=fit_rows,
            validation_rows=val_rows, tried={f"{c:g}": s for c, s in tried.items()},
        )  # fmt: skip
        chosen.append(weight)
    for weight in chosen:
        log.info("domain weight %s", weight.describe())
    return chosen


def sample_weights(domains: np.ndarray, weights: Mapping[str, float]) -> np.ndarray:
    """Each row's weight (its domain's, 1 for domains not given), scaled to mean 1."""
    out = np.ones(len(domains), dtype=np.float32)
    for domain, weight in weights.items():
        out[domains == domain] = weight
    return out / out.mean() if len(out) else out


def nb_ratios(
    features: sp.csr_matrix, labels: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Naive-Bayes log-count ratios of each feature, from its (weighted) presence in
    positive against negative rows, with add-one smoothing."""
    present = (features > 0).astype(np.float32)
    if weights is not None:
        present = sp.diags(weights.astype(np.float32)) @ present
    positive = np.asarray(present[labels == 1].sum(axis=0)).ravel() + 1.0
    negative = np.asarray(present[labels == 0].sum(axis=0)).ravel() + 1.0
    return np.log((positive / positive.sum()) / (negative / negative.sum())).astype(np.float32)


def word_counts(ids: np.ndarray, vocab_size: int) -> sp.csr_matrix:
    """Counts of each known word id per row (padding and unknown words left out)."""
    rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)
    known = ids >= 2
    matrix = sp.csr_matrix(
        (np.ones(int(known.sum()), np.float32), (rows[known], ids[known].astype(np.int64))),
        shape=(len(ids), vocab_size),
    )
    matrix.sum_duplicates()
    return matrix


def _probe(
    features: sp.csr_matrix, labels: np.ndarray, weights: np.ndarray, validation: sp.csr_matrix
) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    scale = sp.diags(nb_ratios(features, labels, weights))
    binary = (features > 0).astype(np.float32)
    regression = LogisticRegression(C=_PROBE_C, solver="liblinear", max_iter=1000)
    regression.fit(binary @ scale, labels, sample_weight=weights)
    return regression.predict_proba((validation > 0).astype(np.float32) @ scale)[:, 1]


def _scores(
    probability: np.ndarray, labels: np.ndarray, domains: np.ndarray, domain: str
) -> dict[str, float]:
    mine, imdb = domains == domain, domains == ACLIMDB_DOMAIN
    p = np.clip(probability[mine], 1e-7, 1 - 1e-7)
    y = labels[mine]
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    accuracy = float(np.mean((p >= 0.5) == (y == 1)))
    imdb_accuracy = float(np.mean((probability[imdb] >= 0.5) == (labels[imdb] == 1)))
    return {
        "log_loss": round(loss, 5),
        "accuracy": round(accuracy, 5),
        "imdb_accuracy": round(imdb_accuracy, 5) if imdb.any() else 1.0,
    }
