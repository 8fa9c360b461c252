"""Finding the work of a run: ready inbox files (and archived ones to rescore), and
opening each one safely: only regular files, never in a way that can block."""

from __future__ import annotations

import hashlib
import os
from contextlib import suppress
from pathlib import Path

from lstm_model.artifacts import (
    remove_temporary_files,
)
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.inbox import (
    REGULAR,
    BadFile,
    NotRegular,
    display_name,
    object_kind,
    open_regular,
    ready_files,
    sha256_and_rewind,
)
from lstm_model.scoring.ledger import Ledger, discard_staging, quarantine
from lstm_model.scoring.outcomes import (
    Dropped,
    FileOutcome,
    OpenedFile,
    describe,
    error_kind,
    gone,
    identity,
    unsettled,
)


def files_to_score(folders: ScoringFolders, config: ScoringConfig, version: int) -> list[Path]:
    """Ready inbox entries (files and the other objects to quarantine); with
    ``config.rescore``, also archived files that this champion version has not scored.
    Sweeps temporaries that killed runs left behind."""
    folders.create()
    for folder in (folders.results, folders.rejects, folders.quarantine, folders.archive):
        remove_temporary_files(folder)
    for staged in folders.staging.iterdir():  # parts of killed attempts at published files
        stem = staged.name.rsplit(".", 1)[0]
        if (folders.results / f"{stem}.parquet").exists():
            discard_staging(folders, stem)
    todo = ready_files(folders.inbox, config.settle_seconds)
    if config.rescore:
        ledger = Ledger(folders.ledger)
        for path in sorted(folders.archive.iterdir()):
            sha = _archived_sha256(path)
            if sha is not None and ledger.lookup(sha, version) is None:
                todo.append(path)
    return todo


def _archived_sha256(path: Path) -> str | None:
    try:
        with open_regular(path) as handle:
            return sha256_and_rewind(handle)
    except (OSError, BadFile):
        return None


def open_input(path: Path, folders: ScoringFolders) -> OpenedFile | FileOutcome:
    """``path`` opened and hashed if it is a regular file that may be read; otherwise its
    outcome: gone (another run moved it), or quarantined as it is, never opened."""
    name = display_name(path.name)
    try:
        kind = object_kind(os.lstat(path).st_mode)
        if kind != REGULAR:
            raise NotRegular(kind)
        handle = open_regular(path)
    except FileNotFoundError:
        return gone(name)
    except BadFile as exc:  # not a regular file, or not one we may open
        kind = exc.kind if isinstance(exc, NotRegular) else REGULAR
        try:
            seen = identity(os.lstat(path))
        except FileNotFoundError:
            return gone(name)
        except OSError:
            seen = None
        entry = Dropped(
            path=path, name=name, sha256=_identity_sha256(path, kind), kind=kind, identity=seen
        )
        return quarantine(entry, str(exc), folders)
    except OSError as exc:
        return unsettled(name, "", describe(exc), error_kind(exc))
    try:
        info = os.fstat(handle.fileno())
        sha = sha256_and_rewind(handle)
        entry = Dropped(path=path, name=name, sha256=sha, identity=identity(info))
    except OSError as exc:
        handle.close()
        return unsettled(name, "", describe(exc), error_kind(exc))
    return OpenedFile(entry, handle, info)


def _identity_sha256(path: Path, kind: str) -> str:
    """What names an entry that is not read: a link's target, else the object itself."""
    digest = hashlib.sha256(f"{kind}\0".encode())
    with suppress(OSError):
        if kind == "symbolic link":
            digest.update(os.readlink(os.fsencode(path)))
        else:
            info = os.lstat(path)
            digest.update(f"{info.st_dev}:{info.st_ino}:{info.st_mtime_ns}".encode())
    digest.update(b"\0" + os.fsencode(path.name))
    return digest.hexdigest()
