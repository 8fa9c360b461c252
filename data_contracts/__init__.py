"""Data contracts as code: one module per dataset, each exposing ``validate_*``.

Suites are Great Expectations 1.x expectations; a failed contract raises
``ContractViolation`` whose message names each failed expectation with examples.
"""

from data_contracts._runner import ContractResult, ContractViolation, ExpectationFailure
from data_contracts.imdb_reviews import validate_imdb_reviews
from data_contracts.imdb_tokenised import validate_imdb_tokenised

__all__ = [
    "ContractResult",
    "ContractViolation",
    "ExpectationFailure",
    "validate_imdb_reviews",
    "validate_imdb_tokenised",
]
