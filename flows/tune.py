"""The tuning flow: ingest -> validate -> tokenise (widest sizes) -> Keras Tuner search."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.config import (
    ReviewsContractConfig,
    SearchSpace,
    TrainConfig,
    TuningConfig,
    default_workspace,
)
from lstm_model.training.named import TuningResult
from tasks.data import ingest, resolve_source, tokenise, validate_reviews
from tasks.tuning import tune


@flow(
    name="tune",
    description="Search LSTM hyperparameters with Keras Tuner on the validation share of the "
    "train split; save the best configuration by name for the retraining flow.",
)
def tune_hyperparameters(
    source: str | None = None,
    workspace: Path | None = None,
    space: SearchSpace = SearchSpace(),  # noqa: B008 - frozen, safe default
    tuning: TuningConfig = TuningConfig(),  # noqa: B008
    training: TrainConfig = TrainConfig(),  # noqa: B008
    reviews_contract: ReviewsContractConfig = ReviewsContractConfig(),  # noqa: B008
) -> TuningResult:
    """Run the search; started again with the same inputs it continues where it stopped.

    Args:
        source: aclImdb archive, folder or http(s) URL; empty resolves it (see README).
        workspace: folder for all artifacts; empty means $LSTM_PIPELINE_HOME or ./artifacts.
        space: the hyperparameters searched and their ranges.
        tuning: algorithm (random or hyperband), trials, epochs, the saved config's name.
        training: batch size, learning rate, validation share and seed of every trial.
        reviews_contract: bounds of the imdb_reviews data contract.
    """
    root = (workspace or default_workspace()).resolve()
    reviews = ingest(resolve_source(source), root)
    contract = validate_reviews(reviews, root, reviews_contract)
    tokenised = tokenise(reviews, space.widest_tokeniser(), root, wait_for=[contract])
    return tune(tokenised, space, tuning, training, root)
