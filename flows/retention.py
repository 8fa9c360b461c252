"""The retention flow: free the model files of old versions and the working files of
finished runs, prune old validation results, publish what went (see
``lstm_model.release.retention`` for what is kept)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from pydantic import BaseModel

from flows.config import ResultsRetentionConfig, RetentionConfig, default_workspace
from lstm_model.release.retention import Kept
from tasks.retention import finished_runs, old_versions, publish, validation_results


class RetentionOutputs(BaseModel):
    """What the run freed (with ``dry_run``: would free), in bytes and by name."""

    dry_run: bool
    bytes_freed: int
    versions_freed: list[int]
    runs_freed: list[str]
    results_pruned: int
    kept: list[Kept]
    report: str


@flow(
    name="retention",
    description="Free old versions' model files, finished runs' working files and old "
    "validation results; keep the champion, rollback targets, the newest accepted versions "
    "and anything in use.",
)
def retention(
    workspace: Path | None = None,
    registry: Path | None = None,
    policy: RetentionConfig = RetentionConfig(),  # noqa: B008 - frozen, safe default
    results: ResultsRetentionConfig = ResultsRetentionConfig(),  # noqa: B008
    dry_run: bool = False,
) -> RetentionOutputs:
    """Run the retention pass.

    Args:
        workspace: folder of all artifacts; empty means $LSTM_PIPELINE_HOME or ./artifacts.
        registry: model registry folder; empty means the workspace's registry folder.
        policy: which versions stay whole, and how long unregistered runs are kept.
        results: how many validation results of each data contract are kept.
        dry_run: list what would be freed, and how many bytes, and free nothing.
    """
    root = (workspace or default_workspace()).resolve()
    models = (registry or root / "registry").resolve()
    versions = old_versions(models, policy, dry_run)
    runs = finished_runs(root, models, policy, dry_run, wait_for=[versions])
    pruned = validation_results(root, results, dry_run)
    report = publish(versions, runs, pruned)
    return RetentionOutputs(
        dry_run=dry_run,
        bytes_freed=versions.bytes + runs.bytes + sum(r.bytes for r in pruned),
        versions_freed=[int(f.name) for f in versions.freed],
        runs_freed=[f.name for f in runs.freed],
        results_pruned=len(pruned),
        kept=versions.kept,
        report=report,
    )
