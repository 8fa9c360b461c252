"""Contract ``labelled_reviews``: the accepted rows of a labelled drop, before they become
a span that models train and are tested on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from data_contracts._runner import ContractViolation, run_suite
from lstm_model.data.config import DOMAIN_PATTERN

CONTRACT = "labelled_reviews"
ID_COLUMNS = ("source_file", "row_number", "id")
COLUMN_TYPES = {
    "id": "str",
    "text": "str",
    "label": "int8",
    "domain": "str",
    "split": "str",
    "key": "str",
    "source_file": "str",
    "row_number": "int64",
}


def expectations(*, max_text_chars: int) -> list[Any]:
    """The suite, as code: one GX expectation per rule of the contract."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(COLUMN_TYPES), exact_match=True),
        *(gxe.ExpectColumnValuesToBeOfType(column=c, type_=t) for c, t in COLUMN_TYPES.items()),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in COLUMN_TYPES),
        gxe.ExpectColumnValuesToNotMatchRegex(column="text", regex=r"^\s*$"),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="text", min_value=1, max_value=max_text_chars
        ),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1]),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "test"]),
        gxe.ExpectColumnValuesToMatchRegex(column="domain", regex=DOMAIN_PATTERN),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        # one row per normalised text: no conflicting labels, no copies across the splits
        gxe.ExpectColumnValuesToBeUnique(column="key"),
    ]


def validate_labelled_reviews(frame: pd.DataFrame, *, workspace: Path, max_text_chars: int) -> None:
    """Raise ContractViolation unless the rows may become a span."""
    result = run_suite(
        CONTRACT,
        frame,
        expectations(max_text_chars=max_text_chars),
        project_root=workspace,
        id_columns=ID_COLUMNS,
        max_examples=5,
    )
    if not result.success:
        raise ContractViolation(result)
