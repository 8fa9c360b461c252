"""A file-system model registry: numbered versions, a manifest each, an atomic champion.

Layout under the registry root::

    versions/<N>/            one candidate: model.keras, tokenizer/, evaluation/,
                             export/<model_name>/<N>/ (TF Serving), export/model.tflite,
                             manifest.json (sha256 of every file), status.json
    champion.json            {"version": N, "history": [older champions, newest last]}
    serving/<model_name>     link to the champion's export/<model_name>: a TF Serving base path

The manifest is written when a version is registered and again, sealed, once its exports
exist; ``load_version`` refuses a version whose files do not match it. Promotion and
rollback replace ``champion.json`` and the serving link by rename, so readers always see
one whole champion.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import uuid
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import (
    NotRegularFile,
    atomic_write_json,
    exclusive_lock,
    make_dirs,
    open_regular,
    restrict_tree,
    sha256_file,
    tree_size,
)
from lstm_model.data.config import ACLIMDB_DOMAIN
from lstm_model.errors import ArtifactError, PipelineError
from lstm_model.release import leases
from lstm_model.release.layout import (
    CHAMPION,
    EXPORT_DIR,
    FREED,
    LOCK,
    MANIFEST,
    REMOVED,
    SERVING_DIR,
    STATUS,
    VERSIONS_DIR,
)
from lstm_model.release.signing import sign, verify

log = logging.getLogger(__name__)

Status = Literal["candidate", "rejected", "accepted", "champion", "retired"]
MAX_POINTER_BYTES = 1 << 20
MAX_MANIFEST_BYTES = 64 << 20
MAX_STATUS_BYTES = 1 << 20


class RegistryError(PipelineError):
    """The registry cannot do what was asked (no such version, nothing to roll back to)."""


class ChampionPointerError(RegistryError):
    """``champion.json`` is there but does not name a version of this registry; the
    message says what is wrong with it (it is never followed outside the registry)."""


class VersionInfo(BaseModel):
    """One registered version, as listed."""

    model_config = ConfigDict(frozen=True)

    version: int
    status: Status
    reason: str
    accuracy: float | None
    created_at: str
    is_champion: bool
    dataset: str | None = None
    """The dataset version it was trained on (its fingerprint's)."""
    slices: dict[str, float] = {}
    """Test accuracy per slice (aclImdb ``imdb``, and each domain of its labelled data)."""
    removed_at: str | None = None
    """When retention removed its model files (its record stays)."""


class Registry:
    """Numbered model versions under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions_dir = root / VERSIONS_DIR

    # -- registering ---------------------------------------------------------------------

    def register(
        self,
        files: dict[str, Path],
        *,
        metadata: dict[str, Any],
    ) -> int:
        """Copy ``files`` (name in the version -> source file or folder) into a new version.

        The version folder is filled under a temporary name and renamed to the next free
        number, so concurrent registrations never share a number or see half a version.
        """
        make_dirs(self.versions_dir)
        staging = self.versions_dir / f".staging-{os.getpid()}-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            for name, source in files.items():
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if source.is_dir():
                    shutil.copytree(source, target)
                else:
                    shutil.copy2(source, target)
            restrict_tree(staging)
            for _ in range(1000):
                version = self._next_number()
                try:
                    staging.rename(self.versions_dir / str(version))
                    break
                except OSError:
                    if not (self.versions_dir / str(version)).exists():
                        raise  # not a lost race: a real file-system error
                    # another process took that number first: try the next one
            else:
                raise RegistryError(f"could not allocate a version number in {self.versions_dir}")
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        folder = self.versions_dir / str(version)
        self._write_manifest(folder, {**metadata, "version": version})
        self.set_status(version, "candidate", "registered")
        log.info("registered model version %d at %s", version, folder)
        return version

    def seal(self, version: int, updates: dict[str, Any]) -> None:
        """Re-hash every file of a version (after exports were added) into its manifest."""
        folder = self.path(version)
        manifest = self.trusted_manifest(version)
        for name, expected in manifest["files"].items():  # what it vouched for is unchanged
            if not (folder / name).is_file() or sha256_file(folder / name) != expected:
                raise ArtifactError(
                    f"model version {version}: {name} changed since it was registered; "
                    "refusing to seal (and sign) it"
                )
        manifest.update(updates)
        restrict_tree(folder)  # the exports were written by TensorFlow, with its modes
        self._write_manifest(folder, manifest)

    def set_status(self, version: int, status: Status, reason: str) -> None:
        atomic_write_json(
            self.path(version) / STATUS,
            {"status": status, "reason": reason, "at": datetime.now(UTC).isoformat()},
        )

    # -- reading -------------------------------------------------------------------------

    def path(self, version: int) -> Path:
        folder = self.versions_dir / str(version)
        if folder.is_symlink() or not folder.is_dir():
            # A link is never followed: it could lead out of the registry.
            raise RegistryError(f"no model version {version} in {self.versions_dir}")
        return folder

    def manifest(self, version: int) -> dict[str, Any]:
        path = self.path(version) / MANIFEST
        manifest = _read_json(path, MAX_MANIFEST_BYTES, f"model version {version}'s manifest")
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ArtifactError(f"model version {version}: its manifest lists no files")
        return manifest

    def trusted_manifest(self, version: int) -> dict[str, Any]:
        """The manifest, its signature verified when ``$LSTM_PIPELINE_SIGNING_KEY`` is set."""
        manifest = self.manifest(version)
        verify(manifest, f"model version {version}")
        return manifest

    def status(self, version: int) -> dict[str, Any]:
        """The version's ``status.json``: its status and why (read as ``_read_json`` reads)."""
        what = f"model version {version}'s {STATUS}"
        status = _read_json(self.path(version) / STATUS, MAX_STATUS_BYTES, what)
        if not isinstance(status, dict) or not isinstance(status.get("status"), str):
            raise ArtifactError(f"{what} names no status")
        return status

    def load_version(self, version: int) -> Path:
        """The version's folder, after checking every file against its (signed) manifest.
        A version whose model files retention removed is refused, saying when."""
        folder = self.path(version)
        removal = self.removal(version)
        if removal is not None:
            raise RegistryError(
                f"model version {version} cannot be loaded: retention removed its model files "
                f"({', '.join(removal['files'])}) at {removal['at']}; its manifest and reports "
                "remain"
            )
        self._check_files(version, folder, self.trusted_manifest(version))
        return folder

    def removal(self, version: int) -> dict[str, Any] | None:
        """The record of retention's removal of the version's model files, or None."""
        path = self.path(version) / REMOVED
        if not os.path.lexists(path):
            return None
        record = _read_json(path, MAX_STATUS_BYTES, f"model version {version}'s {REMOVED}")
        if not isinstance(record, dict) or not isinstance(record.get("files"), list):
            raise ArtifactError(f"model version {version}'s {REMOVED} lists no files")
        return record

    # -- retention -----------------------------------------------------------------------

    def lock(self) -> AbstractContextManager[None]:
        """The registry's lock: leases are taken, and versions freed, while holding it."""
        return exclusive_lock(self.root / LOCK)

    def hold(self, version: int, holder: str) -> bool:
        """Lease ``version`` for this process (see ``leases``): retention keeps its files
        until the process ends or calls ``let_go``. Refused (RegistryError) for a removed
        version; False, with a warning, where this process may not write the lease."""
        try:
            with self.lock():
                if self.removal(version) is not None:
                    self.load_version(version)  # raises, saying when it was removed
                leases.take(self.root, version, holder)
        except OSError as error:
            log.warning(
                "no lease on model version %d for the %s (%s): retention cannot see it in use",
                version, holder, type(error).__name__,
            )  # fmt: skip
            return False
        return True

    def let_go(self, version: int) -> None:
        """Give back this process's lease on ``version``."""
        leases.give_back(self.root, version)

    def freeable(self, version: int) -> dict[str, int]:
        """The version's model files that retention would remove: name -> bytes."""
        folder = self.path(version)
        return {name: tree_size(folder / name) for name in FREED if os.path.lexists(folder / name)}

    def free(self, version: int) -> dict[str, Any]:
        """Remove the version's model files, keeping its manifest, status and reports; the
        caller holds ``lock`` and has checked the leases. The record is written first (so
        the version is never loadable while half deleted) and marked complete last; a run
        that dies between the two is finished by the next."""
        folder = self.path(version)
        previous = self.removal(version)
        sizes = self.freeable(version)
        record = {
            "files": sorted({*(previous or {}).get("files", []), *sizes}),
            # an interrupted removal recorded everything it set out to free
            "bytes": int(previous["bytes"]) if previous else sum(sizes.values()),
            "at": (previous or {}).get("at") or datetime.now(UTC).isoformat(),
            "by": "retention",
            "complete": False,
        }
        atomic_write_json(folder / REMOVED, record)
        for name in sizes:
            target = folder / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        record["complete"] = True
        atomic_write_json(folder / REMOVED, record)
        log.info("model version %d: removed %s (%d bytes)", version, sizes, record["bytes"])
        return record

    def _check_files(self, version: int, folder: Path, manifest: dict[str, Any]) -> None:
        present = _files(folder)
        for name, expected in manifest["files"].items():
            if name not in present:
                raise ArtifactError(f"model version {version}: {name} is missing")
            actual = sha256_file(folder / name)
            if actual != expected:
                raise ArtifactError(
                    f"model version {version}: {name} has sha256 {actual[:12]}…, the manifest "
                    f"says {expected[:12]}…; refusing a tampered model"
                )
        extra = sorted(set(present) - set(manifest["files"]))
        if extra:
            raise ArtifactError(f"model version {version}: files not in the manifest: {extra}")

    def champion(self) -> int | None:
        """The champion's version; None when there is no pointer yet. Raises
        ChampionPointerError, with the reason, for a pointer that names no version here."""
        pointer = self._pointer()
        return None if pointer is None else pointer["version"]

    def _pointer(self) -> dict[str, Any] | None:
        path = self.root / CHAMPION
        if not os.path.lexists(path):
            return None
        try:  # opened as _read_json opens: never followed, never blocking
            pointer = _read_json(path, MAX_POINTER_BYTES, CHAMPION)
        except ArtifactError as error:
            raise ChampionPointerError(str(error)) from error
        version = pointer.get("version") if isinstance(pointer, dict) else None
        history = pointer.get("history", []) if isinstance(pointer, dict) else None
        if type(version) is not int or version < 1:
            raise ChampionPointerError(f'{CHAMPION} has no "version" that is a whole number >= 1')
        if not isinstance(history, list) or any(type(v) is not int for v in history):
            raise ChampionPointerError(f'{CHAMPION}: "history" is not a list of versions')
        try:
            self.path(version)
        except RegistryError as error:
            raise ChampionPointerError(
                f"{CHAMPION} names version {version}, which is not in the registry"
            ) from error
        return {"version": version, "history": history}

    def champion_history(self) -> tuple[int | None, list[int]]:
        """(the champion, the previous champions that rollback goes back to, oldest first)."""
        pointer = self._pointer()
        return (None, []) if pointer is None else (pointer["version"], pointer["history"])

    def champion_metrics(self) -> dict[str, Any] | None:
        version = self.champion()
        return None if version is None else self.manifest(version).get("metrics")

    def list_versions(self) -> list[VersionInfo]:
        champion = self.champion()
        infos = []
        if not self.versions_dir.is_dir():
            return infos
        numbers = sorted(int(p.name) for p in self.versions_dir.iterdir() if p.name.isdigit())
        for number in numbers:
            manifest = self.manifest(number)
            status = self.status(number)
            infos.append(
                VersionInfo(
                    version=number,
                    status="champion" if number == champion else status["status"],
                    reason=status["reason"],
                    accuracy=(manifest.get("metrics") or {}).get("accuracy"),
                    created_at=manifest["created_at"],
                    is_champion=number == champion,
                    dataset=(manifest.get("fingerprint") or {}).get("dataset"),
                    slices=_slice_accuracies(manifest),
                    removed_at=(self.removal(number) or {}).get("at"),
                )
            )
        return infos

    # -- promotion -----------------------------------------------------------------------

    def promote(self, version: int, model_name: str) -> None:
        """Make ``version`` the champion (it must be accepted and intact). Under the
        registry's lock, so retention never frees a version while it becomes the champion."""
        with self.lock():
            self._promote(version, model_name)

    def _promote(self, version: int, model_name: str) -> None:
        status = self.status(version)["status"]
        if status not in {"accepted", "retired"}:
            raise RegistryError(
                f"model version {version} is {status}, not accepted: it cannot be promoted"
            )
        self.load_version(version)
        try:
            previous = self._pointer()
        except ChampionPointerError as error:  # promoting is how a broken pointer is mended
            log.warning("replacing a broken champion pointer: %s", error)
            previous = None
        history = [*previous["history"], previous["version"]] if previous else []
        self._point(version, history, model_name)
        if previous:
            self.set_status(previous["version"], "retired", f"replaced by version {version}")
        self.set_status(version, "accepted", "promoted to champion")
        log.info("model version %d is the champion", version)

    def rollback(self, model_name: str) -> int:
        """Restore the previous champion; return its version (under the registry's lock,
        as ``promote``)."""
        with self.lock():
            return self._rollback(model_name)

    def _rollback(self, model_name: str) -> int:
        current = self._pointer()
        if current is None:
            raise RegistryError("no champion yet: nothing to roll back")
        if not current["history"]:
            raise RegistryError(
                f"version {current['version']} is the first champion: nothing to roll back to"
            )
        target = current["history"][-1]
        self.load_version(target)
        self._point(target, current["history"][:-1], model_name)
        self.set_status(current["version"], "retired", f"rolled back to version {target}")
        self.set_status(target, "accepted", f"restored by rollback from {current['version']}")
        log.info("rolled back: version %d is the champion again", target)
        return target

    def _point(self, version: int, history: list[int], model_name: str) -> None:
        # Serving link first, pointer last: the pointer is what names the champion.
        serving = self.root / SERVING_DIR
        serving.mkdir(parents=True, exist_ok=True)
        export = self.path(version) / EXPORT_DIR / model_name
        if export.is_dir():
            link = serving / model_name
            tmp = serving / f".{model_name}.{uuid.uuid4().hex}"
            tmp.symlink_to(os.path.relpath(export, serving))
            tmp.replace(link)
        atomic_write_json(self.root / CHAMPION, {"version": version, "history": history})

    def _next_number(self) -> int:
        numbers = [int(p.name) for p in self.versions_dir.iterdir() if p.name.isdigit()]
        return max(numbers, default=0) + 1

    def _write_manifest(self, folder: Path, fields: dict[str, Any]) -> None:
        files = {name: sha256_file(folder / name) for name in _files(folder)}
        manifest = {
            **fields,
            "files": files,
            "created_at": fields.get("created_at") or datetime.now(UTC).isoformat(),
            "environment": fields.get("environment") or environment(),
        }
        atomic_write_json(folder / MANIFEST, sign(manifest))

    def sign(self, version: int) -> None:
        """Sign an existing version's manifest with ``$LSTM_PIPELINE_SIGNING_KEY``, after
        checking every file against it (a version signed is a version vouched for)."""
        from lstm_model.release.signing import SIGNING_KEY_ENV, signing_key

        if signing_key() is None:
            raise RegistryError(f"${SIGNING_KEY_ENV} is not set: there is no key to sign with")
        manifest = self.manifest(version)
        self._check_files(version, self.path(version), manifest)
        atomic_write_json(self.path(version) / MANIFEST, sign(manifest))


def _read_json(path: Path, limit: int, what: str) -> Any:
    """Parse a JSON file of at most ``limit`` bytes; ArtifactError naming ``what`` if not.

    Opened by ``artifacts.open_regular``: a FIFO, device or socket in its place cannot
    hang the reader, and a link (which could lead out of the registry) is refused.
    """
    try:
        with open_regular(path) as handle:
            raw = handle.read(limit + 1)
    except NotRegularFile as error:
        if error.kind == "symbolic link":
            raise ArtifactError(f"{what} is a link: a link is never followed") from error
        raise ArtifactError(f"{what} is not a regular file but a {error.kind}") from error
    except OSError as error:
        raise ArtifactError(f"{what} cannot be read ({error.strerror})") from error
    if len(raw) > limit:
        raise ArtifactError(f"{what} is larger than {limit} bytes")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise ArtifactError(f"{what} is not valid JSON") from error


def environment() -> dict[str, str]:
    """Library versions and the git commit, for a manifest."""
    import keras

    versions = {"python": platform.python_version(), "keras_backend": keras.backend.backend()}
    for name in ("keras", "tensorflow", "numpy", "pyarrow", "jax", "torch"):
        try:
            module = __import__(name)
            versions[name] = module.__version__
        except ImportError:
            continue
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    versions["git_commit"] = commit
    return versions


def _files(folder: Path) -> list[str]:
    names = []
    for path in folder.rglob("*"):
        if path.is_symlink():  # never followed: it could lead out of the registry
            raise ArtifactError(
                f"model version {folder.name}: {path.relative_to(folder).as_posix()} is a link"
            )
        if path.is_file() and path.name not in {MANIFEST, STATUS, REMOVED}:
            names.append(path.relative_to(folder).as_posix())
    return sorted(names)


def _slice_accuracies(manifest: dict[str, Any]) -> dict[str, float]:
    """Accuracy per slice; for a version registered before slices were, its test accuracy,
    which is aclImdb test's."""
    if manifest.get("slices"):
        return {s["slice"]: s["accuracy"] for s in manifest["slices"]}
    accuracy = (manifest.get("metrics") or {}).get("accuracy")
    return {} if accuracy is None else {ACLIMDB_DOMAIN: accuracy}
