"""Scoring files as parts that run in parallel (the Dask path), exactly once.

``score_file`` streams a file through one process. To spread a large file over many
workers, its scoring is cut in three steps, each a task of its own:

1. ``stage_file`` opens, hashes, reads and checks the file once, in order, under its
   claim: the row rules span the whole file (duplicate ids), so this step is sequential
   and cheap. It writes the accepted rows as input parts of ``config.chunk_rows`` rows, and
   the rejected rows, under ``staging/<stem>.<token>/``, a folder of this attempt alone.
2. ``score_part`` scores one input part into a scored part (and the rows whose model
   output is not a probability into a rejects part); the parts of every file run in
   parallel on whichever workers are free. It never raises: an error travels in its
   ``ScoredPart`` to the commit.
3. ``commit_file`` takes the file's lock (the same ``claim`` as ``score_file``), checks the
   ledger, joins the scored parts into the result atomically, publishes the rejects,
   records the ledger row, archives the input and removes the staging folder.

The guarantees are those of ``score_file``, through the same functions (``open_input``,
``guard``, ``score_rows``, ``publish``): results are published only under the lock and
only when the ledger lacks the (content, model version) pair; an inbox entry that is not
a regular file, or a bad file, is quarantined at staging; any other error (at staging, in
a part, at the commit) is a failed attempt, counted against the file once per run (the
count is taken at staging, before the file is read, and the run is named in
``StagedFile.run``); a run killed at any step leaves the input in the inbox, and the next
run stages it again and removes what the killed attempt left in staging/ when it commits.
The input is archived only if its path still holds the file that was staged
(``StagedFile.entry.identity``).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import uuid
from contextlib import ExitStack
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from lstm_model.artifacts import atomic_parquet_writer, atomic_write_parquet, make_dirs
from lstm_model.data.drops import Dropped, Rows, rejects_table
from lstm_model.errors import PipelineError
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.discovery import open_input
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.infer import RESULT_SCHEMA, ScoringModel, score_rows
from lstm_model.scoring.ledger import (
    already_scored,
    claim,
    guard,
    new_run_id,
    publish,
    start_attempt,
)
from lstm_model.scoring.outcomes import (
    FileOutcome,
    OpenedFile,
    ScoreTally,
    describe,
    scored_outcome,
)
from lstm_model.scoring.rows import (
    FrameCheck,
    RejectsFile,
    check_rows,
    read_chunks,
    result_paths,
)

log = logging.getLogger(__name__)

PART_SCHEMA = pa.schema(
    [
        pa.field("row_number", pa.int64()),
        pa.field("id", pa.string()),
        pa.field("text", pa.string()),
        pa.field("row_sha256", pa.string()),  # null: the text's own bytes are the row's
    ]
)
REJECTS_FILE = "rejects.parquet"


class StagedFile(BaseModel):
    """A file read, checked and cut into input parts; or its final outcome if it needs no
    scoring (already scored, quarantined, or failed). ``run``: the run that staged it, in
    which its attempt is counted once."""

    entry: Dropped
    run: str = ""
    staging: Path | None = None
    parts: list[Path] = []
    rows_total: int = 0
    rows_rejected: int = 0
    outcome: FileOutcome | None = None

    @property
    def path(self) -> Path:
        return self.entry.path

    @property
    def sha256(self) -> str:
        return self.entry.sha256


class ScoredPart(BaseModel):
    """One scored part: its tally and rejects, or the error that stopped it; and the
    process that scored it (host:pid)."""

    path: Path
    tally: ScoreTally = ScoreTally()
    rows_rejected: int = 0
    rejects: Path | None = None
    error: str | None = None
    scored_by: str = Field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def stage_file(
    path: Path,
    folders: ScoringFolders,
    champion: ScoringModel,
    config: ScoringConfig,
    *,
    check_input: FrameCheck | None = None,
    run: str | None = None,
) -> StagedFile:
    """Read and check ``path`` once, writing its accepted rows as input parts; its
    attempt is counted once per ``run`` (by default a run of its own)."""
    folders.create()
    run = run or new_run_id()
    opened = open_input(path, folders)
    if isinstance(opened, FileOutcome):
        entry = Dropped(path=path, name=opened.source_file, sha256=opened.sha256)
        return StagedFile(entry=entry, run=run, outcome=opened)
    entry = opened.entry

    def work() -> StagedFile:
        done = already_scored(entry, folders, champion)
        if done is not None:
            return StagedFile(entry=entry, run=run, outcome=done)
        refused = start_attempt(entry, folders, config, run, champion.version)
        if refused is not None:
            return StagedFile(entry=entry, run=run, outcome=refused)
        return _stage(opened, folders, champion, config, check_input, run)

    with opened, claim(folders, entry.sha256, champion.version):
        staged = guard(entry, folders, config, work, run)
    if isinstance(staged, StagedFile):
        return staged
    return StagedFile(entry=entry, run=run, outcome=staged)


def _stage(
    opened: OpenedFile,
    folders: ScoringFolders,
    champion: ScoringModel,
    config: ScoringConfig,
    check_input: FrameCheck | None,
    run: str,
) -> StagedFile:
    entry = opened.entry
    result, _ = result_paths(entry, champion.version, folders)
    staging = make_dirs(folders.staging / f"{result.stem}.{uuid.uuid4().hex[:8]}")
    parts: list[Path] = []
    rows_total = 0
    try:
        with ExitStack() as stack:
            rejects = RejectsFile(staging / REJECTS_FILE, entry, stack)
            for rows in read_chunks(opened, config):
                check_rows(rows, check_input)
                rows_total += rows.total
                rejects.write(rows.rejected)
                if rows.ids:
                    part = staging / f"input-{len(parts):05d}.parquet"
                    atomic_write_parquet(part, _part_table(rows))
                    parts.append(part)
            opened.check_unchanged()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return StagedFile(
        entry=entry,
        run=run,
        staging=staging,
        parts=parts,
        rows_total=rows_total,
        rows_rejected=rejects.rows,
    )


def score_part(
    part: Path,
    source: StagedFile,
    champion: ScoringModel,
    config: ScoringConfig,
    *,
    check_output: FrameCheck | None = None,
) -> ScoredPart:
    """Score one input part into ``scored-NNNNN.parquet`` beside it, and its rows whose
    model output is not a probability into ``rejects-NNNNN.parquet``. Never raises: an
    error is carried to ``commit_file``, which counts it against the file."""
    out = part.with_name(part.name.replace("input-", "scored-"))
    try:
        if not part.is_file():
            raise PipelineError(
                f"{part.name} is gone: another run published {source.entry.name} and removed "
                "its staging folder, so this run's copy is not needed"
            )
        frame = pq.read_table(part, schema=PART_SCHEMA).to_pydict()
        rows = Rows(frame["row_number"], frame["id"], frame["text"], [], frame["row_sha256"])
        scored = score_rows(rows, champion, config, source.entry)
        if check_output is not None and scored.table.num_rows:
            check_output(scored.table.to_pandas())
        rejects = None
        if scored.rejected:
            rejects = part.with_name(part.name.replace("input-", "rejects-"))
            atomic_write_parquet(rejects, rejects_table(scored.rejected, source.entry))
        atomic_write_parquet(out, scored.table)
    except Exception as exc:
        log.warning("%s: %s failed: %s", source.entry.name, part.name, describe(exc))
        return ScoredPart(path=out, error=describe(exc))
    done = ScoredPart(path=out, tally=scored.tally, rows_rejected=len(scored.rejected),
                      rejects=rejects)  # fmt: skip
    log.info("%s: %s scored (%d rows) by %s", source.entry.name, part.name, len(rows.ids),
             done.scored_by)  # fmt: skip
    return done


def commit_file(
    source: StagedFile,
    scored: list[ScoredPart],
    folders: ScoringFolders,
    champion: ScoringModel,
    config: ScoringConfig,
) -> FileOutcome:
    """Publish a staged file's scored parts as its result, exactly once (see module doc);
    a part that failed fails the file's attempt."""
    if source.outcome is not None or source.staging is None:
        return _final(source)
    entry, staging, run = source.entry, source.staging, source.run or new_run_id()

    def work() -> FileOutcome:
        done = already_scored(entry, folders, champion)
        if done is not None:  # a copy of the same content, or another run, got there first
            return done
        return _commit(source, staging, scored, folders, champion)

    with claim(folders, entry.sha256, champion.version):
        outcome = guard(entry, folders, config, work, run)
    if outcome.status != "scored":  # publish removed the staging folder of a scored file
        shutil.rmtree(staging, ignore_errors=True)
    return outcome


def _commit(
    source: StagedFile,
    staging: Path,
    scored: list[ScoredPart],
    folders: ScoringFolders,
    champion: ScoringModel,
) -> FileOutcome:
    entry, version = source.entry, champion.version
    failed = [part.error for part in scored if part.error is not None]
    if failed:
        raise PipelineError(f"{len(failed)} of {len(scored)} parts failed; first: {failed[0]}")
    if len(scored) != len(source.parts):
        raise PipelineError(f"{len(scored)} scored parts for {len(source.parts)} staged")
    result_path, rejects_path = result_paths(entry, version, folders)
    tally = ScoreTally()
    for part in scored:
        tally += part.tally
    with ExitStack() as stack:
        results = stack.enter_context(atomic_parquet_writer(result_path, RESULT_SCHEMA))
        for part in scored:
            results.write_table(pq.read_table(part.path, schema=RESULT_SCHEMA))
        rejects = RejectsFile(rejects_path, entry, stack)
        staged_rejects = [staging / REJECTS_FILE, *(p.rejects for p in scored if p.rejects)]
        for path in staged_rejects:
            if path.exists():
                with pq.ParquetFile(path) as parquet:
                    for batch in parquet.iter_batches():
                        rejects.write(pa.Table.from_batches([batch]))
        outcome = scored_outcome(
            entry, version, source.rows_total, tally, result_path, rejects.path_if_any,
            rejects.rows,
        )  # fmt: skip
    publish(entry, outcome, folders)  # removes the staging folders of this result too
    return outcome


def _final(source: StagedFile) -> FileOutcome:
    if source.outcome is None:
        raise PipelineError(f"{source.entry.name}: neither staged nor finished")
    return source.outcome


def _part_table(rows: Rows) -> pa.Table:
    columns = {"row_number": rows.row_number, "id": rows.ids, "text": rows.texts,
               "row_sha256": rows.row_sha256}  # fmt: skip
    return pa.table(columns, schema=PART_SCHEMA)
