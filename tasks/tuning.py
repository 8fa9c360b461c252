"""Prefect tasks of the tuning flow: one library call each."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from lstm_model.data.dataset import TokenisedResult
from lstm_model.training.backend import settle_backend
from lstm_model.training.config import SearchSpace, TrainConfig, TuningConfig
from lstm_model.training.named import NamedConfig, TuningResult, load_named_config
from tasks._policies import IO_RETRIES


@task(name="tune", timeout_seconds=24 * 3600)
def tune(
    tokenised: TokenisedResult,
    space: SearchSpace,
    config: TuningConfig,
    training: TrainConfig,
    workspace: Path,
) -> TuningResult:
    """Run (or continue) the search; its trials become a sorted Prefect table artifact."""
    # Imported here: Keras and Keras Tuner take 20 s to import, and retraining, which
    # imports this module for named configs, may never train.
    settle_backend()
    from lstm_model.training.tuning import run_search

    result = run_search(tokenised, space, config, training, workspace)
    create_table_artifact(
        table=result.trials,
        key="tuning-trials",
        description=f"{config.algorithm} search, {len(result.trials)} trials, best "
        f"val_accuracy first; the best is saved as named config '{config.name}'",
    )
    get_run_logger().info(
        "best trial %s: val_accuracy %s, saved as %s",
        result.trials[0]["trial"],
        result.trials[0]["val_accuracy"],
        result.named_config_path,
    )
    return result


@task(name="load-named-config", **IO_RETRIES)
def load_config(workspace: Path, name: str) -> NamedConfig:
    """A configuration the tuning flow saved."""
    return load_named_config(workspace, name)
