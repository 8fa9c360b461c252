"""Scoring files as parts that run in parallel (the Dask path), exactly once.

``score_file`` streams a file through one process. To spread a large file over many
workers, its scoring is cut in three steps, each a task of its own:

1. ``stage_file`` reads and checks the file once, in order: the row rules span the whole
   file (duplicate ids), so this step is sequential and cheap. It writes the accepted rows
   as input parts of ``config.chunk_rows`` rows, and the rejected rows, under
   ``staging/<stem>.<token>/``, a folder of this attempt alone.
2. ``score_part`` scores one input part into a scored part; the parts of every file run
   in parallel on whichever workers are free.
3. ``commit_file`` takes the file's lock (the same ``claim`` as ``score_file``), checks the
   ledger, joins the scored parts into the result atomically, publishes the rejects,
   records the ledger row, archives the input and removes the staging folder.

The guarantees are those of ``score_file``: results are published only under the lock and
only when the ledger lacks the (content, model version) pair; a run killed at any step
leaves the input in the inbox, and the next run stages it again and removes what the
killed attempt left in staging/ when it commits.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from lstm_model.artifacts import atomic_parquet_writer, atomic_write_parquet
from lstm_model.config import ScoringConfig
from lstm_model.errors import PipelineError
from lstm_model.inbox import BadFile, Rows
from lstm_model.scoring import (
    RESULT_SCHEMA,
    Champion,
    ContractBreach,
    FileOutcome,
    FrameCheck,
    ScoreTally,
    ScoringFolders,
    already_scored,
    check_rows,
    claim,
    content_sha256,
    gone,
    publish,
    quarantine,
    read_chunks,
    result_paths,
    score_rows,
    scored_outcome,
    write_rejects,
)

log = logging.getLogger(__name__)

PART_SCHEMA = pa.schema(
    [
        pa.field("row_number", pa.int64()),
        pa.field("id", pa.string()),
        pa.field("text", pa.string()),
    ]
)
REJECTS_FILE = "rejects.parquet"


class StagedFile(BaseModel):
    """A file read, checked and cut into input parts; or its final outcome if it needs no
    scoring (already scored, or quarantined)."""

    path: Path
    sha256: str
    staging: Path | None = None
    parts: list[Path] = []
    rows_total: int = 0
    rows_rejected: int = 0
    outcome: FileOutcome | None = None


class ScoredPart(BaseModel):
    """One scored part, its tally, and the process that scored it (host:pid)."""

    path: Path
    tally: ScoreTally
    scored_by: str = Field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def stage_file(
    path: Path,
    folders: ScoringFolders,
    champion: Champion,
    config: ScoringConfig,
    *,
    check_input: FrameCheck | None = None,
) -> StagedFile:
    """Read and check ``path`` once, writing its accepted rows as input parts."""
    folders.create()
    try:
        sha = content_sha256(path)
    except FileNotFoundError:
        return StagedFile(path=path, sha256="", outcome=gone(path))
    with claim(folders, sha, champion.version):
        done = already_scored(path, sha, folders, champion)
    if done is not None:
        return StagedFile(path=path, sha256=sha, outcome=done)
    result, _ = result_paths(path.name, sha, champion.version, folders)
    staging = folders.staging / f"{result.stem}.{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    parts: list[Path] = []
    rows_total, rejected = 0, []
    try:
        for rows in read_chunks(path, config):
            check_rows(rows, check_input)
            rows_total += rows.total
            rejected += rows.rejected
            if rows.ids:
                part = staging / f"input-{len(parts):05d}.parquet"
                atomic_write_parquet(part, _part_table(rows))
                parts.append(part)
    except (BadFile, ContractBreach) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        reason = str(exc)
        if isinstance(exc, ContractBreach):
            reason = f"breaks the scoring_input contract: {exc}"
        with claim(folders, sha, champion.version):
            return StagedFile(path=path, sha256=sha, outcome=quarantine(path, sha, reason, folders))
    if rejected:
        atomic_write_parquet(
            staging / REJECTS_FILE,
            pa.Table.from_pandas(pd.DataFrame(rejected), preserve_index=False),
        )
    return StagedFile(
        path=path,
        sha256=sha,
        staging=staging,
        parts=parts,
        rows_total=rows_total,
        rows_rejected=len(rejected),
    )


def score_part(
    part: Path,
    source: StagedFile,
    champion: Champion,
    config: ScoringConfig,
    *,
    check_output: FrameCheck | None = None,
) -> ScoredPart:
    """Score one input part into ``scored-NNNNN.parquet`` beside it."""
    if not part.is_file():
        raise PipelineError(
            f"{part} is gone: another run published {source.path.name} and removed its "
            "staging folder, so this run's copy is not needed"
        )
    frame = pq.read_table(part).to_pydict()
    rows = Rows(frame["row_number"], frame["id"], frame["text"], [])
    table, tally = score_rows(rows, champion, config, source.path.name, source.sha256)
    if check_output is not None and table.num_rows:
        check_output(table.to_pandas())
    out = part.with_name(part.name.replace("input-", "scored-"))
    atomic_write_parquet(out, table)
    scored = ScoredPart(path=out, tally=tally)
    log.info("%s: %s scored (%d rows) by %s", source.path.name, part.name, table.num_rows,
             scored.scored_by)  # fmt: skip
    return scored


def commit_file(
    source: StagedFile,
    scored: list[ScoredPart],
    folders: ScoringFolders,
    champion: Champion,
) -> FileOutcome:
    """Publish a staged file's scored parts as its result, exactly once (see module doc)."""
    if source.outcome is not None or source.staging is None:
        return _final(source)
    path, sha, version = source.path, source.sha256, champion.version
    with claim(folders, sha, version):
        done = already_scored(path, sha, folders, champion)
        if done is not None:  # a copy of the same content, or another run, got there first
            shutil.rmtree(source.staging, ignore_errors=True)
            return done
        if len(scored) != len(source.parts):
            raise PipelineError(
                f"{path.name}: {len(scored)} scored parts for {len(source.parts)} staged"
            )
        result_path, rejects_path = result_paths(path.name, sha, version, folders)
        tally = ScoreTally()
        for part in scored:
            tally += part.tally
        with atomic_parquet_writer(result_path, RESULT_SCHEMA) as writer:
            for part in scored:
                writer.write_table(pq.read_table(part.path, schema=RESULT_SCHEMA))
            outcome = scored_outcome(
                path.name, sha, version, source.rows_total, tally, result_path,
                rejects_path if source.rows_rejected else None, source.rows_rejected,
            )  # fmt: skip
        if source.rows_rejected:
            write_rejects(
                rejects_path, pd.read_parquet(source.staging / REJECTS_FILE), path.name, sha
            )
        publish(path, outcome, folders)  # removes the staging folders of this result too
    return outcome


def _final(source: StagedFile) -> FileOutcome:
    if source.outcome is None:
        raise PipelineError(f"{source.path.name}: neither staged nor finished")
    return source.outcome


def _part_table(rows: Rows) -> pa.Table:
    return pa.table(
        {"row_number": rows.row_number, "id": rows.ids, "text": rows.texts}, schema=PART_SCHEMA
    )
