from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lstm_model.artifacts import (
    atomic_write_json,
    find_valid_artifact,
    sha256_file,
    staged_artifact,
    verify_artifact,
    write_manifest,
)
from lstm_model.errors import ArtifactError


def _publish(folder: Path, payload: bytes = b"data") -> None:
    with staged_artifact(folder) as tmp:
        (tmp / "main.bin").write_bytes(payload)
        write_manifest(tmp, kind="test", main_file="main.bin", inputs={"x": "abc"})


def test_published_artifact_has_a_manifest_with_hashes(tmp_path: Path) -> None:
    folder = tmp_path / "art"
    _publish(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["content_sha256"] == sha256_file(folder / "main.bin")
    assert manifest["files"] == {"main.bin": sha256_file(folder / "main.bin")}
    assert manifest["inputs"] == {"x": "abc"}
    assert manifest["created_at"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_failure_while_staging_leaves_nothing_behind(tmp_path: Path) -> None:
    folder = tmp_path / "art"
    with pytest.raises(RuntimeError), staged_artifact(folder) as tmp:
        (tmp / "main.bin").write_bytes(b"half")
        raise RuntimeError("killed half-way")
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_a_dead_process_are_removed(tmp_path: Path) -> None:
    dead_pid = 2**22 + 7  # above pid_max on Linux: no such process
    stale = tmp_path / f".art.tmp-{dead_pid}-deadbeef"
    stale.mkdir()
    (stale / "partial").write_bytes(b"x")
    _publish(tmp_path / "art")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_temporaries_of_a_live_process_are_kept(tmp_path: Path) -> None:
    live = tmp_path / f".art.tmp-{os.getppid()}-cafe"
    live.mkdir()
    _publish(tmp_path / "art")
    assert live.exists()


def test_tampered_file_is_detected(tmp_path: Path) -> None:
    folder = tmp_path / "art"
    _publish(folder)
    (folder / "main.bin").write_bytes(b"changed")
    with pytest.raises(ArtifactError, match=r"main\.bin: sha256 .* does not match"):
        verify_artifact(folder)
    assert find_valid_artifact(folder) is None


def test_artifact_without_manifest_is_not_valid(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    assert find_valid_artifact(tmp_path / "art") is None
    with pytest.raises(ArtifactError, match="incomplete"):
        verify_artifact(tmp_path / "art")


def test_republishing_replaces_the_old_copy(tmp_path: Path) -> None:
    folder = tmp_path / "art"
    _publish(folder, b"one")
    _publish(folder, b"two")
    assert (folder / "main.bin").read_bytes() == b"two"
    assert verify_artifact(folder).content_sha256 == sha256_file(folder / "main.bin")


def test_atomic_json_leaves_no_temporary(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "a.json", {"b": 1, "a": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": 2, "b": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
