"""Scoring one file after another in the flow's process, exactly once (see ``ledger``).

The file is streamed in chunks into a temporary result renamed into place only when the
whole file is scored, so memory stays flat and a reader never sees a partial result.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from lstm_model.artifacts import (
    atomic_parquet_writer,
)
from lstm_model.errors import PipelineError
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.discovery import files_to_score, open_input
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.infer import RESULT_SCHEMA, ScoringModel, load_scoring_model, score_rows
from lstm_model.scoring.ledger import (
    already_scored,
    claim,
    guard,
    new_run_id,
    publish,
    start_attempt,
)
from lstm_model.scoring.outcomes import FileOutcome, OpenedFile, ScoreTally, scored_outcome
from lstm_model.scoring.rows import FrameCheck, RejectsFile, check_rows, read_chunks, result_paths

log = logging.getLogger(__name__)


def score_file(
    path: Path,
    folders: ScoringFolders,
    champion: ScoringModel,
    config: ScoringConfig,
    *,
    check_input: FrameCheck | None = None,
    check_output: FrameCheck | None = None,
    run: str | None = None,
) -> FileOutcome:
    """Score one file exactly once (see the module docstring); never raises for what one
    file holds or is: bad files are quarantined, failed attempts counted (once per
    ``run``: the flow names its run; by default each call is a run of its own).

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

    run = run or new_run_id()

    def work() -> FileOutcome:
        done = already_scored(entry, folders, champion)
        if done is not None:
            return done
        refused = start_attempt(entry, folders, config, run, champion.version)
        if refused is not None:
            return refused
        return _score_opened(opened, folders, champion, config, check_input, check_output)

    with opened, claim(folders, entry.sha256, champion.version):
        outcome = guard(entry, folders, config, work, run)
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
    champion: ScoringModel,
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


def score_texts(registry_root: Path, texts: list[str], scratch: Path) -> np.ndarray:
    """Probabilities of ``texts`` from the nightly path itself: the texts dropped as a JSONL
    file into an inbox under ``scratch`` and scored by the champion (parity checks)."""
    folders = ScoringFolders(root=scratch)
    folders.create()
    lines = "\n".join(json.dumps({"text": t}) for t in texts) + "\n"
    (folders.inbox / "texts.jsonl").write_text(lines, encoding="utf-8")
    config = ScoringConfig(settle_seconds=0)
    champion = load_scoring_model(registry_root)
    [path] = files_to_score(folders, config, champion.version)
    outcome = score_file(path, folders, champion, config)
    if outcome.status != "scored" or outcome.rows_scored != len(texts):
        raise PipelineError(f"scoring {len(texts)} texts gave {outcome.model_dump()}")
    result = pq.read_table(outcome.result_path, columns=["row_number", "probability"])
    return result.sort_by("row_number")["probability"].to_numpy()
