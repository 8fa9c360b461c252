"""Contracts ``scoring_input`` (rows about to be scored) and ``scoring_output`` (a result
file before it is published).

They run on every chunk of every file, so they leave the Data Docs to the scoring run,
which builds them once at its end (``build_data_docs``); a failed contract updates them at
once, for the link in its report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from data_contracts._runner import ContractViolation, run_suite
from lstm_model.model.labels import THRESHOLD

INPUT = "scoring_input"
OUTPUT = "scoring_output"


def input_expectations(*, max_text_chars: int) -> list[Any]:
    """The ``scoring_input`` suite, as code."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=["id", "text", "row_number"]),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="text"),
        gxe.ExpectColumnValuesToNotBeNull(column="id"),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="text", min_value=1, max_value=max_text_chars
        ),
        gxe.ExpectColumnValuesToNotMatchRegex(column="text", regex=r"^\s*$"),
    ]


def output_expectations(*, rows: int) -> list[Any]:
    """The ``scoring_output`` suite, as code."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToEqual(value=rows),
        gxe.ExpectColumnValuesToBeBetween(column="probability", min_value=0.0, max_value=1.0),
        gxe.ExpectColumnValuesToNotBeNull(column="probability"),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1]),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="label", column_B="threshold_label"),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
    ]


def validate_scoring_input(frame: pd.DataFrame, *, workspace: Path, max_text_chars: int) -> None:
    """Raise ContractViolation unless the rows are scoreable."""
    _enforce(INPUT, frame, input_expectations(max_text_chars=max_text_chars), workspace)


def validate_scoring_output(frame: pd.DataFrame, *, workspace: Path, rows: int) -> None:
    """Raise ContractViolation unless the result rows are complete and consistent."""
    checked = frame.assign(threshold_label=(frame["probability"] >= THRESHOLD).astype("int8"))
    _enforce(OUTPUT, checked, output_expectations(rows=rows), workspace)


def _enforce(contract: str, frame: pd.DataFrame, suite: list[Any], workspace: Path) -> None:
    result = run_suite(
        contract, frame, suite, project_root=workspace, id_columns=("id",), max_examples=5,
        data_docs=False,
    )  # fmt: skip
    if not result.success:
        raise ContractViolation(result)
