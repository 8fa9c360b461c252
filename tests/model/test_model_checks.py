"""A model is checked before it answers: canary texts, output checks, signed manifests, a
champion pointer that is never followed out of the registry, owner-only files."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from lstm_model.artifacts import FILE_MODE_ENV, sha256_file
from lstm_model.errors import ArtifactError
from lstm_model.release.canary import CANARY_TEXTS, ModelOutputError
from lstm_model.release.registry import ChampionPointerError, Registry
from lstm_model.release.signing import SIGNING_KEY_ENV
from lstm_model.scoring.infer import load_scoring_model
from serving.exported import load_exported

MODEL_NAME = "imdb_sentiment"


@pytest.fixture
def registry(exported_registry: Path, tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    shutil.copytree(exported_registry, root, symlinks=True)
    return root


def rehash(root: Path, version: int) -> None:
    """What anyone who can write to the registry can do: make the manifest match the files."""
    path = root / "versions" / str(version) / "manifest.json"
    manifest = json.loads(path.read_text())
    folder = path.parent
    manifest["files"] = {name: sha256_file(folder / name) for name in manifest["files"]}
    path.write_text(json.dumps(manifest))


def test_canaries_are_recorded_for_every_format(exported_registry: Path) -> None:
    canary = Registry(exported_registry).manifest(1)["canary"]
    assert canary["texts"] == list(CANARY_TEXTS)
    for fmt in ("keras", "saved_model", "tflite"):
        assert len(canary[fmt]) == len(CANARY_TEXTS)
        assert all(0.0 <= p <= 1.0 for p in canary[fmt])
    # The formats agree with each other as the parity check demands.
    assert max(abs(a - b) for a, b in zip(canary["keras"], canary["tflite"], strict=True)) < 1e-4


def test_a_rehashed_model_that_computes_otherwise_is_refused(registry: Path) -> None:
    versions = registry / "versions"
    shutil.copyfile(
        versions / "2" / "export" / "model.tflite", versions / "1" / "export" / "model.tflite"
    )
    shutil.copyfile(versions / "2" / "model.keras", versions / "1" / "model.keras")
    rehash(registry, 1)
    Registry(registry).load_version(1)  # the hashes alone no longer tell
    with pytest.raises(ModelOutputError, match=r"canary texts score up to .* tflite"):
        load_exported(registry, 1, "tflite")
    with pytest.raises(ModelOutputError, match=r"canary texts score up to .* keras"):
        load_scoring_model(registry)
    assert load_exported(registry, 1, "saved_model").version == 1  # untouched format: fine


def test_a_signed_registry_refuses_changed_or_unsigned_manifests(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = Registry(registry)
    monkeypatch.setenv(SIGNING_KEY_ENV, "team-signing-key")
    with pytest.raises(ArtifactError, match="not signed"):
        load_exported(registry, 1, "saved_model")
    with pytest.raises(ArtifactError, match="not signed"):
        load_scoring_model(registry)
    # `models sign` checks the files, then vouches for them
    signed = CliRunner().invoke(
        app, ["models", "sign", "--registry", str(registry), "--version", "1"]
    )
    assert signed.exit_code == 0 and "model version 1: manifest signed" in signed.output
    assert "team-signing-key" not in (registry / "versions" / "1" / "manifest.json").read_text()
    assert load_exported(registry, 1, "saved_model").version == 1
    assert load_scoring_model(registry).version == 1
    # Re-hashing after a change breaks the signature.
    model = registry / "versions" / "1" / "export" / "model.tflite"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    manifest = json.loads((model.parents[1] / "manifest.json").read_text())
    rehash(registry, 1)
    patched = json.loads((model.parents[1] / "manifest.json").read_text())
    assert patched["signature"] == manifest["signature"]
    with pytest.raises(ArtifactError, match="signature does not match"):
        load_exported(registry, 1, "tflite")
    monkeypatch.setenv(SIGNING_KEY_ENV, "another-key")
    reg.sign(2)
    monkeypatch.setenv(SIGNING_KEY_ENV, "team-signing-key")
    with pytest.raises(ArtifactError, match="signature does not match"):
        load_exported(registry, 2, "saved_model")
    monkeypatch.delenv(SIGNING_KEY_ENV)
    with pytest.raises(Exception, match="no key to sign with"):
        reg.sign(2)
    unsigned = CliRunner().invoke(
        app, ["models", "sign", "--registry", str(registry), "--version", "2"]
    )
    assert unsigned.exit_code == 1
    assert "error: $LSTM_PIPELINE_SIGNING_KEY is not set" in unsigned.output


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


BROKEN_POINTERS = {
    "garbage": lambda root, out: (root / "champion.json").write_bytes(b"\x00\xff garbage"),
    "a list": lambda root, out: (root / "champion.json").write_text("[1]"),
    "a string version": lambda root, out: (root / "champion.json").write_text('{"version": "1"}'),
    "a bool version": lambda root, out: (root / "champion.json").write_text('{"version": true}'),
    "a missing version": lambda root, out: (root / "champion.json").write_text(
        '{"version": 9, "history": []}'
    ),
    "bad history": lambda root, out: (root / "champion.json").write_text(
        '{"version": 1, "history": "x"}'
    ),
    "huge": lambda root, out: (root / "champion.json").write_text(" " * (2 << 20) + "{}"),
    "a folder": lambda root, out: (root / "champion.json").mkdir(),
    "a link out": lambda root, out: (root / "champion.json").symlink_to(out / "pointer.json"),
    "a link to a fifo": lambda root, out: (root / "champion.json").symlink_to(_fifo(out / "fifo")),
    "a version that is a link out": lambda root, out: (
        (root / "champion.json").write_text('{"version": 7, "history": []}'),
        (root / "versions" / "7").symlink_to(root / "versions" / "1"),
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN_POINTERS))
def test_a_broken_champion_pointer_is_named_and_never_followed(
    registry: Path, tmp_path: Path, name: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "pointer.json").write_text('{"version": 1, "history": []}')
    pointer = registry / "champion.json"
    pointer.unlink()
    BROKEN_POINTERS[name](registry, outside)
    result: list[BaseException] = []
    # A followed FIFO would block for ever: run where a hang fails the test.
    thread = threading.Thread(
        target=lambda: result.append(_raises(lambda: Registry(registry).champion())), daemon=True
    )
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "reading the pointer blocked"
    [error] = result
    assert isinstance(error, ChampionPointerError), error
    assert str(registry) not in str(error) and str(tmp_path) not in str(error)
    # Promoting mends it.
    if pointer.is_dir() and not pointer.is_symlink():
        pointer.rmdir()
    Registry(registry).promote(2, MODEL_NAME)
    assert Registry(registry).champion() == 2


def _raises(call):  # type: ignore[no-untyped-def]
    try:
        call()
    except BaseException as error:  # handed to the test
        return error
    return AssertionError("no error")


def test_links_inside_a_version_are_refused(registry: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not the registry's")
    (registry / "versions" / "1" / "evaluation" / "extra.txt").symlink_to(secret)
    with pytest.raises(ArtifactError, match="is a link"):
        Registry(registry).load_version(1)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_registry_files_are_private_by_default(exported_registry: Path) -> None:
    folder = exported_registry / "versions" / "1"
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files and {_mode(p) for p in files} == {0o600}
    assert {_mode(p) for p in folder.rglob("*") if p.is_dir()} | {_mode(folder)} == {0o700}
    assert _mode(exported_registry / "champion.json") == 0o600


def test_the_file_mode_is_configurable(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FILE_MODE_ENV, "640")
    Registry(registry).promote(2, MODEL_NAME)
    assert _mode(registry / "champion.json") == 0o640
    monkeypatch.setenv(FILE_MODE_ENV, "rw-r--r--")
    with pytest.raises(ArtifactError, match=FILE_MODE_ENV):
        Registry(registry).promote(1, MODEL_NAME)
    monkeypatch.setenv(FILE_MODE_ENV, "044")  # the owner could not read its own files
    with pytest.raises(ArtifactError, match="lets the owner read and write"):
        Registry(registry).promote(1, MODEL_NAME)
