"""Prefect tasks of the model half of the retraining flow: one library call each."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from lstm_model.data.config import TokeniserConfig
from lstm_model.data.dataset import TokenisedResult
from lstm_model.data.ingest import IngestResult
from lstm_model.data.spans import Span
from lstm_model.evaluation.baseline import BaselineResult, fit_baseline
from lstm_model.evaluation.config import BaselineConfig, GateConfig
from lstm_model.evaluation.evaluate import EvaluationResult, evaluate_model
from lstm_model.evaluation.gate import GateDecision, GateFailed
from lstm_model.events import GATE_REJECTED, MODEL_RESOURCE
from lstm_model.model.config import ModelConfig
from lstm_model.release.config import ExportConfig
from lstm_model.release.export import ParityResult
from lstm_model.release.history import ModelHistory, model_history
from lstm_model.release.promotion import (
    ParityFailed,
    PreviousBuild,
    export_candidate,
    gate_candidate,
    promote_candidate,
    register_candidate,
)
from lstm_model.release.promotion import previous_build as _previous_build
from lstm_model.training.backend import settle_backend
from lstm_model.training.config import TrainConfig
from lstm_model.training.fingerprint import Fingerprint, build_fingerprint
from lstm_model.training.result import TrainResult
from tasks._events import emit
from tasks._policies import IO_RETRIES


@task(name="fingerprint", timeout_seconds=300)
def fingerprint(
    dataset_version: str, tokeniser: TokeniserConfig, model: ModelConfig, training: TrainConfig
) -> Fingerprint:
    """What a model trained now would be built from: data, config and training code."""
    return build_fingerprint(dataset_version, tokeniser, model, training)


@task(name="previous-build", timeout_seconds=600, **IO_RETRIES)
def previous_build(registry: Path, built_from: Fingerprint, force: bool) -> PreviousBuild | None:
    """The registered version with this fingerprint, if any; published as the run's
    "nothing new" artifact unless ``force`` trains anyway."""
    found = _previous_build(registry, built_from)
    if found is not None:
        logger = get_run_logger()
        if force:
            logger.info("training anyway (force): %s", found.describe())
        else:
            logger.info(found.describe())
            create_markdown_artifact(
                markdown=(
                    f"# Nothing new: nothing trained\n\n{found.describe()}.\n\n"
                    f"Fingerprint `{built_from.sha256}`: dataset `{built_from.dataset}`, "
                    f"code `{built_from.code[:12]}`. Set `force` to train anyway."
                ),
                key="retrain-nothing-new",
                description="Why this retrain trained nothing",
            )
    return found


@task(name="train", timeout_seconds=4 * 3600)
def train(
    tokenised: TokenisedResult,
    model: ModelConfig,
    config: TrainConfig,
    run_dir: Path,
    spans: list[Span] | None = None,
) -> TrainResult:
    """Fit the model, the labelled spans' rows weighted by domain; progress shows as a
    Prefect progress artifact, epoch by epoch."""
    # Imported here: Keras takes 20 s to import, and a run with nothing new never trains.
    # The backend is settled first: a GPU deployment's backend may be missing on this worker.
    settle_backend()
    from lstm_model.training.fit import train_model

    logger = get_run_logger()
    artifact = create_progress_artifact(
        progress=0.0, key="training-progress", description="Training epochs done (%)"
    )

    def on_epoch_end(epoch: int, epochs: int, logs: Any) -> None:
        update_progress_artifact(artifact_id=artifact, progress=100.0 * epoch / epochs)
        logger.info(
            "epoch %d/%d: %s", epoch, epochs, ", ".join(f"{k} {v:.4f}" for k, v in logs.items())
        )

    result = train_model(tokenised, model, config, run_dir, spans, on_epoch_end=on_epoch_end)
    update_progress_artifact(artifact_id=artifact, progress=100.0)
    logger.info("LSTM kernel: %s", result.lstm_kernel)
    for weight in result.domain_weights:
        logger.info("domain weight %s", weight.describe())
    return result


@task(name="baseline", timeout_seconds=3600, **IO_RETRIES)
def baseline(
    reviews: IngestResult, config: BaselineConfig, split: TrainConfig, workspace: Path
) -> BaselineResult | None:
    """The TF-IDF + logistic regression baseline on the model's training rows (or None)."""
    if not config.enabled:
        get_run_logger().info("baseline disabled")
        return None
    return fit_baseline(reviews, config, split, workspace)


@task(name="evaluate", timeout_seconds=3600, **IO_RETRIES)
def evaluate(
    trained: TrainResult,
    tokenised: TokenisedResult,
    out_dir: Path,
    baseline_result: BaselineResult | None = None,
    spans: list[Span] | None = None,
) -> EvaluationResult:
    """Test metrics, per slice too (aclImdb and each domain of ``spans``), plots and report
    (beside the baseline's metrics, when measured); published as a markdown artifact."""
    result = evaluate_model(
        trained.model_path,
        tokenised,
        trained.history,
        out_dir,
        baseline=None if baseline_result is None else baseline_result.metrics,
        spans=spans or [],
        domain_weights=trained.domain_weights,
    )
    images = "\n\n".join(
        f"![{path.stem}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"
        for path in result.plot_paths
    )
    create_markdown_artifact(
        markdown=result.report_path.read_text() + "\n" + images,
        key="model-evaluation",
        description="Test-split evaluation of the candidate model",
    )
    return result


@task(name="register", timeout_seconds=600, **IO_RETRIES)
def register(
    registry: Path,
    trained: TrainResult,
    evaluation: EvaluationResult,
    tokenised: TokenisedResult,
    model: ModelConfig,
    config: TrainConfig,
    baseline_result: BaselineResult | None,
    built_from: Fingerprint,
) -> int:
    """Add the candidate to the model registry, with the fingerprint it was built from;
    returns its version."""
    return register_candidate(
        registry,
        trained,
        evaluation,
        tokenised,
        model_config=model,
        train_config=config,
        baseline=baseline_result,
        fingerprint=built_from,
    )


@task(name="gate", timeout_seconds=600)
def gate(
    registry: Path, version: int, config: GateConfig, spans: list[Span] | None = None
) -> GateDecision:
    """Absolute accuracy bar, no regression against the champion (on aclImdb test and on
    each domain's test share beyond its noise), optional baseline margin. A rejection is
    also a ``GATE_REJECTED`` event, which the stack's alerts send on."""
    try:
        return gate_candidate(registry, version, config, spans or [])
    except GateFailed as rejected:
        emit(GATE_REJECTED, f"{MODEL_RESOURCE}.{version}", f"model version {version}",
             {"version": version, "reason": str(rejected), "registry": str(registry)})  # fmt: skip
        raise


@task(name="export", timeout_seconds=3600)
def export(
    registry: Path, version: int, reviews: IngestResult, config: ExportConfig
) -> ParityResult:
    """SavedModel, TFLite and mobile TFLite export and the parity checks on the whole test
    split. A failed
    parity check rejects the version: a ``GATE_REJECTED`` event too, as the gate's."""
    try:
        return export_candidate(registry, version, reviews, config)
    except ParityFailed as rejected:
        emit(GATE_REJECTED, f"{MODEL_RESOURCE}.{version}", f"model version {version}",
             {"version": version, "reason": str(rejected), "registry": str(registry)})  # fmt: skip
        raise


@task(name="promote", timeout_seconds=600, **IO_RETRIES)
def promote(registry: Path, version: int, config: ExportConfig) -> int:
    """Move the champion pointer to this version."""
    return promote_candidate(registry, version, config)


@task(name="history", timeout_seconds=600, **IO_RETRIES)
def history(registry: Path, plot_path: Path) -> ModelHistory:
    """Every version's dataset, accuracy per slice, status and reason: a table artifact,
    and the plot of accuracy per slice as a markdown artifact."""
    found = model_history(registry, plot_path)
    if found.rows:
        create_table_artifact(
            table=found.rows,
            key="model-history",
            description="Per version: dataset version, accuracy per slice, status and reason",
        )
    if found.plot is not None:
        encoded = base64.b64encode(found.plot.read_bytes()).decode()
        create_markdown_artifact(
            markdown=f"# Accuracy per slice\n\n![history](data:image/png;base64,{encoded})",
            key="model-history-plot",
            description="Test accuracy per slice over the registered versions",
        )
    return found
