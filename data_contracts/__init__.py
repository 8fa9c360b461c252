"""Data contracts as code: one module per dataset, each exposing ``validate_*``.

Suites are Great Expectations 1.x expectations; a failed contract raises
``ContractViolation`` whose message names each failed expectation with examples.

The names below load on first use: the console reads ``data_contracts.config`` to build
its options, and should not pay for pandas and the suites before a flow runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from data_contracts._runner import (
        ContractResult,
        ContractViolation,
        ExpectationFailure,
        build_data_docs,
    )
    from data_contracts.imdb_reviews import validate_imdb_reviews
    from data_contracts.imdb_tokenised import validate_imdb_tokenised
    from data_contracts.labelled_reviews import validate_labelled_reviews
    from data_contracts.retention import prune_results

_HOMES = {
    "ContractResult": "data_contracts._runner",
    "ContractViolation": "data_contracts._runner",
    "ExpectationFailure": "data_contracts._runner",
    "build_data_docs": "data_contracts._runner",
    "validate_imdb_reviews": "data_contracts.imdb_reviews",
    "validate_imdb_tokenised": "data_contracts.imdb_tokenised",
    "validate_labelled_reviews": "data_contracts.labelled_reviews",
    "prune_results": "data_contracts.retention",
}

__all__ = [
    "ContractResult",
    "ContractViolation",
    "ExpectationFailure",
    "build_data_docs",
    "prune_results",
    "validate_imdb_reviews",
    "validate_imdb_tokenised",
    "validate_labelled_reviews",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
