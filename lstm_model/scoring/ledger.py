"""Exactly once: the ledger, the claim on a (content, model version), publishing, and
what becomes of a file that cannot be scored.

The ledger is keyed by (content sha256, model version). Per file the order is: result and
rejects written atomically under names fixed by the content hash and the model version ->
ledger row committed -> input moved to the archive. A run killed at any point leaves the
input in the inbox; the next run either finds the ledger row (and only archives the input)
or scores it again into the same names, so each row ends up in exactly one result file.
Deciding whether a (content, version) is scored and publishing it happen under its lock
(``claim``), so runs that overlap score each file once.

No single inbox entry stops a run (``guard``): an entry that is not a regular file, or a
file the reader or the input contract condemns, is quarantined with its reason; any other
error (a check that crashes, a full disk, a model that gives the wrong number of outputs)
is not the file's fault, so the file stays in the inbox and its outcome is "failed",
counted per content in the ledger; after ``max_attempts`` failed runs in a row it is
quarantined with the last error.

Used alike by the sequential and the parallel paths, which never import each other.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from lstm_model.artifacts import (
    atomic_write_json,
    exclusive_lock,
    file_mode,
    restrict,
)
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.inbox import (
    BadFile,
    display_name,
    printable,
    safe_name,
)
from lstm_model.scoring.infer import Champion
from lstm_model.scoring.outcomes import (
    MAX_REASON_CHARS,
    Dropped,
    FileOutcome,
    describe,
    gone,
    unsettled,
)
from lstm_model.scoring.rows import ContractBreach

log = logging.getLogger(__name__)


T = TypeVar("T")


class Ledger:
    """SQLite record of the (content sha256, model version) pairs already scored, and of
    the failed attempts in a row at each content (see ``file_failed``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():  # made owner-only before SQLite writes a byte to it
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, file_mode()))
            restrict(path)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS scored ("
                " sha256 TEXT NOT NULL, model_version INTEGER NOT NULL,"
                " source_file TEXT NOT NULL, result_file TEXT NOT NULL,"
                " rows_scored INTEGER NOT NULL, rows_rejected INTEGER NOT NULL,"
                " scored_at TEXT NOT NULL, PRIMARY KEY (sha256, model_version))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS failures ("
                " sha256 TEXT PRIMARY KEY, attempts INTEGER NOT NULL,"
                " source_file TEXT NOT NULL, last_error TEXT NOT NULL, failed_at TEXT NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def lookup(self, sha256: str, version: int) -> dict[str, Any] | None:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            row = db.execute(
                "SELECT * FROM scored WHERE sha256 = ? AND model_version = ?", (sha256, version)
            ).fetchone()
        return None if row is None else dict(row)

    def record(self, outcome: FileOutcome) -> None:
        """Record a scored file; its content's failed attempts are forgotten."""
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO scored VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    outcome.sha256,
                    outcome.model_version,
                    outcome.source_file,
                    str(outcome.result_path.name if outcome.result_path else ""),
                    outcome.rows_scored,
                    outcome.rows_rejected,
                    datetime.now(UTC).isoformat(),
                ),
            )
            db.execute("DELETE FROM failures WHERE sha256 = ?", (outcome.sha256,))

    def count_failure(self, sha256: str, source_file: str, error: str) -> int:
        """Count one more failed attempt at a content; returns the attempts in a row."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO failures VALUES (?, 1, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE"
                " SET attempts = attempts + 1, source_file = excluded.source_file,"
                " last_error = excluded.last_error, failed_at = excluded.failed_at",
                (sha256, source_file, error, datetime.now(UTC).isoformat()),
            )
            (attempts,) = db.execute(
                "SELECT attempts FROM failures WHERE sha256 = ?", (sha256,)
            ).fetchone()
        return int(attempts)

    def forget_failures(self, sha256: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM failures WHERE sha256 = ?", (sha256,))

    def entries(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM scored ORDER BY scored_at")]

    def failures(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM failures ORDER BY failed_at")]


@contextmanager
def claim(folders: ScoringFolders, sha: str, version: int) -> Iterator[None]:
    """Hold the lock of one (content, model version): one process at a time decides
    whether it is scored and publishes it, so overlapping runs never score it twice."""
    with exclusive_lock(_lock_path(folders, sha, version)):
        yield


def _lock_path(folders: ScoringFolders, sha: str, version: int) -> Path:
    return folders.locks / f"{sha}.v{version}.lock"


def already_scored(
    entry: Dropped, folders: ScoringFolders, champion: Champion
) -> FileOutcome | None:
    """A "skipped" outcome if this content is in the ledger for this model version (the
    input is archived) or was moved away by another run; None if it is to be scored.
    Call it under ``claim``."""
    done = Ledger(folders.ledger).lookup(entry.sha256, champion.version)
    present = os.path.lexists(entry.path)
    if done is None:
        return None if present else gone(entry.name, entry.sha256)
    reason = f"same content already scored as {done['result_file']}"
    if present and not _is_archived(entry.path, folders):
        _archive(entry, folders)
    _lock_path(folders, entry.sha256, champion.version).unlink(missing_ok=True)
    log.info("%s: skipped: %s", entry.name, reason)
    return FileOutcome(
        source_file=entry.name, sha256=entry.sha256, status="skipped",
        model_version=champion.version, reason=reason,
    )  # fmt: skip


def publish(entry: Dropped, outcome: FileOutcome, folders: ScoringFolders) -> None:
    """Record a scored file in the ledger, then archive its input. Call it under ``claim``
    once the result and rejects are in place."""
    Ledger(folders.ledger).record(outcome)
    if not _is_archived(entry.path, folders):
        _archive(entry, folders)
    if outcome.result_path is not None:
        discard_staging(folders, outcome.result_path.stem)
    # Safe only now the ledger has the row: whoever takes a fresh lock skips this content.
    _lock_path(folders, entry.sha256, outcome.model_version or 0).unlink(missing_ok=True)


def discard_staging(folders: ScoringFolders, result_stem: str) -> None:
    """Remove the staging folders of every attempt at one result (``<stem>.<token>``)."""
    for folder in folders.staging.glob(f"{result_stem}.*"):
        shutil.rmtree(folder, ignore_errors=True)


def _is_archived(path: Path, folders: ScoringFolders) -> bool:
    return path.parent.resolve() == folders.archive.resolve()


def _archive(entry: Dropped, folders: ScoringFolders) -> None:
    target = folders.archive / f"{entry.sha256[:12]}-{safe_name(entry.path.name)}"
    try:
        os.replace(entry.path, target)
    except FileNotFoundError:  # removed by hand once read: its rows are accounted for
        log.info("%s: no longer in the inbox to archive", entry.name)
        return
    _restrict_moved(target)


def _restrict_moved(path: Path) -> None:
    try:
        restrict(path)
    except OSError as exc:  # not ours: its folder (owner-only) still guards it
        log.warning("%s: mode left as it was: %s", display_name(path.name), describe(exc))


def _quarantine_target(entry: Dropped, folders: ScoringFolders) -> Path:
    """A name in quarantine/ that no other entry holds, reserved by creating its sidecar:
    two entries of the same content whose names reduce to the same safe name (or the same
    file dropped twice) each keep their own sidecar and reason."""
    safe, number = safe_name(entry.path.name), 1
    while True:
        name = f"{entry.sha256[:12]}{f'.{number}' if number > 1 else ''}-{safe}"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            os.close(os.open(folders.quarantine / f"{name}.json", flags, file_mode()))
        except FileExistsError:
            number += 1
            continue
        return folders.quarantine / name


def quarantine(entry: Dropped, reason: str, folders: ScoringFolders) -> FileOutcome:
    """Move a bad file or a non-regular object to quarantine/ (``os.replace``, which never
    opens it) with a JSON sidecar that says what it is and what is wrong."""
    reason = printable(reason)[:MAX_REASON_CHARS]
    try:
        target = _quarantine_target(entry, folders)
    except OSError as exc:
        return unsettled(entry.name, entry.sha256, f"not quarantined ({describe(exc)}): {reason}")
    sidecar = target.with_name(target.name + ".json")
    try:
        atomic_write_json(
            sidecar,
            {
                "source_file": entry.name,
                "sha256": entry.sha256,
                "kind": entry.kind,
                "reason": reason,
                "quarantined_at": datetime.now(UTC).isoformat(),
            },
        )
        os.replace(entry.path, target)
    except OSError as exc:
        sidecar.unlink(missing_ok=True)
        if isinstance(exc, FileNotFoundError) and not os.path.lexists(entry.path):
            return gone(entry.name, entry.sha256)
        return unsettled(entry.name, entry.sha256, f"not quarantined ({describe(exc)}): {reason}")
    _restrict_moved(target)
    log.warning("%s: quarantined: %s", entry.name, reason)
    return FileOutcome(
        source_file=entry.name, sha256=entry.sha256, status="quarantined", reason=reason,
        quarantine_path=target,
    )  # fmt: skip


def guard(
    entry: Dropped, folders: ScoringFolders, config: ScoringConfig, work: Callable[[], T]
) -> T | FileOutcome:
    """Run ``work`` on one file (under its claim), turning whatever goes wrong into the
    file's outcome so that the run goes on: a verdict on the file (``BadFile``, a contract
    breach) quarantines it; any other error is a failed attempt (``file_failed``)."""
    try:
        return work()
    except ContractBreach as exc:
        return quarantine(entry, f"breaks the scoring_input contract: {exc}", folders)
    except BadFile as exc:
        return quarantine(entry, str(exc), folders)
    except Exception as exc:
        log.debug("%s: the failed attempt's traceback", entry.name, exc_info=exc)
        return file_failed(entry, describe(exc), folders, config)


def file_failed(
    entry: Dropped, reason: str, folders: ScoringFolders, config: ScoringConfig
) -> FileOutcome:
    """Count a failed attempt at a file when the failure is not its fault (a check that
    crashed, a full disk): the file stays in the inbox for the next run, and after
    ``config.max_attempts`` failed runs in a row it is quarantined with the last error.
    Call it under the file's claim."""
    try:
        attempts = Ledger(folders.ledger).count_failure(entry.sha256, entry.name, reason)
    except (sqlite3.Error, OSError) as exc:
        return unsettled(entry.name, entry.sha256, f"{reason}; not counted: {describe(exc)}")
    if attempts < config.max_attempts:
        return unsettled(
            entry.name,
            entry.sha256,
            f"{reason} (attempt {attempts} of {config.max_attempts}; "
            "left in the inbox for the next run)",
        )
    outcome = quarantine(
        entry, f"scoring failed {attempts} runs in a row; last error: {reason}", folders
    )
    if outcome.status == "quarantined":
        with suppress(sqlite3.Error, OSError):
            Ledger(folders.ledger).forget_failures(entry.sha256)
    return outcome


def fail_file(
    entry: Dropped, reason: str, folders: ScoringFolders, config: ScoringConfig, version: int
) -> FileOutcome:
    """``file_failed`` for a failure seen outside the file's claim (a lost worker)."""
    with claim(folders, entry.sha256, version):
        return file_failed(entry, printable(reason)[:MAX_REASON_CHARS], folders, config)
