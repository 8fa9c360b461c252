"""Tasks of the retention flow: free old versions' model files and finished runs' working
files, prune old validation results, and publish what went."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact

from data_contracts import prune_results
from data_contracts.config import ResultsRetentionConfig
from data_contracts.retention import PrunedResult
from lstm_model.release.config import RetentionConfig
from lstm_model.release.retention import RetentionReport, free_runs, free_versions
from tasks._policies import IO_RETRIES


@task(name="free-versions", timeout_seconds=3600, **IO_RETRIES)
def old_versions(registry: Path, config: RetentionConfig, dry_run: bool) -> RetentionReport:
    """Free the model files of the versions the policy does not keep."""
    return free_versions(registry, config, dry_run=dry_run)


@task(name="free-runs", timeout_seconds=3600, **IO_RETRIES)
def finished_runs(
    workspace: Path, registry: Path, config: RetentionConfig, dry_run: bool
) -> RetentionReport:
    """Free the working files of finished runs."""
    return free_runs(workspace, registry, config, dry_run=dry_run)


@task(name="prune-validation-results", timeout_seconds=3600, **IO_RETRIES)
def validation_results(
    workspace: Path, config: ResultsRetentionConfig, dry_run: bool
) -> list[PrunedResult]:
    """Remove old GX validation results and rebuild the Data Docs."""
    return prune_results(workspace, config.keep_results, dry_run=dry_run)


@task(name="retention-report")
def publish(versions: RetentionReport, runs: RetentionReport, results: list[PrunedResult]) -> str:
    """The retention report, published as a markdown artifact."""
    pruned = f"{sum(r.bytes for r in results) / 2**20:.2f} MiB in {len(results)} results"
    markdown = "\n".join(
        [
            versions.render("Model versions"),
            runs.render("Runs' working files"),
            f"Validation results: {'would prune' if versions.dry_run else 'pruned'} {pruned}.",
        ]
    )
    create_markdown_artifact(markdown=markdown, key="retention", description="Retention")
    return markdown
