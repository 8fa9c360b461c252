"""Prefect tasks of the data half of the retraining flow: one library call each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from data_contracts import ContractResult, ContractViolation, validate_labelled_reviews
from data_contracts import validate_imdb_reviews as _validate_imdb_reviews
from data_contracts import validate_imdb_tokenised as _validate_imdb_tokenised
from data_contracts.config import ReviewsContractConfig
from lstm_model.data.config import LabelledConfig, TokeniserConfig
from lstm_model.data.dataset import TokenisedResult, tokenise_reviews, tokenised_folder
from lstm_model.data.ingest import IngestResult, ingest_folder, ingest_reviews
from lstm_model.data.labelled import IntakeReport
from lstm_model.data.labelled import take_labelled as _take_labelled
from lstm_model.data.sources import ResolvedSource
from lstm_model.data.sources import resolve_source as _resolve_source
from lstm_model.data.spans import TrainingSet, assemble_training_set
from tasks._policies import IO_RETRIES, published_key


@task(name="resolve-source", timeout_seconds=3600, **IO_RETRIES)
def resolve_source(source: str | None = None) -> ResolvedSource:
    """Find the aclImdb data (argument, environment, local copy, or download once)."""
    return _resolve_source(source)


def _ingest_key(context: Any, parameters: dict[str, Any]) -> str | None:
    return published_key("ingest", ingest_folder(parameters["source"], parameters["workspace"]))


@task(name="ingest", timeout_seconds=1800, cache_key_fn=_ingest_key, **IO_RETRIES)
def ingest(source: ResolvedSource, workspace: Path) -> IngestResult:
    """aclImdb to Parquet with a manifest; a cache hit when the source is unchanged."""
    return ingest_reviews(source, workspace)


@task(name="validate-reviews", timeout_seconds=1800, **IO_RETRIES)
def validate_reviews(
    reviews: IngestResult, workspace: Path, config: ReviewsContractConfig
) -> ContractResult:
    """Contract ``imdb_reviews``; publishes its report as a Prefect artifact."""
    result = _validate_imdb_reviews(
        reviews, workspace=workspace, config=config, raise_on_failure=False
    )
    return _publish(result)


@task(name="take-labelled", timeout_seconds=3600)
def take_labelled(workspace: Path, reviews: IngestResult, config: LabelledConfig) -> IntakeReport:
    """Turn settled files of the labelled inbox into spans (contract ``labelled_reviews``);
    each file's outcome becomes a table artifact."""
    report = _take_labelled(
        workspace,
        reviews,
        config,
        check=lambda frame: validate_labelled_reviews(
            frame, workspace=workspace, max_text_chars=config.max_text_chars
        ),
    )
    if report.outcomes:
        create_table_artifact(
            table=report.table(),
            key="labelled-intake",
            description=f"Labelled inbox: {report.rows_read} rows read, "
            f"{report.rows_accepted} accepted, {report.rows_rejected} rejected; new spans: "
            f"{', '.join(report.spans_added) or 'none'}",
        )
    return report


@task(name="training-set", timeout_seconds=1800, **IO_RETRIES)
def training_set(reviews: IngestResult, workspace: Path) -> TrainingSet:
    """aclImdb plus the train shares of the active spans, each span checked by hash."""
    return assemble_training_set(reviews, workspace)


def _tokenise_key(context: Any, parameters: dict[str, Any]) -> str | None:
    folder = tokenised_folder(parameters["reviews"], parameters["config"], parameters["workspace"])
    return published_key("tokenise", folder)


@task(name="tokenise", timeout_seconds=1800, cache_key_fn=_tokenise_key, **IO_RETRIES)
def tokenise(reviews: IngestResult, config: TokeniserConfig, workspace: Path) -> TokenisedResult:
    """Fit the tokeniser on train, encode all reviews; cached by input hash and config."""
    return tokenise_reviews(reviews, config, workspace)


@task(name="validate-tokenised", timeout_seconds=1800, **IO_RETRIES)
def validate_tokenised(
    tokenised: TokenisedResult, reviews: IngestResult, workspace: Path
) -> ContractResult:
    """Contract ``imdb_tokenised``; publishes its report as a Prefect artifact."""
    result = _validate_imdb_tokenised(
        tokenised, reviews, workspace=workspace, raise_on_failure=False
    )
    return _publish(result)


def _publish(result: ContractResult) -> ContractResult:
    """Publish a contract's report as a markdown artifact; fail the task if it failed."""
    get_run_logger().info("GX Data Docs for %s: %s", result.contract, result.data_docs)
    create_markdown_artifact(
        markdown=_markdown(result),
        key=f"contract-{result.contract.replace('_', '-')}",
        description=f"Data contract {result.contract}",
    )
    if not result.success:
        raise ContractViolation(result)
    return result


def _markdown(result: ContractResult) -> str:
    lines = [f"# Data contract `{result.contract}`: {'passed' if result.success else 'FAILED'}"]
    lines.append(f"{result.evaluated} expectations, {len(result.failures)} failed.")
    for failure in result.failures:
        lines.append(f"- `{failure.expectation}`: {failure.observed}")
        lines.extend(f"  - e.g. `{example}`" for example in failure.examples)
    overlap = result.details.get("train_test_overlap")
    if overlap:
        lines.append(
            f"\n**{overlap['count']} review texts appear in both train and test** "
            "(reported, not failed):"
        )
        lines.extend(f"- {e['train']} = {e['test']}: {e['text']}" for e in overlap["examples"])
    if result.data_docs:
        lines.append(f"\nGX Data Docs: {result.data_docs}")
    return "\n".join(lines)
