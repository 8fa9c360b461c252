"""The nightly scoring flow: discover settled files -> score each exactly once with the
champion (contracts in and out) -> archive -> report.

By default files are scored one after another in the flow's process. With
``ScaleOutConfig.dask_workers`` (or a scheduler address) a subflow on a Dask task runner
stages every file, scores the parts of all files in parallel, and commits each file
under its lock: the same exactly-once rules, see ``lstm_model.scoring.parallel``.

No file stops the run: the library turns whatever one file holds into its outcome, and a
task that fails outside it (a timeout, a lost Dask worker) gives that file a "failed"
outcome here, so the report is still written. Each run has an id, so that a file's
attempt counts once per run however many tasks or copies of it fail (the count itself is
taken before a file is read, so an attempt that kills its process counts too). A run that
scores nothing while several files fail the same way fails loudly once its report is
written, and counts nothing against those files: the fault is the run's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import flow
from prefect.futures import PrefectFuture
from prefect.states import State

from flows.config import ScaleOutConfig, ScoringConfig, default_workspace
from lstm_model.data.drops import display_name
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.infer import ScoringModel
from lstm_model.scoring.outcomes import FileOutcome, describe, error_kind, unsettled
from lstm_model.scoring.parallel import StagedFile
from lstm_model.scoring.report import RunSummary
from tasks.scoring import (
    commit,
    count_failure,
    data_docs,
    discover,
    report,
    score,
    score_one_part,
    scoring_model,
    settle,
    stage,
)

if TYPE_CHECKING:
    from prefect_dask import DaskTaskRunner


@flow(
    name="score-inbox",
    description="Score every new file in the inbox with the champion model, exactly once.",
)
def score_inbox(
    scoring_root: Path | None = None,
    workspace: Path | None = None,
    registry: Path | None = None,
    config: ScoringConfig = ScoringConfig(),  # noqa: B008 - frozen, safe default
    scale_out: ScaleOutConfig = ScaleOutConfig(),  # noqa: B008 - frozen, safe default
) -> RunSummary:
    """Run one scoring pass.

    Args:
        scoring_root: folder holding inbox/, results/, rejects/, quarantine/, archive/ and
            the ledger; empty means the workspace's scoring folder.
        workspace: pipeline workspace (GX project, reports); empty means $LSTM_PIPELINE_HOME
            or ./artifacts.
        registry: model registry whose champion scores; empty means the workspace's registry folder.
        config: settle time, column names, row limits, batch sizes, rescore, drift bound.
        scale_out: score in this process (default) or in parallel on Dask workers.
    """
    started = datetime.now(UTC)
    root = (workspace or default_workspace()).resolve()
    folders = ScoringFolders(root=(scoring_root or root / "scoring").resolve())
    best = scoring_model((registry or root / "registry").resolve())
    paths = discover(folders, config, best.version)
    run = uuid.uuid4().hex
    if scale_out.parallel and paths:
        outcomes = score_in_parallel.with_options(task_runner=_dask_runner(scale_out))(
            paths, folders, best, config, root, run
        )
    else:
        outcomes = [
            _settled(score(path, folders, best, config, root, run, return_state=True), path)
            for path in paths
        ]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    summary = report(outcomes, best, config, folders.root / "reports" / stamp)
    settle(outcomes, folders, run)
    if paths:
        # After the ledger is settled, and not fatal: the files are scored either way, and
        # a failed build shows as its task's state; the results stay in GX's store.
        data_docs(root, started, return_state=True)
    return summary


@flow(name="score-files-in-parallel", description="Stage, score parts, commit; on Dask.")
def score_in_parallel(
    paths: list[Path],
    folders: ScoringFolders,
    best: ScoringModel,
    config: ScoringConfig,
    workspace: Path,
    run: str,
) -> list[FileOutcome]:
    """Score ``paths`` on the flow's task runner: every file's parts in parallel."""
    staged = [stage.submit(path, folders, best, config, workspace, run) for path in paths]
    committed: dict[str, PrefectFuture[FileOutcome]] = {}
    pending: list[FileOutcome | tuple[StagedFile, PrefectFuture[FileOutcome]]] = []
    for path, future in zip(paths, staged, strict=True):
        source = future.result(raise_on_failure=False)
        if not isinstance(source, StagedFile):
            pending.append(_failed(path, source))
            continue
        first = committed.get(source.sha256)
        if first is not None:
            # A second copy of content staged in this run: it waits for the first copy's
            # commit, then finds it in the ledger and is skipped; its parts are not scored.
            pending.append(
                (source, commit.submit(source, [], folders, best, config, wait_for=[first]))
            )
            continue
        parts = [
            score_one_part.submit(part, source, best, config, workspace) for part in source.parts
        ]
        committed[source.sha256] = commit.submit(source, parts, folders, best, config)
        pending.append((source, committed[source.sha256]))
    return [_committed(item, folders, best, config) for item in pending]


def _settled(state: State[FileOutcome], path: Path) -> FileOutcome:
    """The outcome a task returned, or a "failed" one if the task itself failed."""
    outcome = state.result(raise_on_failure=False)
    return outcome if isinstance(outcome, FileOutcome) else _failed(path, outcome)


def _failed(path: Path, error: object) -> FileOutcome:
    """The outcome of a task that gave none (its file's hash is unknown here): if the
    library had hashed the file, it counted the attempt then, before reading it."""
    if isinstance(error, BaseException):
        return unsettled(display_name(path.name), "", describe(error), error_kind(error))
    return unsettled(display_name(path.name), "", f"no outcome: {error!r}", "no outcome")


def _committed(
    item: FileOutcome | tuple[StagedFile, PrefectFuture[FileOutcome]],
    folders: ScoringFolders,
    best: ScoringModel,
    config: ScoringConfig,
) -> FileOutcome:
    """A file's outcome once its commit is done; a commit that never ran or crashed (a
    lost worker, a timeout) is a failed attempt, counted against the file."""
    if isinstance(item, FileOutcome):
        return item
    source, future = item
    outcome = future.result(raise_on_failure=False)
    if isinstance(outcome, FileOutcome):
        return outcome
    if isinstance(outcome, BaseException):
        reason, cause = describe(outcome), error_kind(outcome)
    else:
        reason, cause = repr(outcome), "no outcome"
    counted = count_failure(
        source.entry, reason, folders, best, config, source.run, cause, return_state=True
    )
    return _settled(counted, source.path)


def _dask_runner(scale_out: ScaleOutConfig) -> DaskTaskRunner:
    from prefect_dask import DaskTaskRunner  # imports dask.distributed: only when asked for

    if scale_out.dask_address is not None:
        return DaskTaskRunner(address=scale_out.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": scale_out.dask_workers, "threads_per_worker": 1}
    )
