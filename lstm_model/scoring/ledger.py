"""Exactly once: the ledger, the claim on a (content, model version), publishing, and
what becomes of a file that cannot be scored.

The ledger is keyed by (content sha256, model version). Per file the order is: result and
rejects written atomically under names fixed by the content hash and the model version ->
ledger row committed -> input moved to the archive. A run killed at any point leaves the
input in the inbox; the next run either finds the ledger row (and only archives the input)
or scores it again into the same names, so each row ends up in exactly one result file.
If the ledger row cannot be committed, the result and rejects are removed again before
anything else happens to the file, so its rows are never in two places. Deciding whether
a (content, version) is scored and publishing it happen under its lock (``claim``), so
runs that overlap score each file once.

An entry is moved (archived, quarantined) only while its path still holds the entry that
was read: its ``Dropped.identity`` is compared with the path's ``lstat`` before the move
and checked again on what was moved; a file that a user put under the same name meanwhile
stays in the inbox for the next run.

No single inbox entry stops a run (``guard``): an entry that is not a regular file, or a
file the reader or the input contract condemns, is quarantined with its reason; any other
error (a check that crashes, a full disk, a model that gives the wrong number of outputs)
is not the file's fault, so the file stays in the inbox and its outcome is "failed".
Attempts are counted per content, once per run (``start_attempt``, before a row is read:
an attempt that kills the process counts too), and forgotten once the content is scored
or quarantined. A content that failed ``max_attempts`` runs in a row is quarantined,
unread, by the next run. When a run scores nothing and several of its files fail the same
way, the fault is the run's (``settle_run``): its counts are taken back and the run fails
loudly.

Used alike by the sequential and the parallel paths, which never import each other.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from lstm_model.artifacts import (
    exclusive_lock,
    file_mode,
    restrict,
)
from lstm_model.data.drops import (
    BadFile,
    Dropped,
    archive_entry,
    printable,
    quarantine_entry,
)
from lstm_model.errors import PipelineError
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.infer import ScoringModel
from lstm_model.scoring.outcomes import (
    MAX_REASON_CHARS,
    FileOutcome,
    describe,
    error_kind,
    gone,
    unsettled,
)
from lstm_model.scoring.rows import ContractBreach, result_paths

log = logging.getLogger(__name__)


T = TypeVar("T")

UNFINISHED = (
    "the attempt did not finish: the process stopped while scoring the file (killed, out "
    "of memory, a crash or a time limit)"
)


def new_run_id() -> str:
    """A name for one scoring run: attempts are counted once per run and content."""
    return uuid.uuid4().hex


class SystemicFailure(PipelineError):
    """Several files of a run failed the same way and none was scored: the fault is the
    run's (a locked ledger, a broken contract store, a full disk), not the files'."""


class Ledger:
    """SQLite record of the (content sha256, model version) pairs already scored, and of
    the runs in a row whose attempt at each content failed (see ``start_attempt``)."""

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
                " source_file TEXT NOT NULL, last_error TEXT NOT NULL, failed_at TEXT NOT NULL,"
                " run_id TEXT NOT NULL DEFAULT '')"
            )
            columns = {row[1] for row in db.execute("PRAGMA table_info(failures)")}
            if "run_id" not in columns:  # a ledger written before runs were told apart
                db.execute("ALTER TABLE failures ADD COLUMN run_id TEXT NOT NULL DEFAULT ''")

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

    def failed_runs(self, sha256: str, run: str) -> tuple[int, str]:
        """How many runs before ``run`` failed at this content in a row, and the last error."""
        with self._connect() as db:
            row = db.execute(
                "SELECT attempts, run_id, last_error FROM failures WHERE sha256 = ?", (sha256,)
            ).fetchone()
        if row is None:
            return 0, ""
        attempts, counted_run, last_error = row
        return int(attempts) - (counted_run == run), str(last_error)

    def start_attempt(self, sha256: str, source_file: str, run: str) -> int:
        """Count ``run``'s attempt at a content, once per run; until it ends, its last error
        says it did not finish. Returns the attempts in a row, this one included."""
        return self.count_failure(sha256, source_file, UNFINISHED, run)

    def count_failure(self, sha256: str, source_file: str, error: str, run: str) -> int:
        """Record why ``run``'s attempt at a content failed (counted once per run);
        returns the attempts in a row."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO failures (sha256, attempts, source_file, last_error, failed_at,"
                " run_id) VALUES (?, 1, ?, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE"
                " SET attempts = attempts + (run_id != excluded.run_id),"
                " source_file = excluded.source_file, last_error = excluded.last_error,"
                " failed_at = excluded.failed_at, run_id = excluded.run_id",
                (sha256, source_file, error, datetime.now(UTC).isoformat(), run),
            )
            (attempts,) = db.execute(
                "SELECT attempts FROM failures WHERE sha256 = ?", (sha256,)
            ).fetchone()
        return int(attempts)

    def forget_failures(self, sha256: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM failures WHERE sha256 = ?", (sha256,))

    def forget_run(self, run: str) -> int:
        """Take back the attempts ``run`` counted; returns how many."""
        with self._connect() as db:
            taken = db.execute(
                "UPDATE failures SET attempts = attempts - 1, run_id = '' WHERE run_id = ?",
                (run,),
            ).rowcount
            db.execute("DELETE FROM failures WHERE attempts <= 0")
        return int(taken)

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
    entry: Dropped, folders: ScoringFolders, champion: ScoringModel
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


def start_attempt(
    entry: Dropped, folders: ScoringFolders, config: ScoringConfig, run: str, version: int
) -> FileOutcome | None:
    """Count ``run``'s attempt at a file before any of its rows is read, so that an
    attempt the process does not survive (out of memory, a crash, a time limit) counts as
    a failure. None: go on and read it. A file whose content failed ``max_attempts``
    earlier runs in a row is instead quarantined, unread, with the last error (and what a
    killed attempt left in results/ and rejects/ is removed first). Call it under
    ``claim``, once ``already_scored`` said the content is to be scored."""
    ledger = Ledger(folders.ledger)
    earlier, last_error = ledger.failed_runs(entry.sha256, run)
    if earlier < config.max_attempts:
        ledger.start_attempt(entry.sha256, entry.name, run)
        return None
    for unrecorded in result_paths(entry, version, folders):  # the ledger lacks them
        unrecorded.unlink(missing_ok=True)
    return quarantine(
        entry, f"scoring failed {earlier} runs in a row; last error: {last_error}", folders
    )


def publish(entry: Dropped, outcome: FileOutcome, folders: ScoringFolders) -> None:
    """Record a scored file in the ledger, then archive its input. Call it under ``claim``
    once the result and rejects are in place; if the ledger row cannot be committed, they
    are removed again (the rows stay only in the input) and the error is raised."""
    try:
        Ledger(folders.ledger).record(outcome)
    except BaseException:
        for unrecorded in (outcome.result_path, outcome.rejects_path):
            if unrecorded is not None:
                unrecorded.unlink(missing_ok=True)
        raise
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
    archive_entry(entry, folders.archive)


def quarantine(entry: Dropped, reason: str, folders: ScoringFolders) -> FileOutcome:
    """Move a bad file or a non-regular object to quarantine/ with its JSON sidecar
    (``drops.quarantine_entry``); its content's failed attempts are forgotten. An entry
    replaced under its name since it was read is left in the inbox for the next run
    ("skipped")."""
    reason = printable(reason)[:MAX_REASON_CHARS]
    try:
        target = quarantine_entry(entry, reason, folders.quarantine)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and not os.path.lexists(entry.path):
            return gone(entry.name, entry.sha256)
        return unsettled(
            entry.name, entry.sha256, f"not quarantined ({describe(exc)}): {reason}",
            error_kind(exc),
        )  # fmt: skip
    if target is None:
        note = (
            f"replaced in the inbox before it could be quarantined ({reason}); the new file "
            "is left for the next run"
        )
        log.warning("%s: skipped: %s", entry.name, note)
        return FileOutcome(source_file=entry.name, sha256=entry.sha256, status="skipped",
                           reason=printable(note)[:MAX_REASON_CHARS])  # fmt: skip
    with suppress(sqlite3.Error, OSError):
        Ledger(folders.ledger).forget_failures(entry.sha256)
    log.warning("%s: quarantined: %s", entry.name, reason)
    return FileOutcome(
        source_file=entry.name, sha256=entry.sha256, status="quarantined", reason=reason,
        quarantine_path=target,
    )  # fmt: skip


def guard(
    entry: Dropped,
    folders: ScoringFolders,
    config: ScoringConfig,
    work: Callable[[], T],
    run: str,
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
        return file_failed(entry, describe(exc), folders, config, run, error_kind(exc))


def file_failed(
    entry: Dropped,
    reason: str,
    folders: ScoringFolders,
    config: ScoringConfig,
    run: str,
    cause: str = "",
) -> FileOutcome:
    """Record ``run``'s failed attempt at a file when the failure is not its fault (a
    check that crashed, a full disk): the file stays in the inbox for the next run, which
    quarantines it, unread, once ``config.max_attempts`` runs in a row have failed.
    ``cause`` is the kind of error (``outcomes.error_kind``). Call it under the claim."""
    try:
        attempts = Ledger(folders.ledger).count_failure(entry.sha256, entry.name, reason, run)
    except (sqlite3.Error, OSError) as exc:
        note = f"{reason}; not counted: {describe(exc)}"
        return unsettled(entry.name, entry.sha256, note, cause)
    then = (
        "left in the inbox for the next run"
        if attempts < config.max_attempts
        else "the next run quarantines it, unread, unless this run's failure is systemic"
    )
    note = f"{reason} (attempt {attempts} of {config.max_attempts}; {then})"
    return unsettled(entry.name, entry.sha256, note, cause)


def fail_file(
    entry: Dropped,
    reason: str,
    folders: ScoringFolders,
    config: ScoringConfig,
    version: int,
    run: str,
    cause: str = "",
) -> FileOutcome:
    """``file_failed`` for a failure seen outside the file's claim (a lost worker)."""
    with claim(folders, entry.sha256, version):
        return file_failed(entry, printable(reason)[:MAX_REASON_CHARS], folders, config, run,
                           cause)  # fmt: skip


def systemic_cause(outcomes: list[FileOutcome]) -> tuple[str, int] | None:
    """The kind of error shared by several failed files of a run that scored none, and
    how many it failed; None for a run whose failures may be the files' own."""
    if any(o.status == "scored" for o in outcomes):
        return None
    causes = Counter(o.cause for o in outcomes if o.status == "failed" and o.cause)
    if not causes:
        return None
    cause, count = causes.most_common(1)[0]
    return (cause, count) if count >= 2 else None


def settle_run(outcomes: list[FileOutcome], folders: ScoringFolders, run: str) -> None:
    """Raise SystemicFailure when a run's failures are its own (``systemic_cause``),
    after taking back the attempts it counted: its files stay in the inbox as they were,
    and none is ever quarantined for a fault that is not its own. Otherwise do nothing."""
    found = systemic_cause(outcomes)
    if found is None:
        return
    cause, count = found
    first = next(o for o in outcomes if o.status == "failed" and o.cause == cause)
    try:
        Ledger(folders.ledger).forget_run(run)
        counted = "nothing was counted against them"
    except (sqlite3.Error, OSError) as exc:
        counted = f"their attempts could not be taken back ({describe(exc)})"
    raise SystemicFailure(
        f"{count} files failed the same way ({cause}) and none was scored: the fault is the "
        f"run's, not the files'; they are left in the inbox and {counted}. Fix the cause and "
        f"run again. The first: {first.source_file}: {first.reason}"
    )
