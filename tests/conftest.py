"""Shared fixtures: the committed aclImdb sample and workspaces built from it."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.schedule import long_modules_first
from tests.helpers.tiny import (
    FIXTURE,
    MODEL_NAME,
    TINY_EXPORT,
    TINY_MODEL,
    TINY_TOKENISER,
    TINY_TRAIN,
)

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long modules first (``tests/helpers/schedule.py``); every module's own tests keep
    their order (a stable sort)."""
    ranks = dict(zip(items, long_modules_first([item.nodeid for item in items]), strict=True))
    items.sort(key=ranks.__getitem__)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """One Prefect test server (temporary database) for every test that runs flows in
    this process; its API address, for flows run in child processes."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


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


@pytest.fixture(scope="session")
def tokenised(ingested, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from lstm_model.data.dataset import tokenise_reviews

    return tokenise_reviews(ingested, TINY_TOKENISER, tmp_path_factory.mktemp("tok"))


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
    registry.promote(version, MODEL_NAME)
    return root


@pytest.fixture(scope="session")
def exported_registry(trained, evaluation, tokenised, ingested, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """Versions 1 and 2, both exported and accepted; 1 is the champion. Version 2 is
    version 1 with its output's bias moved (another model, which answers otherwise on
    every text, without a second training). Copy it before changing it."""
    from lstm_model.evaluation.evaluate import evaluate_model
    from lstm_model.release.promotion import export_candidate, register_candidate
    from lstm_model.release.registry import Registry

    root = tmp_path_factory.mktemp("exported") / "registry"
    export = TINY_EXPORT
    other = _shifted(trained, tmp_path_factory.mktemp("v2"))
    other_eval = evaluate_model(
        other.model_path, tokenised, other.history, tmp_path_factory.mktemp("v2eval")
    )
    for model, ev in ((trained, evaluation), (other, other_eval)):
        version = register_candidate(
            root, model, ev, tokenised, model_config=TINY_MODEL, train_config=TINY_TRAIN
        )
        assert export_candidate(root, version, ingested, export).passed
    Registry(root).promote(1, MODEL_NAME)
    return root


def _shifted(trained, folder: Path):  # type: ignore[no-untyped-def]
    """A copy of the trained model whose output logit is 0.5 higher for every text."""
    from lstm_model.artifacts import sha256_file
    from lstm_model.model.builders import load_model

    model = load_model(trained.model_path)
    output = model.get_layer("probability")
    kernel, bias = output.get_weights()
    output.set_weights([kernel, bias + 0.5])
    path = folder / trained.model_path.name
    model.save(path)
    return trained.model_copy(update={"model_path": path, "model_sha256": sha256_file(path)})
