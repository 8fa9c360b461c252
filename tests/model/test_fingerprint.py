"""The build fingerprint, and finding the version that was built from one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import lstm_model
from lstm_model.data.config import TokeniserConfig
from lstm_model.release.promotion import previous_build, register_candidate
from lstm_model.release.registry import Registry
from lstm_model.training.config import TrainConfig
from lstm_model.training.fingerprint import build_fingerprint, training_code_sha256
from tests.helpers.tiny import TINY_MODEL, TINY_TOKENISER, TINY_TRAIN


def _fingerprint(dataset: str = "d" * 64, **changes):  # type: ignore[no-untyped-def]
    parts = {"tokeniser": TINY_TOKENISER, "model": TINY_MODEL, "training": TINY_TRAIN, **changes}
    return build_fingerprint(dataset, parts["tokeniser"], parts["model"], parts["training"])


def test_the_fingerprint_is_stable_and_changes_with_every_part() -> None:
    same = _fingerprint()
    assert _fingerprint() == same
    changed = [
        _fingerprint("e" * 64),
        _fingerprint(tokeniser=TokeniserConfig(vocab_size=TINY_TOKENISER.vocab_size + 1)),
        _fingerprint(model=TINY_MODEL.model_copy(update={"units": TINY_MODEL.units + 1})),
        _fingerprint(training=TrainConfig(**{**TINY_TRAIN.model_dump(), "seed": 7})),
    ]
    assert len({f.sha256 for f in [same, *changed]}) == 5
    assert [f.dataset for f in changed][:1] == ["e" * 64]


def test_the_code_hash_follows_the_training_code_and_nothing_else(tmp_path: Path) -> None:
    copy = tmp_path / "lstm_model"
    shutil.copytree(Path(lstm_model.__file__).parent, copy)
    before = training_code_sha256(copy)
    assert before == training_code_sha256()
    (copy / "release" / "registry.py").write_text("# releasing does not change a model\n")
    assert training_code_sha256(copy) == before
    with (copy / "training" / "fit.py").open("a") as handle:
        handle.write("\n# a change to the fit\n")
    assert training_code_sha256(copy) != before


@pytest.fixture
def registered(registry_root, trained, evaluation, tokenised) -> int:  # type: ignore[no-untyped-def]
    return register_candidate(
        registry_root, trained, evaluation, tokenised, model_config=TINY_MODEL,
        train_config=TINY_TRAIN,
    )  # fmt: skip


def test_a_version_counts_as_built_once_its_gate_decided(
    registered: int, registry_root: Path, tokenised
) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(registry_root)
    built_from = _fingerprint(tokenised.reviews_sha256)
    assert registry.manifest(registered)["fingerprint"] == built_from.model_dump()
    # registered but never gated: a run that died half way, which a retrain finishes
    assert previous_build(registry_root, built_from) is None
    registry.set_status(registered, "rejected", "gate FAILED: accuracy 0.5000 below the bar")
    found = previous_build(registry_root, built_from)
    assert found is not None and found.version == registered and found.status == "rejected"
    assert "rejected (gate FAILED: accuracy 0.5000 below the bar)" in found.describe()
    assert "not trained again" in found.describe() and "force" in found.describe()
    registry.set_status(registered, "accepted", "parity passed")
    registry.promote(registered, "m")
    found = previous_build(registry_root, built_from)
    assert found is not None and (found.status, found.champion) == ("champion", registered)
    assert found.describe().startswith(f"nothing new since version {registered} (champion")
    assert previous_build(registry_root, _fingerprint("e" * 64)) is None


def test_the_champion_is_named_before_older_versions_with_the_fingerprint(
    registry_root: Path, trained, evaluation, tokenised
) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(registry_root)
    for _ in range(3):
        version = register_candidate(
            registry_root, trained, evaluation, tokenised, model_config=TINY_MODEL,
            train_config=TINY_TRAIN,
        )  # fmt: skip
        registry.set_status(version, "accepted", "parity passed")
    registry.promote(2, "m")
    found = previous_build(registry_root, _fingerprint(tokenised.reviews_sha256))
    assert found is not None and found.version == 2 and found.status == "champion"


def test_a_version_whose_manifest_is_tampered_does_not_count(
    registered: int, registry_root: Path, tokenised, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(registry_root)
    registry.set_status(registered, "accepted", "parity passed")
    monkeypatch.setenv("LSTM_PIPELINE_SIGNING_KEY", "k" * 32)
    # signed with no key when registered: with a key set now, it is not vouched for
    assert previous_build(registry_root, _fingerprint(tokenised.reviews_sha256)) is None
