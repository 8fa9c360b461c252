"""Shared setup of the full-data benchmarks: the real archive, ingested and tokenised once."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

DEFAULT_SOURCE = "../shared/data/aclImdb_v1_labeled.tar.gz"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--source", type=Path, default=Path(DEFAULT_SOURCE))
    p.add_argument("--workspace", type=Path, default=Path("artifacts/benchmarks"))
    return p


def prepare(source: Path, workspace: Path, tokeniser):  # type: ignore[no-untyped-def]
    """(IngestResult, TokenisedResult) of the full archive; cached across benchmark runs."""
    from lstm_model.dataset import tokenise_reviews
    from lstm_model.ingest import ingest_reviews
    from lstm_model.sources import resolve_source

    if not source.is_file():
        raise SystemExit(f"{source} not found: pass --source PATH to the full aclImdb archive")
    logging.basicConfig(level=logging.WARNING)
    reviews = ingest_reviews(resolve_source(str(source)), workspace)
    return reviews, tokenise_reviews(reviews, tokeniser, workspace)
