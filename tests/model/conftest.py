"""Tiny models trained on the fixture, shared by the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstm_model.config import ModelConfig, TokeniserConfig, TrainConfig

# Two branches like the default model (LSTM on the last 30 of 40 tokens + n-grams).
TINY_MODEL = ModelConfig(units=8, embedding_dim=8, lstm_maxlen=30, ngram_buckets=4096)
TINY_TRAIN = TrainConfig(epochs=2, ngram_epochs=2, batch_size=32)


@pytest.fixture(scope="session")
def tokenised(ingested, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from lstm_model.dataset import tokenise_reviews

    return tokenise_reviews(
        ingested, TokeniserConfig(vocab_size=2000, maxlen=40), tmp_path_factory.mktemp("tok")
    )


@pytest.fixture(scope="session")
def trained(tokenised, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from lstm_model.training import train_model

    return train_model(tokenised, TINY_MODEL, TINY_TRAIN, tmp_path_factory.mktemp("run"), verbose=0)


@pytest.fixture(scope="session")
def evaluation(trained, tokenised, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from lstm_model.evaluate import evaluate_model

    return evaluate_model(
        trained.model_path, tokenised, trained.history, tmp_path_factory.mktemp("ev")
    )


@pytest.fixture
def registry_root(tmp_path: Path) -> Path:
    return tmp_path / "registry"


@pytest.fixture(scope="session")
def registry_with_champion(trained, evaluation, tokenised, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A tiny champion trained on the fixture (promoted without export: scoring reads
    only the Keras model and the tokeniser)."""
    from lstm_model.registry import Registry
    from lstm_model.release import register_candidate

    root = tmp_path_factory.mktemp("registry")
    version = register_candidate(
        root, trained, evaluation, tokenised, model_config=TINY_MODEL, train_config=TINY_TRAIN
    )
    registry = Registry(root)
    registry.set_status(version, "accepted", "test champion")
    registry.promote(version, "imdb_sentiment")
    return root
