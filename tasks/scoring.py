"""Prefect tasks of the scoring flow: one library call each."""

from __future__ import annotations

import base64
from datetime import datetime
from functools import partial
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from data_contracts import build_data_docs
from data_contracts.scoring import validate_scoring_input, validate_scoring_output
from lstm_model.data.drops import Dropped
from lstm_model.events import DRIFT, INPUT_REJECTED, SCORING_RESOURCE
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.discovery import files_to_score
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.infer import ScoringModel, load_scoring_model
from lstm_model.scoring.ledger import fail_file, settle_run
from lstm_model.scoring.outcomes import FileOutcome
from lstm_model.scoring.parallel import (
    ScoredPart,
    StagedFile,
    commit_file,
    score_part,
    stage_file,
)
from lstm_model.scoring.report import RunSummary, rejected_input, summarise_run
from lstm_model.scoring.rows import FrameCheck
from lstm_model.scoring.sequential import score_file
from tasks._events import emit
from tasks._policies import IO_RETRIES


@task(name="load-scoring-model", timeout_seconds=600, **IO_RETRIES)
def scoring_model(registry: Path) -> ScoringModel:
    """The champion model, its files checked against the registry manifest."""
    return load_scoring_model(registry)


@task(name="discover-files", timeout_seconds=600, **IO_RETRIES)
def discover(folders: ScoringFolders, config: ScoringConfig, version: int) -> list[Path]:
    """Files ready to score (settled), oldest first."""
    found = files_to_score(folders, config, version)
    get_run_logger().info("%d file(s) ready in %s", len(found), folders.inbox)
    return found


def _input_contract(workspace: Path, config: ScoringConfig) -> FrameCheck:
    return partial(
        validate_scoring_input, workspace=workspace, max_text_chars=config.max_text_chars
    )


def _output_contract(workspace: Path) -> FrameCheck:
    return lambda frame: validate_scoring_output(frame, workspace=workspace, rows=len(frame))


@task(name="score-file", timeout_seconds=3600, **IO_RETRIES)
def score(
    path: Path,
    folders: ScoringFolders,
    best: ScoringModel,
    config: ScoringConfig,
    workspace: Path,
    run: str,
) -> FileOutcome:
    """Score one file exactly once, with the scoring_input/scoring_output contracts."""
    return score_file(
        path,
        folders,
        best,
        config,
        check_input=_input_contract(workspace, config),
        check_output=_output_contract(workspace),
        run=run,
    )


@task(name="build-data-docs", timeout_seconds=1800, **IO_RETRIES)
def data_docs(workspace: Path, since: datetime) -> str | None:
    """Render the GX Data Docs of the run's contracts once (each chunk leaves them)."""
    return build_data_docs(workspace, since=since)


@task(name="stage-file", timeout_seconds=3600, **IO_RETRIES)
def stage(
    path: Path,
    folders: ScoringFolders,
    best: ScoringModel,
    config: ScoringConfig,
    workspace: Path,
    run: str,
) -> StagedFile:
    """Read and check one file (scoring_input contract), cut into parts to score."""
    contract = _input_contract(workspace, config)
    return stage_file(path, folders, best, config, check_input=contract, run=run)


@task(name="score-part", timeout_seconds=3600, **IO_RETRIES)
def score_one_part(
    part: Path, source: StagedFile, best: ScoringModel, config: ScoringConfig, workspace: Path
) -> ScoredPart:
    """Score one part of a staged file (scoring_output contract)."""
    return score_part(part, source, best, config, check_output=_output_contract(workspace))


@task(name="commit-file", timeout_seconds=3600, **IO_RETRIES)
def commit(
    source: StagedFile,
    scored: list[ScoredPart],
    folders: ScoringFolders,
    best: ScoringModel,
    config: ScoringConfig,
) -> FileOutcome:
    """Publish a staged file's scored parts as its result, exactly once."""
    return commit_file(source, scored, folders, best, config)


@task(name="count-failure", timeout_seconds=600, **IO_RETRIES)
def count_failure(
    entry: Dropped,
    reason: str,
    folders: ScoringFolders,
    best: ScoringModel,
    config: ScoringConfig,
    run: str,
    cause: str = "",
) -> FileOutcome:
    """Count a failure the flow saw (a lost worker, a timeout) against the file, once in
    the run that staged it."""
    return fail_file(entry, reason, folders, config, best.version, run, cause)


@task(name="scoring-report", timeout_seconds=600, **IO_RETRIES)
def report(
    outcomes: list[FileOutcome], best: ScoringModel, config: ScoringConfig, out_dir: Path
) -> RunSummary:
    """Reconciled counts, score histogram and drift, as a Prefect markdown artifact; input
    rejected above the thresholds, and drift, are also events that the stack's alerts send."""
    summary = summarise_run(outcomes, best, config, out_dir)
    markdown = summary.report_path.read_text()
    if summary.histogram_path is not None:
        image = base64.b64encode(summary.histogram_path.read_bytes()).decode()
        markdown += f"\n![score histogram](data:image/png;base64,{image})\n"
    create_markdown_artifact(
        markdown=markdown, key="scoring-report", description="Batch scoring run"
    )
    # last, after everything that may fail and be retried: an alert is sent once
    resource, name = f"{SCORING_RESOURCE}.{out_dir.name}", f"scoring run {out_dir.name}"
    if problem := rejected_input(summary, config):
        emit(INPUT_REJECTED, resource, name, {
            "files_quarantined": summary.files.get("quarantined", 0),
            "rows_rejected": summary.rows_rejected, "rows_total": summary.rows_total,
            "summary": problem,
        })  # fmt: skip
    if summary.warnings:
        emit(DRIFT, resource, name, {"warnings": summary.warnings})
    return summary


@task(name="settle-run", timeout_seconds=600, **IO_RETRIES)
def settle(outcomes: list[FileOutcome], folders: ScoringFolders, run: str) -> None:
    """Fail the run loudly, counting nothing against its files, when its failures are
    its own rather than the files' (``settle_run``)."""
    settle_run(outcomes, folders, run)
