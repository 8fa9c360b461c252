"""The retraining flow, as far as it exists: ingest -> validate -> tokenise -> validate."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from pydantic import BaseModel

from lstm_model.config import ReviewsContractConfig, TokeniserConfig, default_workspace
from tasks.data import ingest, resolve_source, tokenise, validate_reviews, validate_tokenised


class RetrainOutputs(BaseModel):
    """Paths and hashes the flow produced (what later steps and runs consume)."""

    source: str
    source_sha256: str
    reviews_path: Path
    reviews_sha256: str
    tokenised_path: Path
    tokenised_sha256: str
    tokeniser_dir: Path
    vocab_sha256: str
    data_docs: str | None


@flow(name="retrain", description="Ingest, validate and tokenise the IMDB reviews.")
def retrain(
    source: str | None = None,
    workspace: Path | None = None,
    tokeniser: TokeniserConfig = TokeniserConfig(),  # noqa: B008 - frozen, safe default
    reviews_contract: ReviewsContractConfig = ReviewsContractConfig(),  # noqa: B008
) -> RetrainOutputs:
    """Run the retraining DAG.

    Args:
        source: aclImdb archive, folder or http(s) URL; empty resolves it (see README).
        workspace: folder for all artifacts; empty means $LSTM_PIPELINE_HOME or ./artifacts.
        tokeniser: vocabulary size, sequence length, padding and truncation sides.
        reviews_contract: bounds of the imdb_reviews data contract.
    """
    root = (workspace or default_workspace()).resolve()
    resolved = resolve_source(source)
    reviews = ingest(resolved, root)
    contract = validate_reviews(reviews, root, reviews_contract)
    tokenised = tokenise(reviews, tokeniser, root, wait_for=[contract])
    validate_tokenised(tokenised, reviews, root)
    return RetrainOutputs(
        source=str(resolved.path),
        source_sha256=reviews.source_sha256,
        reviews_path=reviews.path,
        reviews_sha256=reviews.sha256,
        tokenised_path=tokenised.path,
        tokenised_sha256=tokenised.sha256,
        tokeniser_dir=tokenised.tokeniser_dir,
        vocab_sha256=tokenised.vocab_sha256,
        data_docs=contract.data_docs,
    )
