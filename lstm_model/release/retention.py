"""Retention: bounded disk for a registry that gains a version every week.

Kept whole: the champion, the previous champions that ``rollback`` would go back to (to
``rollback_depth``), the newest ``keep_accepted`` versions that passed the gate, candidates
younger than ``candidate_hours`` (a retrain between registering and gating), the version the
TensorFlow Serving link points at, and every version a live process holds a lease on (a
service answering with it, a scoring run that loaded it: ``leases``). Every other version
loses its model files (``layout.FREED``); its manifest, status, tokeniser, history and
evaluation reports stay, and ``removed.json`` says what went and when, so the model history
never loses a version. A run's working files (the fitted model, stage weights, resume
state) go once its model is registered, or after ``run_days`` without a change if it never
was; its history, evaluation and TensorBoard logs stay.

Decisions and deletions happen under the registry's lock, which is also where leases are
taken, so a version cannot be leased between the check and the deletion.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import sha256_file, tree_size
from lstm_model.release import leases
from lstm_model.release.config import RetentionConfig
from lstm_model.release.layout import SERVING_DIR, VERSIONS_DIR
from lstm_model.release.registry import Registry
from lstm_model.training.result import MODEL_FILE

log = logging.getLogger(__name__)

RUN_STATE = (MODEL_FILE, "stage_*.weights.h5", "stage_*.json", "backup")
"""A run's working files: what retention frees of a finished run."""


class Freed(BaseModel):
    """One version's model files, or one run's working files, freed (or to be)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["version", "run"]
    name: str
    files: list[str]
    bytes: int
    why: str


class Kept(BaseModel):
    """One version kept whole, and why."""

    model_config = ConfigDict(frozen=True)

    version: int
    why: str


class RetentionReport(BaseModel):
    """What a retention pass kept and freed; with ``dry_run``, what it would free."""

    model_config = ConfigDict(frozen=True)

    dry_run: bool
    kept: list[Kept] = []
    freed: list[Freed] = []
    stale_leases: int = 0
    seconds: float = 0.0

    @property
    def bytes(self) -> int:
        """Bytes freed (or that would be)."""
        return sum(f.bytes for f in self.freed)

    def render(self, what: str) -> str:
        """A markdown summary of ``what`` was freed and kept, with the reasons."""
        verb = "would free" if self.dry_run else "freed"
        lines = [f"{what}: {verb} {self.bytes / 2**20:.1f} MiB in {len(self.freed)} entries."]
        if self.freed:
            lines += ["", "| what | files | MiB | why |", "|---|---|---|---|"]
            lines += [
                f"| {f.kind} {f.name} | {', '.join(f.files)} | {f.bytes / 2**20:.1f} | {f.why} |"
                for f in self.freed
            ]
        if self.kept:
            lines += ["", "| kept version | why |", "|---|---|"]
            lines += [f"| {k.version} | {k.why} |" for k in self.kept]
        return "\n".join(lines) + "\n"


def free_versions(
    registry_root: Path, config: RetentionConfig, *, dry_run: bool
) -> RetentionReport:
    """Free the model files of every version the policy does not keep (see above)."""
    started = time.perf_counter()
    registry = Registry(registry_root)
    if not registry.versions_dir.is_dir():
        return RetentionReport(dry_run=dry_run)
    with registry.lock():
        live, stale = leases.leases(registry_root)
        kept = _kept(registry, config, live)
        freed = []
        for info in registry.list_versions():
            if info.version in kept:
                continue
            removal = registry.removal(info.version)
            sizes = registry.freeable(info.version)
            if not sizes and (removal is None or removal.get("complete")):
                continue
            why = f"{info.status}, not kept" + (
                "; finishing an interrupted removal" if removal is not None else ""
            )
            freed.append(Freed(kind="version", name=str(info.version), files=sorted(sizes),
                               bytes=sum(sizes.values()), why=why))  # fmt: skip
            if not dry_run:
                registry.free(info.version)
        if not dry_run:
            for path in stale:
                path.unlink(missing_ok=True)
    report = RetentionReport(
        dry_run=dry_run,
        kept=[Kept(version=v, why=why) for v, why in sorted(kept.items())],
        freed=freed,
        stale_leases=len(stale),
        seconds=round(time.perf_counter() - started, 3),
    )
    log.info("%s", report.render("registry").splitlines()[0])
    return report


def free_runs(
    workspace: Path, registry_root: Path, config: RetentionConfig, *, dry_run: bool
) -> RetentionReport:
    """Free the working files of finished runs: registered ones at once, the others after
    ``run_days`` without a change."""
    started = time.perf_counter()
    registered = _registered_models(Registry(registry_root))
    freed = []
    runs = workspace / "runs"
    for run in sorted(runs.iterdir()) if runs.is_dir() else []:
        files = sorted({p for pattern in RUN_STATE for p in run.glob(pattern)})
        if not files:
            continue
        model = run / MODEL_FILE
        if model.is_file() and not (run / "backup").exists() and sha256_file(model) in registered:
            why = "its model is registered"
        elif time.time() - _last_change(run) > config.run_days * 86400:
            why = f"unchanged for more than {config.run_days:g} days, never registered"
        else:
            continue
        freed.append(Freed(kind="run", name=run.name, files=[p.name for p in files],
                           bytes=sum(tree_size(p) for p in files), why=why))  # fmt: skip
        if not dry_run:
            for path in files:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
    return RetentionReport(
        dry_run=dry_run, freed=freed, seconds=round(time.perf_counter() - started, 3)
    )


def _kept(registry: Registry, config: RetentionConfig, live: list[leases.Lease]) -> dict[int, str]:
    keep: dict[int, str] = {}
    champion, history = registry.champion_history()
    if champion is not None:
        keep[champion] = "champion"
    for version in list(reversed(history))[: config.rollback_depth]:
        keep.setdefault(version, "a previous champion, for rollback")
    infos = registry.list_versions()
    passed = [i.version for i in reversed(infos) if i.status in {"accepted", "retired"}]
    for version in passed[: config.keep_accepted]:
        keep.setdefault(version, f"one of the {config.keep_accepted} newest accepted")
    now = time.time()
    for info in infos:
        if info.status == "candidate":
            age = now - _timestamp(info.created_at)
            if age < config.candidate_hours * 3600:
                keep.setdefault(info.version, "a candidate, its gate may still be running")
    for version in _served(registry.root):
        keep.setdefault(version, "the TensorFlow Serving link points at it")
    for lease in live:
        keep.setdefault(lease.version, f"in use by {lease.describe()}")
    return keep


def _served(registry_root: Path) -> set[int]:
    """Versions whose export a link under ``serving/`` points at (TF Serving reads them)."""
    versions = set()
    serving = registry_root / SERVING_DIR
    for link in serving.iterdir() if serving.is_dir() else []:
        if link.is_symlink():
            target = Path(os.path.normpath(serving / os.readlink(link)))
            try:
                number = target.relative_to(registry_root / VERSIONS_DIR).parts[0]
            except (ValueError, IndexError):  # a link that leads elsewhere names no version
                continue
            if number.isdigit():
                versions.add(int(number))
    return versions


def _registered_models(registry: Registry) -> set[str]:
    found = set()
    for info in registry.list_versions() if registry.versions_dir.is_dir() else []:
        sha = (registry.manifest(info.version).get("training") or {}).get("model_sha256")
        if sha:
            found.add(sha)
    return found


def _last_change(folder: Path) -> float:
    return max((p.lstat().st_mtime for p in folder.rglob("*")), default=folder.stat().st_mtime)


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
