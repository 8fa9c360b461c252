"""Retention: what `gc` keeps whole (champion, rollback targets, newest accepted, fresh
candidates, anything leased), what it frees and records, and that an interrupted pass
never leaves a version half deleted and still loadable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from lstm_model.release import layout, leases
from lstm_model.release.config import RetentionConfig
from lstm_model.release.promotion import register_candidate
from lstm_model.release.registry import Registry, RegistryError
from lstm_model.release.retention import free_runs, free_versions
from tests.helpers.tiny import MODEL_NAME, TINY_MODEL, TINY_TRAIN

ROOT = Path(__file__).resolve().parents[2]
POLICY = RetentionConfig(keep_accepted=1, rollback_depth=1)


@pytest.fixture
def weeks(exported_registry: Path, trained, evaluation, tokenised, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Seven weeks of a registry: 1 (exported, the first champion, whose SavedModel the
    serving link still names: the others have no export), 2 (exported, accepted), 3
    rejected, 4 and 5 promoted in turn (5 is the champion, 4 the rollback target), 6 a
    fresh candidate, 7 accepted and not promoted. Under a folder called "versions" too, as a
    registry may well be."""
    root = tmp_path / "versions" / "registry"
    shutil.copytree(exported_registry, root, symlinks=True)
    registry = Registry(root)

    def add() -> int:
        return register_candidate(
            root, trained, evaluation, tokenised, model_config=TINY_MODEL, train_config=TINY_TRAIN
        )

    registry.set_status(add(), "rejected", "below the bar")
    for _ in range(2):
        version = add()
        registry.set_status(version, "accepted", "passed")
        registry.promote(version, MODEL_NAME)
    add()
    registry.set_status(add(), "accepted", "passed")
    return root


def _snapshot(root: Path) -> list[tuple[str, int]]:
    """Every file and its size, but the registry's lock file (a dry run takes the lock)."""
    return sorted(
        (str(p.relative_to(root)), p.lstat().st_size)
        for p in root.rglob("*")
        if p.name != layout.LOCK
    )


def test_dry_run_lists_what_would_go_with_its_bytes_and_changes_nothing(weeks: Path) -> None:
    before = _snapshot(weeks)

    report = free_versions(weeks, POLICY, dry_run=True)

    assert _snapshot(weeks) == before
    assert [f.name for f in report.freed] == ["2", "3"]
    assert {k.version: k.why for k in report.kept} == {
        1: "the TensorFlow Serving link points at it",
        4: "a previous champion, for rollback",
        5: "champion",
        6: "a candidate, its gate may still be running",
        7: "one of the 1 newest accepted",
    }
    exported = report.freed[0]
    assert exported.files == [layout.EXPORT_DIR, layout.MODEL]
    folder = weeks / "versions" / "2"
    on_disk = (folder / layout.MODEL).stat().st_size + sum(
        p.stat().st_size for p in (folder / layout.EXPORT_DIR).rglob("*") if p.is_file()
    )
    assert exported.bytes == on_disk > 0
    assert report.freed[1].files == [layout.MODEL] and "rejected" in report.freed[1].why


def test_freed_versions_keep_their_record_and_refuse_to_load(weeks: Path) -> None:
    registry = Registry(weeks)
    reports = {v: registry.manifest(v) for v in (2, 3)}

    report = free_versions(weeks, POLICY, dry_run=False)

    assert [f.name for f in report.freed] == ["2", "3"]
    for version in (2, 3):
        folder = registry.path(version)
        assert not (folder / layout.MODEL).exists() and not (folder / layout.EXPORT_DIR).exists()
        assert registry.manifest(version) == reports[version]  # the record stays whole
        assert (folder / layout.EVALUATION_DIR / "report.md").is_file()
        removal = registry.removal(version)
        assert removal["complete"] and removal["bytes"] == report.freed[version - 2].bytes
        with pytest.raises(RegistryError, match=f"version {version} cannot be loaded: retention"):
            registry.load_version(version)
    listed = {v.version: v for v in registry.list_versions()}
    assert [v for v, info in listed.items() if info.removed_at] == [2, 3]
    for version in (1, 4, 5, 6, 7):
        registry.load_version(version)  # kept whole: every file matches its manifest
    # a second pass finds nothing more to free
    assert free_versions(weeks, POLICY, dry_run=False).freed == []
    assert registry.rollback(MODEL_NAME) == 4  # the rollback target is still there
    shown = CliRunner().invoke(app, ["models", "list", "--registry", str(weeks)])
    assert shown.output.count("(model files removed") == 2


def test_promotion_waits_for_a_retention_pass_holding_the_lock(weeks: Path) -> None:
    registry = Registry(weeks)
    promoting = threading.Thread(target=registry.promote, args=(7, MODEL_NAME))
    with registry.lock():  # as free_versions holds it while it decides and deletes
        promoting.start()
        promoting.join(timeout=2)
        assert promoting.is_alive() and registry.champion() == 5
    promoting.join(timeout=30)
    assert registry.champion() == 7


def test_a_version_in_use_is_kept_until_its_process_ends(weeks: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from lstm_model.release.registry import Registry; "
         f"Registry(Path({str(weeks)!r})).hold(2, 'a scoring run'); print('held', flush=True); "
         "time.sleep(600)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        report = free_versions(weeks, POLICY, dry_run=False)
        kept = {k.version: k.why for k in report.kept}
        assert kept[2].startswith(f"in use by a scoring run (pid {holder.pid} on ")
        assert [f.name for f in report.freed] == ["3"]
        Registry(weeks).load_version(2)
    finally:
        holder.kill()
        holder.wait()
    # its process is gone: the lease is stale, and the next pass frees the version
    again = free_versions(weeks, POLICY, dry_run=False)
    assert [f.name for f in again.freed] == ["2"] and again.stale_leases == 1
    assert list((weeks / layout.LEASES_DIR).glob("*.json")) == []


def test_a_scoring_run_holds_the_champion_it_loaded_across_a_promotion(weeks: Path) -> None:
    from lstm_model.scoring.infer import load_scoring_model

    loaded = load_scoring_model(weeks)
    assert loaded.version == 5
    Registry(weeks).promote(7, MODEL_NAME)
    try:
        report = free_versions(
            weeks, RetentionConfig(keep_accepted=0, rollback_depth=0), dry_run=False
        )
        kept = {k.version: k.why for k in report.kept}
        assert kept[5].startswith("in use by scoring run (pid ")
        Registry(weeks).load_version(5)
    finally:
        Registry(weeks).let_go(5)
    live, _ = leases.leases(weeks)
    assert [lease.version for lease in live] == []


def test_an_interrupted_pass_leaves_no_version_loadable_and_half_deleted(
    weeks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(weeks)
    real_rmtree = shutil.rmtree

    def dies(path: Path, *args: object, **kwargs: object) -> None:
        raise OSError("killed mid-way")

    monkeypatch.setattr("lstm_model.release.registry.shutil.rmtree", dies)
    with pytest.raises(OSError, match="killed mid-way"):
        free_versions(weeks, POLICY, dry_run=False)
    folder = registry.path(2)
    assert not (folder / layout.MODEL).exists() and (folder / layout.EXPORT_DIR).is_dir()
    # half done...
    assert registry.removal(2)["complete"] is False
    with pytest.raises(RegistryError, match="version 2 cannot be loaded"):
        registry.load_version(2)  # ...and never offered as loadable
    assert next(v for v in registry.list_versions() if v.version == 2).removed_at

    planned = registry.removal(2)["bytes"]
    monkeypatch.setattr("lstm_model.release.registry.shutil.rmtree", real_rmtree)
    report = free_versions(weeks, POLICY, dry_run=False)
    assert "finishing an interrupted removal" in report.freed[0].why
    # the record counts the bytes once; this pass freed what the first left
    assert registry.removal(2)["bytes"] == planned > report.freed[0].bytes > 0
    assert report.freed[0].files == [layout.EXPORT_DIR]
    assert not (folder / layout.EXPORT_DIR).exists() and registry.removal(2)["complete"]
    assert [f.name for f in report.freed] == ["2", "3"]


def test_finished_runs_lose_their_working_files_and_keep_their_record(
    weeks: Path,
    trained,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    runs = tmp_path / "workspace" / "runs"

    def run(name: str, model: bytes | None, *extra: str) -> Path:
        folder = runs / name
        (folder / "tensorboard").mkdir(parents=True)
        (folder / "history.json").write_text("{}")
        if model is not None:
            (folder / layout.MODEL).write_bytes(model)
        for item in extra:
            (folder / item).mkdir(parents=True)
        return folder

    registered = run("registered", trained.model_path.read_bytes())
    fresh = run("fresh", b"an unregistered model")
    running = run("running", trained.model_path.read_bytes(), "backup/lstm")
    old = run("old", b"an abandoned fit")
    long_ago = time.time() - 10 * 86400
    for path in [old, *old.rglob("*")]:
        os.utime(path, (long_ago, long_ago))

    report = free_runs(tmp_path / "workspace", weeks, POLICY, dry_run=False)

    assert {f.name: f.why for f in report.freed} == {
        "registered": "its model is registered",
        "old": "unchanged for more than 7 days, never registered",
    }
    for folder in (registered, old):
        assert sorted(p.name for p in folder.iterdir()) == ["history.json", "tensorboard"]
    assert (fresh / layout.MODEL).is_file() and (running / layout.MODEL).is_file()


def test_gc_command_dry_run_then_frees(weeks: Path, tmp_path: Path) -> None:
    args = ["gc", "--workspace", str(tmp_path), "--registry", str(weeks),
            "--keep-accepted", "1", "--rollback-depth", "1"]  # fmt: skip
    dry = CliRunner().invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Model versions: would free" in dry.output and "| version 3 |" in dry.output
    assert all(Registry(weeks).removal(v) is None for v in (2, 3))
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "Model versions: freed" in done.output
    record = json.loads((weeks / "versions" / "3" / layout.REMOVED).read_text())
    assert record["files"] == [layout.MODEL] and record["by"] == "retention"


def test_the_service_holds_what_it_answers_with_until_the_hot_switch(
    exported_registry: Path, tmp_path: Path
) -> None:
    from serving.config import ServingConfig
    from serving.slot import ModelSlot

    root = tmp_path / "registry"
    shutil.copytree(exported_registry, root, symlinks=True)
    slot = ModelSlot(root, ServingConfig())
    slot.check()
    assert slot.current is not None and slot.current.version == 1
    Registry(root).promote(2, MODEL_NAME)
    nothing_kept = RetentionConfig(keep_accepted=0, rollback_depth=0)

    # promoted, not yet switched to: version 1 still answers, so it stays whole
    report = free_versions(root, nothing_kept, dry_run=False)
    assert report.freed == []
    assert {k.version: k.why.split(" (")[0] for k in report.kept} == {
        1: "in use by prediction service",
        2: "champion",
    }
    slot.check()  # the hot switch: the lease on version 1 is given back
    assert slot.current.version == 2
    assert [lease.version for lease in leases.leases(root)[0]] == [2]
    assert [f.name for f in free_versions(root, nothing_kept, dry_run=False).freed] == ["1"]
    assert slot.current.predict(["a fine film"]).shape == (1,)
    Registry(root).let_go(2)
