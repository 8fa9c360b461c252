"""The nightly scoring flow: discover settled files -> score each exactly once with the
champion (contracts in and out) -> archive -> report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow

from lstm_model.config import ScoringConfig, default_workspace
from lstm_model.scoring import RunSummary, ScoringFolders
from tasks.scoring import champion, discover, report, score


@flow(
    name="score-inbox",
    description="Score every new file in the inbox with the champion model, exactly once.",
)
def score_inbox(
    scoring_root: Path | None = None,
    workspace: Path | None = None,
    registry: Path | None = None,
    config: ScoringConfig = ScoringConfig(),  # noqa: B008 - frozen, safe default
) -> RunSummary:
    """Run one scoring pass.

    Args:
        scoring_root: folder holding inbox/, results/, rejects/, quarantine/, archive/ and
            the ledger; empty means <workspace>/scoring.
        workspace: pipeline workspace (GX project, reports); empty means $LSTM_PIPELINE_HOME
            or ./artifacts.
        registry: model registry whose champion scores; empty means <workspace>/registry.
        config: settle time, column names, row limits, batch sizes, rescore, drift bound.
    """
    root = (workspace or default_workspace()).resolve()
    folders = ScoringFolders(root=(scoring_root or root / "scoring").resolve())
    best = champion((registry or root / "registry").resolve())
    paths = discover(folders, config, best.version)
    outcomes = [score(path, folders, best, config, root) for path in paths]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return report(outcomes, best, config, folders.root / "reports" / stamp)
