"""Finding the work of a run: ready inbox files (and archived ones to rescore), and
opening each one safely: only regular files, never in a way that can block."""

from __future__ import annotations

from pathlib import Path

from lstm_model.artifacts import (
    remove_temporary_files,
)
from lstm_model.data.drops import (
    BadFile,
    Refused,
    display_name,
    open_drop,
    open_regular,
    ready_files,
    sha256_and_rewind,
)
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.ledger import Ledger, discard_staging, quarantine
from lstm_model.scoring.outcomes import (
    FileOutcome,
    OpenedFile,
    describe,
    error_kind,
    gone,
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
        entry, handle, info = open_drop(path)
    except FileNotFoundError:
        return gone(name)
    except Refused as exc:  # not a regular file, or not one we may open
        return quarantine(exc.entry, exc.reason, folders)
    except OSError as exc:
        return unsettled(name, "", describe(exc), error_kind(exc))
    return OpenedFile(entry, handle, info)
