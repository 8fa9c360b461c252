"""Shared fixtures: the committed aclImdb sample and workspaces built from it."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from lstm_model.data.config import TokeniserConfig
from lstm_model.model.config import ModelConfig
from lstm_model.training.config import TrainConfig

FIXTURE = Path(__file__).parent / "fixtures" / "aclImdb_sample.tar.gz"
FIXTURE_REVIEWS = 408  # 100 per split and polarity + 4 texts that are in both splits

# Bounds of the reviews contract that the few-hundred-review fixture satisfies.
FIXTURE_CONTRACT = {"min_rows": 100}


def tiny_flow_kwargs(**overrides: object) -> dict[str, object]:
    """Flow parameters for a model that trains on the fixture in seconds."""
    from data_contracts.config import ReviewsContractConfig
    from lstm_model.data.config import TokeniserConfig
    from lstm_model.evaluation.config import GateConfig
    from lstm_model.model.config import ModelConfig
    from lstm_model.release.config import ExportConfig
    from lstm_model.training.config import TrainConfig

    return {
        "tokeniser": TokeniserConfig(vocab_size=2000, maxlen=40),
        "model": ModelConfig(units=8, embedding_dim=8, ngram_buckets=4096),
        "training": TrainConfig(epochs=2, batch_size=32),
        # the tiny model need not beat the fixture's baseline
        "gate_config": GateConfig(min_accuracy=0.0, min_margin_over_baseline=None),
        "export_config": ExportConfig(tflite_batch_size=16),
        "reviews_contract": ReviewsContractConfig(**FIXTURE_CONTRACT),
        **overrides,
    }


os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def fixture_archive() -> Path:
    return FIXTURE


@pytest.fixture(scope="session")
def fixture_members() -> dict[str, bytes]:
    """Every file of the fixture archive, by its name in the archive."""
    with tarfile.open(FIXTURE) as archive:
        return {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }


@pytest.fixture
def make_archive(tmp_path: Path, fixture_members: dict[str, bytes]) -> Callable[..., Path]:
    """Build a .tar.gz from the fixture's files, with some replaced, added or dropped."""

    def build(
        name: str = "archive.tar.gz",
        *,
        add: dict[str, bytes] | None = None,
        drop: Callable[[str], bool] = lambda _: False,
        folders: tuple[str, ...] = (),
    ) -> Path:
        files = {k: v for k, v in fixture_members.items() if not drop(k)}
        files.update(add or {})
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as archive:
            for folder in folders:
                info = tarfile.TarInfo(folder)
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            for member, data in sorted(files.items()):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return path

    return build


@pytest.fixture(scope="session")
def ingested(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The fixture ingested once into a session workspace (IngestResult)."""
    from lstm_model.data.ingest import ingest_reviews
    from lstm_model.data.sources import resolve_source

    workspace = tmp_path_factory.mktemp("workspace")
    return ingest_reviews(resolve_source(str(FIXTURE)), workspace)


@pytest.fixture(scope="session")
def reviews_frame(ingested):  # type: ignore[no-untyped-def]
    from lstm_model.data.ingest import load_reviews

    return load_reviews(ingested).to_pandas()


# ---------------------------------------------------------- tiny models on the fixture

# Two branches like the default model (LSTM on the last 30 of 40 tokens + n-grams).
TINY_MODEL = ModelConfig(units=8, embedding_dim=8, lstm_maxlen=30, ngram_buckets=4096)
TINY_TRAIN = TrainConfig(epochs=2, ngram_epochs=2, batch_size=32)


@pytest.fixture(scope="session")
def tokenised(ingested, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from lstm_model.data.dataset import tokenise_reviews

    return tokenise_reviews(
        ingested, TokeniserConfig(vocab_size=2000, maxlen=40), tmp_path_factory.mktemp("tok")
    )


@pytest.fixture(scope="session")
def trained(tokenised, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from lstm_model.training.fit import train_model

    return train_model(tokenised, TINY_MODEL, TINY_TRAIN, tmp_path_factory.mktemp("run"), verbose=0)


@pytest.fixture(scope="session")
def evaluation(trained, tokenised, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from lstm_model.evaluation.evaluate import evaluate_model

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
    from lstm_model.release.promotion import register_candidate
    from lstm_model.release.registry import Registry

    root = tmp_path_factory.mktemp("registry")
    version = register_candidate(
        root, trained, evaluation, tokenised, model_config=TINY_MODEL, train_config=TINY_TRAIN
    )
    registry = Registry(root)
    registry.set_status(version, "accepted", "test champion")
    registry.promote(version, "imdb_sentiment")
    return root


MODEL_NAME = "imdb_sentiment"


@pytest.fixture(scope="session")
def exported_registry(trained, evaluation, tokenised, ingested, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """Versions 1 and 2 (another seed), both exported and accepted; 1 is the champion.
    Copy it before changing it."""
    from lstm_model.evaluation.evaluate import evaluate_model
    from lstm_model.release.config import ExportConfig
    from lstm_model.release.promotion import export_candidate, register_candidate
    from lstm_model.release.registry import Registry
    from lstm_model.training.fit import train_model

    root = tmp_path_factory.mktemp("exported") / "registry"
    export = ExportConfig(tflite_batch_size=16)
    other_train = TINY_TRAIN.model_copy(update={"seed": 7})
    other = train_model(
        tokenised, TINY_MODEL, other_train, tmp_path_factory.mktemp("v2"), verbose=0
    )
    other_eval = evaluate_model(
        other.model_path, tokenised, other.history, tmp_path_factory.mktemp("v2eval")
    )
    for model, ev, train in ((trained, evaluation, TINY_TRAIN), (other, other_eval, other_train)):
        version = register_candidate(
            root, model, ev, tokenised, model_config=TINY_MODEL, train_config=train
        )
        assert export_candidate(root, version, ingested, export).passed
    Registry(root).promote(1, MODEL_NAME)
    return root
