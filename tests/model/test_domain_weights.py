"""Training weights of labelled domains: chosen on the domain's validation rows, fixed when
the config says so, and never at the cost of the aclImdb rows beyond the bound."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_model.training.config import TrainConfig
from lstm_model.training.weights import choose_domain_weights, sample_weights

VOCAB = 200
GOOD, BAD, TWIST_POSITIVE, TWIST_NEGATIVE = 2, 3, 4, 5


def _rows(labels: np.ndarray, rng: np.random.Generator, clue: float, twist: float,
          flipped: bool) -> np.ndarray:  # fmt: skip
    """Rows of 30 ids: noise words, the plain sentiment word with chance ``clue``, and the
    twist word (positive in the domain, negative on aclImdb when not ``flipped``)."""
    ids = rng.integers(10, VOCAB, size=(len(labels), 30)).astype(np.int32)
    plain = np.where(labels == 1, GOOD, BAD)
    twisted = np.where((labels == 1) == flipped, TWIST_POSITIVE, TWIST_NEGATIVE)
    ids[:, 0] = np.where(rng.random(len(labels)) < clue, plain, ids[:, 0])
    ids[:, 1] = np.where(rng.random(len(labels)) < twist, twisted, ids[:, 1])
    return ids


def _data(seed: int = 0, domain_rows: int = 300) -> tuple[tuple, tuple]:
    """aclImdb-like rows where the twist words mean the opposite of what they mean in the
    small domain "shop", split 90/10 into fit and validation rows."""
    rng = np.random.default_rng(seed)
    y_imdb = rng.integers(0, 2, 4000)
    y_shop = rng.integers(0, 2, domain_rows)
    x = np.concatenate([
        _rows(y_imdb, rng, clue=0.5, twist=0.6, flipped=False),
        _rows(y_shop, rng, clue=0.0, twist=0.9, flipped=True),
    ])  # fmt: skip
    y = np.concatenate([y_imdb, y_shop]).astype(np.int8)
    d = np.array(["imdb"] * len(y_imdb) + ["shop"] * len(y_shop), dtype=object)
    val = rng.random(len(y)) < 0.1
    return (x[~val], y[~val], d[~val]), (x[val], y[val], d[val])


def test_a_swamped_domain_gets_the_weight_its_validation_rows_choose() -> None:
    fit, validation = _data()
    config = TrainConfig(domain_weight_max_imdb_drop=1.0)

    (shop,) = choose_domain_weights(fit, validation, VOCAB, config)

    assert shop.domain == "shop" and shop.chosen_by == "validation"
    assert shop.fit_rows == int((fit[2] == "shop").sum())
    assert shop.validation_rows == int((validation[2] == "shop").sum()) > 0
    assert set(shop.tried) == {"1", "3", "10", "30"}
    at_one, chosen = shop.tried["1"], shop.tried[f"{shop.weight:g}"]
    assert shop.weight > 1
    assert chosen["log_loss"] == min(t["log_loss"] for t in shop.tried.values())
    # weight 1 leaves the domain near chance; its own weight fixes most of it
    assert at_one["accuracy"] < 0.7 < chosen["accuracy"]


def test_a_weight_that_costs_the_aclimdb_rows_too_much_is_never_chosen() -> None:
    fit, validation = _data()
    free = choose_domain_weights(
        fit, validation, VOCAB, TrainConfig(domain_weight_max_imdb_drop=1.0)
    )
    bounded = choose_domain_weights(fit, validation, VOCAB, TrainConfig())

    tried = bounded[0].tried
    floor = tried["1"]["imdb_accuracy"] - TrainConfig().domain_weight_max_imdb_drop
    # the unbounded choice costs the aclImdb rows more than the bound allows
    assert free[0].tried[f"{free[0].weight:g}"]["imdb_accuracy"] < floor
    assert bounded[0].weight < free[0].weight
    assert tried[f"{bounded[0].weight:g}"]["imdb_accuracy"] >= floor


def test_fixed_weights_win_and_a_domain_without_validation_rows_keeps_weight_one() -> None:
    fit, validation = _data()
    (shop,) = choose_domain_weights(
        fit, validation, VOCAB, TrainConfig(domain_weights={"shop": 7.5})
    )
    assert (shop.weight, shop.chosen_by, shop.tried) == (7.5, "fixed", {})

    x, y, d = validation
    keep = d != "shop"
    (unseen,) = choose_domain_weights(fit, (x[keep], y[keep], d[keep]), VOCAB, TrainConfig())
    assert (unseen.weight, unseen.chosen_by, unseen.validation_rows) == (
        1.0, "no validation rows", 0,
    )  # fmt: skip
    only_aclimdb = tuple(part[fit[2] == "imdb"] for part in fit)
    assert choose_domain_weights(only_aclimdb, validation, VOCAB, TrainConfig()) == []


def test_sample_weights_have_mean_one_and_keep_the_ratio() -> None:
    domains = np.array(["imdb"] * 90 + ["shop"] * 10, dtype=object)
    weights = sample_weights(domains, {"shop": 9.0})
    assert weights.mean() == pytest.approx(1.0)
    assert weights[-1] / weights[0] == pytest.approx(9.0)
