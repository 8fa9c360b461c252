"""Batch scoring of dropped files with the champion model, exactly once.

Layout under the scoring root: ``inbox/`` (users drop files), ``results/`` (one Parquet per
scored file), ``rejects/`` (bad rows of good files, with reasons), ``quarantine/`` (whole
bad files and every inbox entry that is not a regular file, each with a JSON sidecar
saying what it is and why), ``archive/`` (inputs once done), ``ledger.sqlite``, ``locks/``
and ``staging/`` (parts of files scored on Dask, see ``scoring_parts``). Everything the
pipeline writes there is readable by its owner only (``artifacts.file_mode``); the inbox
keeps the mode its users gave it.

Exactly once: the ledger is keyed by (content sha256, model version). Per file the order
is: result and rejects written atomically under names fixed by the content hash and the
model version -> ledger row committed -> input moved to the archive. A run killed at any
point leaves the input in the inbox; the next run either finds the ledger row (and only
archives the input) or scores it again into the same names, so each row ends up in exactly
one result file, and no temporary file survives (they are swept at the start of a run).
Deciding whether a (content, version) is scored and publishing it happen under its lock
(``claim``), so runs that overlap score each file once.

No single inbox entry stops a run (``guard``): an entry that is not a regular file, or a
file the reader or the input contract condemns, is quarantined with its reason; bad rows
are rejected; any other error (a check that crashes, a full disk, a model that gives the
wrong number of outputs) is not the file's fault, so the file stays in the inbox and its
outcome is "failed", counted per content in the ledger; after ``max_attempts`` failed
runs in a row it is quarantined with the last error. Rows the model scores as NaN,
infinite or outside [0, 1] are rejected ("model output is not a probability").
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Literal, NamedTuple, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import (
    atomic_parquet_writer,
    atomic_write_bytes,
    atomic_write_json,
    exclusive_lock,
    file_mode,
    make_dirs,
    remove_temporary_files,
    restrict,
)
from lstm_model.canary import ModelOutputError, verify_canary
from lstm_model.config import ScoringConfig
from lstm_model.errors import DataContractError, PipelineError
from lstm_model.evaluate import PROBABILITIES_FILE, THRESHOLD
from lstm_model.inbox import (
    REGULAR,
    BadFile,
    NotRegular,
    Reject,
    Rows,
    display_name,
    iter_rows,
    object_kind,
    open_regular,
    printable,
    ready_files,
    reject,
    safe_name,
    sha256_and_rewind,
)
from lstm_model.registry import Registry
from lstm_model.tokeniser import OOV_ID, Tokeniser

log = logging.getLogger(__name__)

FOLDERS = ("inbox", "results", "rejects", "quarantine", "archive")
HISTOGRAM_BINS = 20
MAX_REASON_CHARS = 2000
NOT_A_PROBABILITY = "model output is not a probability"
FrameCheck = Callable[[pd.DataFrame], None]
"""A contract over a frame; raises DataContractError (with the reason) when the frame
breaks it."""
T = TypeVar("T")


class ScoringFolders(BaseModel):
    """Where scoring reads and writes; every path is below ``root``."""

    model_config = ConfigDict(frozen=True)

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.sqlite"

    @property
    def staging(self) -> Path:
        """Input and scored parts of files being scored in parallel (see scoring_parts)."""
        return self.root / "staging"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    def create(self) -> None:
        """Make the folders: the inbox with the mode its users' umask gives it, every
        folder the pipeline writes with the owner-only ``artifacts.dir_mode``."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        for name in (*FOLDERS[1:], "staging", "locks"):
            make_dirs(self.root / name)


class ScoreTally(BaseModel):
    """Running figures of the rows scored so far: counts, score histogram and drift inputs."""

    rows_scored: int = 0
    positives: int = 0
    histogram: list[int] = [0] * HISTOGRAM_BINS
    tokens: int = 0
    oov_tokens: int = 0
    text_chars: int = 0

    def __add__(self, other: ScoreTally) -> ScoreTally:
        return ScoreTally(
            rows_scored=self.rows_scored + other.rows_scored,
            positives=self.positives + other.positives,
            histogram=[a + b for a, b in zip(self.histogram, other.histogram, strict=True)],
            tokens=self.tokens + other.tokens,
            oov_tokens=self.oov_tokens + other.oov_tokens,
            text_chars=self.text_chars + other.text_chars,
        )


class FileOutcome(BaseModel):
    """What happened to one inbox entry; every row read is counted in exactly one place.
    A "failed" file stays in the inbox and none of its rows count as read."""

    source_file: str
    sha256: str
    status: Literal["scored", "skipped", "quarantined", "failed"]
    reason: str = ""
    model_version: int | None = None
    rows_total: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    positives: int = 0
    result_path: Path | None = None
    rejects_path: Path | None = None
    quarantine_path: Path | None = None
    histogram: list[int] = []
    tokens: int = 0
    oov_tokens: int = 0
    text_chars: int = 0


class Dropped(BaseModel):
    """One inbox entry being handled: its path, display name (``inbox.display_name``), what
    it is, and its sha256: of its bytes for a regular file; for another object, of its link
    target or its identity, as it is never read."""

    model_config = ConfigDict(frozen=True)

    path: Path
    name: str
    sha256: str
    kind: str = REGULAR


def scored_outcome(
    entry: Dropped,
    version: int,
    rows_total: int,
    tally: ScoreTally,
    result_path: Path,
    rejects_path: Path | None,
    rows_rejected: int,
) -> FileOutcome:
    """The outcome of a scored file whose rows reconcile; raises PipelineError otherwise."""
    if tally.rows_scored + rows_rejected != rows_total:
        raise PipelineError(
            f"row counts do not reconcile: {rows_total} read, "
            f"{tally.rows_scored} scored, {rows_rejected} rejected"
        )
    return FileOutcome(
        source_file=entry.name,
        sha256=entry.sha256,
        status="scored",
        model_version=version,
        rows_total=rows_total,
        rows_rejected=rows_rejected,
        result_path=result_path,
        rejects_path=rejects_path,
        **tally.model_dump(),
    )


class Champion(BaseModel):
    """The champion model's version, folder and reference figures."""

    model_config = ConfigDict(frozen=True)

    version: int
    folder: Path
    model_sha256: str
    test_positive_rate: float
    reference: dict[str, float | None] = {}
    """Training data's oov_rate, mean_chars and mean_tokens (empty for older models)."""


def load_champion(registry_root: Path) -> Champion:
    """The current champion, every file checked against its (signed) manifest, and its
    Keras model checked on the canary texts before any file is scored."""
    from lstm_model.model import predict_ids

    registry = Registry(registry_root)
    version = registry.champion()
    if version is None:
        raise PipelineError(f"no champion model in {registry_root}: run the retraining flow first")
    folder = registry.load_version(version)
    manifest = registry.trusted_manifest(version)
    model, tokeniser = _model_and_tokeniser(folder, manifest["files"]["model.keras"])
    verify_canary(
        lambda texts: predict_ids(model, tokeniser.encode(list(texts))),
        manifest.get("canary"),
        "keras",
        f"model version {version}",
    )
    reference = np.load(folder / "evaluation" / PROBABILITIES_FILE)
    return Champion(
        version=version,
        folder=folder,
        model_sha256=manifest["files"]["model.keras"],
        test_positive_rate=float(np.mean(reference >= THRESHOLD)),
        reference=manifest.get("reference") or {},
    )


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


RESULT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("row_number", pa.int64()),
        pa.field("probability", pa.float32()),
        pa.field("label", pa.int8()),
        pa.field("model_version", pa.int32()),
        pa.field("scored_at", pa.timestamp("us", "UTC")),
        pa.field("source_file", pa.string()),
        pa.field("source_sha256", pa.string()),
    ]
)
REJECTS_SCHEMA = pa.schema(
    [
        pa.field("row_number", pa.int64()),
        pa.field("id", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("text", pa.string()),
        pa.field("text_chars", pa.int64()),
        pa.field("text_sha256", pa.string()),
        pa.field("source_file", pa.string()),
        pa.field("source_sha256", pa.string()),
    ]
)


# ------------------------------------------------------------------ one file, guarded


@dataclass
class OpenedFile:
    """A dropped regular file, open: it is hashed, read and checked through this handle."""

    entry: Dropped
    handle: BinaryIO
    stat: os.stat_result

    def __enter__(self) -> OpenedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def check_unchanged(self) -> None:
        """Raise if the file was written to while it was read (its rows would not be the
        ones hashed); not the file's fault, so it is read again by the next run."""
        now = os.fstat(self.handle.fileno())
        if (now.st_size, now.st_mtime_ns) != (self.stat.st_size, self.stat.st_mtime_ns):
            raise PipelineError("the file changed while it was read")


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
        entry = Dropped(path=path, name=name, sha256=_identity_sha256(path, kind), kind=kind)
        return quarantine(entry, str(exc), folders)
    except OSError as exc:
        return unsettled(name, "", describe(exc))
    try:
        info = os.fstat(handle.fileno())
        entry = Dropped(path=path, name=name, sha256=sha256_and_rewind(handle))
    except OSError as exc:
        handle.close()
        return unsettled(name, "", describe(exc))
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


def unsettled(name: str, sha: str, reason: str) -> FileOutcome:
    """The outcome of a file left in the inbox because handling it failed."""
    reason = printable(reason)[:MAX_REASON_CHARS]
    log.warning("%s: failed: %s", name, reason)
    return FileOutcome(source_file=name, sha256=sha, status="failed", reason=reason)


def describe(exc: BaseException) -> str:
    """An error in one printable, bounded line: its type and message."""
    return printable(f"{type(exc).__name__}: {exc}")[:MAX_REASON_CHARS]


# --------------------------------------------------------------- the sequential path


def score_file(
    path: Path,
    folders: ScoringFolders,
    champion: Champion,
    config: ScoringConfig,
    *,
    check_input: FrameCheck | None = None,
    check_output: FrameCheck | None = None,
) -> FileOutcome:
    """Score one file exactly once (see the module docstring); never raises for what one
    file holds or is: bad files are quarantined, failed attempts counted.

    The file is streamed in chunks of ``config.chunk_rows`` rows into a temporary result
    that is renamed into place only when the whole file is scored, so memory stays flat and
    a reader never sees a partial result. ``check_input`` / ``check_output`` are the data
    contracts (the pipeline passes the GX suites), applied to each chunk: an input that
    breaks its contract quarantines the file with the contract's report; an output that
    breaks its contract publishes nothing and fails the attempt.
    """
    folders.create()
    opened = open_input(path, folders)
    if isinstance(opened, FileOutcome):
        return opened
    entry, started = opened.entry, time.perf_counter()

    def work() -> FileOutcome:
        done = already_scored(entry, folders, champion)
        if done is not None:
            return done
        return _score_opened(opened, folders, champion, config, check_input, check_output)

    with opened, claim(folders, entry.sha256, champion.version):
        outcome = guard(entry, folders, config, work)
    if outcome.status == "scored":
        log.info(
            "%s: %d rows scored, %d rejected by model %d in %.1f s -> %s",
            entry.name, outcome.rows_scored, outcome.rows_rejected, champion.version,
            time.perf_counter() - started, outcome.result_path.name if outcome.result_path else "",
        )  # fmt: skip
    return outcome


def _score_opened(
    opened: OpenedFile,
    folders: ScoringFolders,
    champion: Champion,
    config: ScoringConfig,
    check_input: FrameCheck | None,
    check_output: FrameCheck | None,
) -> FileOutcome:
    entry = opened.entry
    result_path, rejects_path = result_paths(entry, champion.version, folders)
    tally, rows_total = ScoreTally(), 0
    with ExitStack() as stack:
        results = stack.enter_context(atomic_parquet_writer(result_path, RESULT_SCHEMA))
        rejects = RejectsFile(rejects_path, entry, stack)
        for rows in read_chunks(opened, config):
            check_rows(rows, check_input)
            scored = score_rows(rows, champion, config, entry)
            if check_output is not None and scored.table.num_rows:
                check_output(scored.table.to_pandas())
            results.write_table(scored.table)
            rejects.write(rows.rejected + scored.rejected)
            tally, rows_total = tally + scored.tally, rows_total + rows.total
        opened.check_unchanged()
        # inside the writers' block, so that counts that do not add up publish nothing
        outcome = scored_outcome(
            entry, champion.version, rows_total, tally, result_path, rejects.path_if_any,
            rejects.rows,
        )  # fmt: skip
    publish(entry, outcome, folders)
    return outcome


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


def gone(name: str, sha: str = "") -> FileOutcome:
    """The outcome of a file that another run moved away (archived or quarantined)
    between this run's listing and its turn: that run accounts for its rows."""
    reason = "moved out of the inbox by another run before this one could read it"
    log.info("%s: skipped: %s", name, reason)
    return FileOutcome(source_file=name, sha256=sha, status="skipped", reason=reason)


def result_paths(entry: Dropped, version: int, folders: ScoringFolders) -> tuple[Path, Path]:
    """Where a file's result and rejects go: names fixed by its content and the model."""
    stem = f"{safe_name(entry.path.stem)}.{entry.sha256[:12]}.v{version}"
    return folders.results / f"{stem}.parquet", folders.rejects / f"{stem}.rejects.parquet"


def read_chunks(opened: OpenedFile, config: ScoringConfig) -> Iterator[Rows]:
    """The file's rows in chunks of ``config.chunk_rows``, checked by the row rules."""
    return iter_rows(opened.handle, opened.entry.path.suffix, opened.entry.name, config)


class ContractBreach(Exception):
    """Rows of a file break the scoring_input contract (the file is quarantined)."""


def check_rows(rows: Rows, check_input: FrameCheck | None) -> None:
    """Apply the input contract to the accepted rows; ContractBreach if they break it.

    Only a verdict (DataContractError) condemns the file; a check that fails for another
    reason raises as it is, and the file stays in the inbox for the next run.
    """
    if check_input is None or not rows.ids:
        return
    try:
        check_input(_input_frame(rows))
    except DataContractError as exc:
        raise ContractBreach(str(exc)) from exc


def rejects_table(rejected: list[Reject], entry: Dropped) -> pa.Table:
    """Rejected rows as a table of ``REJECTS_SCHEMA``."""
    columns: dict[str, list[Any]] = {
        f.name: [getattr(r, f.name) for r in rejected] for f in fields(Reject)
    }
    columns["source_file"] = [entry.name] * len(rejected)
    columns["source_sha256"] = [entry.sha256] * len(rejected)
    return pa.table(columns, schema=REJECTS_SCHEMA)


class RejectsFile:
    """A file's rejected rows, streamed to Parquet as they come (memory stays flat): the
    file appears at ``path``, atomically, only if a row is rejected and ``stack`` closes
    without an error."""

    def __init__(self, path: Path, entry: Dropped, stack: ExitStack) -> None:
        self.path, self.entry, self.stack = path, entry, stack
        self.rows = 0
        self._writer: Any = None

    @property
    def path_if_any(self) -> Path | None:
        return self.path if self.rows else None

    def write(self, rejected: list[Reject] | pa.Table) -> None:
        table = rejected if isinstance(rejected, pa.Table) else rejects_table(rejected, self.entry)
        if not table.num_rows:
            return
        if self._writer is None:
            self._writer = self.stack.enter_context(
                atomic_parquet_writer(self.path, REJECTS_SCHEMA)
            )
        self._writer.write_table(table)
        self.rows += table.num_rows


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


# ------------------------------------------------------------------------- the model


@lru_cache(maxsize=2)
def _model_and_tokeniser(folder: Path, model_sha256: str) -> tuple[Any, Tokeniser]:
    from lstm_model.model import load_model

    return load_model(folder / "model.keras"), Tokeniser.load(folder / "tokenizer")


class ScoredRows(NamedTuple):
    """Accepted rows once scored: the result table, its tally, and the rows rejected
    because the model's output for them is not a probability."""

    table: pa.Table
    tally: ScoreTally
    rejected: list[Reject]


def score_rows(rows: Rows, champion: Champion, config: ScoringConfig, entry: Dropped) -> ScoredRows:
    """Score accepted rows with the champion. A row whose output is NaN, infinite or
    outside [0, 1] is rejected; a wrong number of outputs raises ModelOutputError."""
    model, tokeniser = _model_and_tokeniser(champion.folder, champion.model_sha256)
    n = len(rows.texts)
    probabilities = np.zeros(n, dtype="float32")
    tokens, oov = np.zeros(n, dtype="int64"), np.zeros(n, dtype="int64")
    # Tokenise a few batches at a time: the id matrix of a whole chunk (rows x maxlen
    # int32) would be the largest buffer of the run.
    step = config.batch_size * 8
    for begin in range(0, n, step):
        ids = tokeniser.encode(rows.texts[begin : begin + step])
        tokens[begin : begin + len(ids)] = np.count_nonzero(ids, axis=1)  # all but padding
        oov[begin : begin + len(ids)] = np.count_nonzero(ids == OOV_ID, axis=1)
        # predict_on_batch reuses one traced function and skips model.predict's data
        # pipeline: measured 1.65x the texts/s of model.predict here, same memory.
        for at in range(0, len(ids), config.batch_size):
            batch = ids[at : at + config.batch_size]
            out = np.asarray(model.predict_on_batch(batch)).ravel()
            if len(out) != len(batch):
                raise ModelOutputError(
                    f"the model gave {len(out)} outputs for a batch of {len(batch)} texts"
                )
            probabilities[begin + at : begin + at + len(out)] = out
    valid = np.isfinite(probabilities) & (probabilities >= 0) & (probabilities <= 1)
    rejected = [
        reject(rows.row_number[i], rows.ids[i], NOT_A_PROBABILITY, rows.texts[i],
               config.reject_text_chars)
        for i in np.flatnonzero(~valid)
    ]  # fmt: skip
    keep = np.flatnonzero(valid)
    scored = probabilities[keep]
    labels = (scored >= THRESHOLD).astype("int8")
    now, count = datetime.now(UTC), len(keep)
    table = pa.table(
        {
            "id": pa.array([rows.ids[i] for i in keep], pa.string()),
            "row_number": pa.array([rows.row_number[i] for i in keep], pa.int64()),
            "probability": pa.array(scored, pa.float32()),
            "label": pa.array(labels, pa.int8()),
            "model_version": pa.array([champion.version] * count, pa.int32()),
            "scored_at": pa.array([now] * count, pa.timestamp("us", "UTC")),
            "source_file": pa.array([entry.name] * count, pa.string()),
            "source_sha256": pa.array([entry.sha256] * count, pa.string()),
        },
        schema=RESULT_SCHEMA,
    )
    tally = ScoreTally(
        rows_scored=count,
        positives=int(labels.sum()),
        histogram=np.histogram(scored, bins=HISTOGRAM_BINS, range=(0, 1))[0].tolist(),
        tokens=int(tokens[keep].sum()),
        oov_tokens=int(oov[keep].sum()),
        text_chars=sum(len(rows.texts[i]) for i in keep),
    )
    return ScoredRows(table, tally, rejected)


def score_texts(registry_root: Path, texts: list[str], scratch: Path) -> np.ndarray:
    """Probabilities of ``texts`` from the nightly path itself: the texts dropped as a JSONL
    file into an inbox under ``scratch`` and scored by the champion (parity checks)."""
    folders = ScoringFolders(root=scratch)
    folders.create()
    lines = "\n".join(json.dumps({"text": t}) for t in texts) + "\n"
    (folders.inbox / "texts.jsonl").write_text(lines, encoding="utf-8")
    config = ScoringConfig(settle_seconds=0)
    champion = load_champion(registry_root)
    [path] = files_to_score(folders, config, champion.version)
    outcome = score_file(path, folders, champion, config)
    if outcome.status != "scored" or outcome.rows_scored != len(texts):
        raise PipelineError(f"scoring {len(texts)} texts gave {outcome.model_dump()}")
    result = pq.read_table(outcome.result_path, columns=["row_number", "probability"])
    return result.sort_by("row_number")["probability"].to_numpy()


def _input_frame(rows: Rows) -> pd.DataFrame:
    return pd.DataFrame({"id": rows.ids, "text": rows.texts, "row_number": rows.row_number})


# ------------------------------------------------------------- archive and quarantine


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


# ------------------------------------------------------------------------ the report


class RunSummary(BaseModel):
    """Counts of one scoring run, reconciled, and where its report was written."""

    files: dict[str, int]
    rows_total: int
    rows_scored: int
    rows_rejected: int
    positive_rate: float | None
    oov_rate: float | None
    mean_chars: float | None
    warnings: list[str]
    report_path: Path
    histogram_path: Path | None


def summarise_run(
    outcomes: list[FileOutcome], champion: Champion, config: ScoringConfig, out_dir: Path
) -> RunSummary:
    """Reconcile the counts, draw the score histogram, write ``report.md`` (rows of
    failed files are not counted as read: they are read again by a later run)."""
    scored = [o for o in outcomes if o.status == "scored"]
    statuses = ("scored", "skipped", "quarantined", "failed")
    files = {s: sum(o.status == s for o in outcomes) for s in statuses}
    rows_scored = sum(o.rows_scored for o in scored)
    rows_rejected = sum(o.rows_rejected for o in scored)
    rows_total = sum(o.rows_total for o in scored)
    if rows_scored + rows_rejected != rows_total:
        raise PipelineError(
            f"rows do not reconcile: {rows_total} != {rows_scored} + {rows_rejected}"
        )
    tokens = sum(o.tokens for o in scored)
    positive_rate = sum(o.positives for o in scored) / rows_scored if rows_scored else None
    warnings = []
    if positive_rate is not None:
        shift = abs(positive_rate - champion.test_positive_rate)
        if shift > config.max_score_shift:
            warnings.append(
                f"positive rate {positive_rate:.3f} differs from the champion's on its test "
                f"split ({champion.test_positive_rate:.3f}) by {shift:.3f}, more than "
                f"{config.max_score_shift:.3f}"
            )
    oov_rate = sum(o.oov_tokens for o in scored) / tokens if tokens else None
    mean_chars = sum(o.text_chars for o in scored) / rows_scored if rows_scored else None
    warnings += _drift(oov_rate, mean_chars, champion.reference, config)
    for warning in warnings:
        log.warning("scoring drift: %s", warning)
    make_dirs(out_dir)
    histogram_path = _histogram(scored, out_dir) if rows_scored else None
    summary = RunSummary(
        files=files,
        rows_total=rows_total,
        rows_scored=rows_scored,
        rows_rejected=rows_rejected,
        positive_rate=positive_rate,
        oov_rate=oov_rate,
        mean_chars=mean_chars,
        warnings=warnings,
        report_path=out_dir / "report.md",
        histogram_path=histogram_path,
    )
    atomic_write_json(out_dir / "summary.json", summary.model_dump(mode="json"))
    atomic_write_bytes(out_dir / "report.md", _render(summary, outcomes, champion).encode())
    return summary


def _drift(
    oov_rate: float | None,
    mean_chars: float | None,
    reference: dict[str, float | None],
    config: ScoringConfig,
) -> list[str]:
    """Warnings where this run's texts differ from the training data past the bounds."""
    warnings = []
    train_oov, train_chars = reference.get("oov_rate"), reference.get("mean_chars")
    if (
        oov_rate is not None
        and train_oov is not None
        and oov_rate - train_oov > config.max_oov_shift
    ):
        warnings.append(
            f"out-of-vocabulary rate {oov_rate:.3f} exceeds the training data's "
            f"({train_oov:.3f}) by more than {config.max_oov_shift:.3f}"
        )
    if mean_chars and train_chars:
        ratio = max(mean_chars / train_chars, train_chars / mean_chars)
        if ratio > config.max_length_ratio:
            warnings.append(
                f"mean text length {mean_chars:.0f} characters against the training data's "
                f"{train_chars:.0f}: {ratio:.1f}x apart, more than {config.max_length_ratio:.1f}x"
            )
    return warnings


def _histogram(scored: list[FileOutcome], out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.sum([o.histogram for o in scored], axis=0)
    edges = np.linspace(0, 1, HISTOGRAM_BINS + 1)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(edges[:-1], counts, width=1 / HISTOGRAM_BINS, align="edge")
    ax.set_xlabel("probability of positive")
    ax.set_ylabel("texts")
    ax.set_title("scores of this run")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png")
    plt.close(fig)
    path = out_dir / "score_histogram.png"
    atomic_write_bytes(path, image.getvalue())
    return path


_MARKDOWN_SPECIALS = str.maketrans({c: f"\\{c}" for c in "\\`*_~[]<>|&"})


def markdown_cell(text: str, limit: int | None = None) -> str:
    """``text`` as the content of a markdown table cell: printable, on one line, cut to
    ``limit`` characters, with every character markdown would read as markup escaped."""
    return printable(text)[:limit].translate(_MARKDOWN_SPECIALS)


def _render(summary: RunSummary, outcomes: list[FileOutcome], champion: Champion) -> str:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    files = summary.files
    lines = [
        f"# Scoring run (champion model version {champion.version})",
        "",
        "| files scored | skipped (already scored) | quarantined | failed (left in the inbox) |",
        "|---|---|---|---|",
        f"| {files['scored']} | {files['skipped']} | {files['quarantined']} | {files['failed']} |",
        "",
        "| rows read | scored | rejected |",
        "|---|---|---|",
        f"| {summary.rows_total} | {summary.rows_scored} | {summary.rows_rejected} |",
        "",
        "| drift | this run | reference |",
        "|---|---|---|",
        f"| positive rate | {pct(summary.positive_rate)} | "
        f"{pct(champion.test_positive_rate)} (champion on its test split) |",
        f"| out-of-vocabulary rate | {pct(summary.oov_rate)} | "
        f"{pct(champion.reference.get('oov_rate'))} (training data) |",
        f"| mean characters per text | {num(summary.mean_chars)} | "
        f"{num(champion.reference.get('mean_chars'))} (training data) |",
        "",
    ]
    lines += [f"**Warning:** {markdown_cell(w)}" for w in summary.warnings]
    lines += [
        "",
        "| file | status | rows | scored | rejected | note |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {markdown_cell(o.source_file)} | {o.status} | {o.rows_total} | {o.rows_scored} | "
        f"{o.rows_rejected} | {markdown_cell(o.reason, 120)} |"
        for o in outcomes
    ]
    return "\n".join(lines) + "\n"
