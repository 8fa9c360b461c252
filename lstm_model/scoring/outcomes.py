"""What happened to each dropped file and its rows: the outcomes a run reports."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from pydantic import BaseModel

from lstm_model.data.drops import Dropped, printable
from lstm_model.errors import PipelineError

log = logging.getLogger(__name__)


HISTOGRAM_BINS = 20

MAX_REASON_CHARS = 2000


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
    cause: str = ""
    """For a failed file, the kind of error that failed it (its type, and errno if any):
    what tells a failure of the whole run from one file's (``ledger.settle_run``)."""


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


def unsettled(name: str, sha: str, reason: str, cause: str = "") -> FileOutcome:
    """The outcome of a file left in the inbox because handling it failed; ``cause`` is
    the kind of error (see ``error_kind``)."""
    reason = printable(reason)[:MAX_REASON_CHARS]
    log.warning("%s: failed: %s", name, reason)
    return FileOutcome(
        source_file=name, sha256=sha, status="failed", reason=reason, cause=printable(cause)[:200]
    )


def describe(exc: BaseException) -> str:
    """An error in one printable, bounded line: its type and message."""
    return printable(f"{type(exc).__name__}: {exc}")[:MAX_REASON_CHARS]


def error_kind(exc: BaseException) -> str:
    """The kind of an error, the same for every file it hits: its type, and its errno for
    an OSError (a message names the file; ``[Errno 28]`` is a full disk for every one)."""
    kind = type(exc).__name__
    number = getattr(exc, "errno", None)
    return f"{kind} [Errno {number}]" if isinstance(number, int) else kind


def gone(name: str, sha: str = "") -> FileOutcome:
    """The outcome of a file that another run moved away (archived or quarantined)
    between this run's listing and its turn: that run accounts for its rows."""
    reason = "moved out of the inbox by another run before this one could read it"
    log.info("%s: skipped: %s", name, reason)
    return FileOutcome(source_file=name, sha256=sha, status="skipped", reason=reason)


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
