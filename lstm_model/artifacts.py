"""Atomic, hash-addressed artifacts with manifests.

Every artifact is a folder holding its files and a ``manifest.json``. The folder is
built under a temporary name and renamed into place in one step, so a reader sees
either nothing or a complete artifact, and a crash leaves only a temporary folder
that the next run removes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import stat
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from lstm_model.errors import ArtifactError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
FILE_MODE_ENV = "LSTM_PIPELINE_FILE_MODE"
DEFAULT_FILE_MODE = 0o600
_TMP_MARK = ".tmp-"
_CHUNK = 1 << 20
REGULAR = "regular file"


class NotRegularFile(ArtifactError):
    """A path that names something other than a regular file (a FIFO, a socket, a device,
    a directory or a symbolic link): never opened for reading, never followed."""

    def __init__(self, path: Path | str, kind: str) -> None:
        super().__init__(f"{path}: not a regular file but a {kind}")
        self.kind = kind


def object_kind(mode: int) -> str:
    """What an ``lstat``/``fstat`` mode says a directory entry is, in words."""
    kinds = (
        (stat.S_ISREG, REGULAR),
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    )
    return next((kind for test, kind in kinds if test(mode)), "file of an unknown type")


def open_regular(path: Path, buffering: int = _CHUNK) -> BinaryIO:
    """``path`` opened for reading if it is a regular file: opened with ``O_NONBLOCK`` and
    ``O_NOFOLLOW`` (a FIFO or a device cannot block it, a link is never followed), then
    refused unless ``fstat`` of that descriptor says it is a regular file, so a swap after
    any earlier check cannot fool it. Raises NotRegularFile for any other object, and
    OSError (``FileNotFoundError``, ``PermissionError``) as ``os.open`` does."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # what O_NOFOLLOW answers for a link
            raise NotRegularFile(path, "symbolic link") from exc
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):  # sockets, devices
            raise NotRegularFile(path, object_kind(os.lstat(path).st_mode)) from exc
        raise
    try:
        kind = object_kind(os.fstat(fd).st_mode)
        if kind != REGULAR:
            raise NotRegularFile(path, kind)
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


def file_mode() -> int:
    """Permission bits of every file the pipeline writes: ``$LSTM_PIPELINE_FILE_MODE``
    (octal, e.g. ``640`` to let the group read) or, by default, ``600``: the owner only.
    Results, rejects, the archive, the ledger and the registry hold users' texts and models."""
    raw = os.environ.get(FILE_MODE_ENV, "").strip()
    if not raw:
        return DEFAULT_FILE_MODE
    try:
        mode = int(raw, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777 or not mode & 0o600 == 0o600:
        raise ArtifactError(
            f"${FILE_MODE_ENV}={raw!r} is not an octal file mode that lets the owner read and "
            "write (e.g. 600 or 640)"
        )
    return mode


def dir_mode() -> int:
    """Folders' bits: the file mode, with search (x) wherever it grants read (600 -> 700)."""
    mode = file_mode()
    return mode | ((mode & 0o444) >> 2)


def restrict(path: Path) -> None:
    """Give ``path`` the pipeline's mode (``file_mode`` or ``dir_mode``); links are left as
    they are (their mode means nothing, and their target is not ours to change)."""
    if path.is_symlink():
        return
    os.chmod(path, dir_mode() if path.is_dir() else file_mode())


def restrict_tree(root: Path) -> None:
    """``restrict`` ``root`` and everything below it."""
    restrict(root)
    for path in root.rglob("*"):
        restrict(path)


def make_dirs(path: Path) -> Path:
    """``mkdir -p`` that gives the folders it creates the pipeline's ``dir_mode``."""
    missing = []
    at = path
    while not at.exists() and at != at.parent:
        missing.append(at)
        at = at.parent
    path.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        restrict(folder)
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_text(*parts: str) -> str:
    """Hex sha256 of the given strings joined by NUL bytes."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def require_sha256(path: Path, expected: str, remedy: str) -> None:
    """Raise ArtifactError unless ``path`` exists and hashes to ``expected``."""
    if not path.is_file():
        raise ArtifactError(f"{path}: missing; {remedy}")
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactError(
            f"{path}: sha256 {actual[:12]}… differs from {expected[:12]}… recorded when it "
            f"was written; {remedy}"
        )


def temporary_sibling(path: Path) -> Path:
    """A unique temporary name beside ``path``, of the kind ``remove_temporary_files``
    clears, for a file that another process writes before it is renamed to ``path``."""
    return path.with_name(f".{path.name}{_TMP_MARK}{uuid.uuid4().hex}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    make_dirs(path.parent)
    tmp = temporary_sibling(path)
    try:
        with os.fdopen(
            os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode()), "wb"
        ) as handle:
            os.fchmod(handle.fileno(), file_mode())  # the umask may have taken bits away
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_parquet(path: Path, table: Any) -> None:
    """Write an Arrow table as Parquet through a temporary file and a rename."""
    with atomic_parquet_writer(path, table.schema) as writer:
        writer.write_table(table)


@contextmanager
def atomic_parquet_writer(path: Path, schema: Any) -> Iterator[Any]:
    """A ``pyarrow.parquet.ParquetWriter`` whose file appears at ``path`` only when the
    block completes; on an exception (or a kill) no partial file is ever visible there."""
    import pyarrow.parquet as pq

    make_dirs(path.parent)
    tmp = temporary_sibling(path)
    try:
        # Created with the pipeline's mode before a byte is written: never readable by others.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode()))
        os.chmod(tmp, file_mode())
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            yield writer
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_temporary_files(folder: Path) -> list[Path]:
    """Delete the temporary files that killed atomic writes left in ``folder``."""
    removed = [p for p in folder.glob(f".*{_TMP_MARK}*") if p.is_file()]
    for stale in removed:
        log.info("removing leftover temporary %s", stale)
        stale.unlink(missing_ok=True)
    return removed


def tree_size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (links counted, never followed)."""
    if path.is_dir() and not path.is_symlink():
        return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())
    return path.lstat().st_size


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block.

    The operating system drops the lock when its process dies, so a killed run never
    leaves a stale lock behind (a lock file may stay; it is free).
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented, key-sorted JSON, atomically."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write_bytes(path, text.encode())


class Manifest(BaseModel):
    """What an artifact folder holds and where it came from."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="Artifact kind, e.g. 'imdb_reviews'.")
    content_sha256: str = Field(description="sha256 of the artifact's main file.")
    files: dict[str, str] = Field(description="sha256 of every file, by name.")
    inputs: dict[str, str] = Field(default_factory=dict, description="sha256 of each input.")
    config: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())


def read_manifest(folder: Path) -> Manifest:
    """Load ``folder/manifest.json``; raise ArtifactError if absent or unreadable."""
    path = folder / MANIFEST_NAME
    try:
        return Manifest.model_validate_json(path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"{folder}: no {MANIFEST_NAME}; the artifact is incomplete") from exc
    except ValueError as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({exc})") from exc


def verify_artifact(folder: Path) -> Manifest:
    """Check every file listed in the manifest against its sha256; return the manifest."""
    manifest = read_manifest(folder)
    for name, expected in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in the manifest but missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(
                f"{path}: sha256 {actual[:12]}… does not match the manifest's {expected[:12]}…; "
                "the file was changed after it was written"
            )
    return manifest


def find_valid_artifact(folder: Path) -> Manifest | None:
    """Return the manifest of a complete, intact artifact at ``folder``, else None."""
    if not (folder / MANIFEST_NAME).is_file():
        return None
    try:
        return verify_artifact(folder)
    except ArtifactError as exc:
        log.warning("ignoring damaged artifact: %s", exc)
        return None


@contextmanager
def staged_artifact(folder: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``folder`` to fill; publish it by rename on success.

    On error the temporary folder is removed. If ``folder`` already exists (another run
    published it first, or a damaged copy), the complete new one replaces it.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(folder)
    tmp = folder.with_name(f".{folder.name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex}")
    tmp.mkdir()
    try:
        yield tmp
        if folder.exists():
            trash = folder.with_name(f".{folder.name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex}")
            os.replace(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_manifest(
    folder: Path,
    *,
    kind: str,
    main_file: str,
    inputs: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> Manifest:
    """Hash every file in ``folder`` and write its manifest (atomically, last)."""
    files = {
        path.name: sha256_file(path)
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != MANIFEST_NAME
    }
    if main_file not in files:
        raise ArtifactError(f"{folder}: main file {main_file!r} was not written")
    manifest = Manifest(
        kind=kind,
        content_sha256=files[main_file],
        files=files,
        inputs=dict(inputs or {}),
        config=dict(config or {}),
        details=dict(details or {}),
    )
    atomic_write_json(folder / MANIFEST_NAME, manifest.model_dump(mode="json"))
    return manifest


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove temporary siblings left by runs that were killed (their process is gone)."""
    for stale in folder.parent.glob(f".{folder.name}{_TMP_MARK}*"):
        pid = stale.name.rsplit(_TMP_MARK, 1)[1].split("-", 1)[0]
        if pid.isdigit() and _process_alive(int(pid)):
            continue
        log.info("removing leftover temporary %s", stale)
        shutil.rmtree(stale, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
