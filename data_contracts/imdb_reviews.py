"""Contract ``imdb_reviews``: the ingested reviews table, before any model sees it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from data_contracts._runner import ContractResult, ContractViolation, run_suite
from data_contracts.config import ReviewsContractConfig
from lstm_model.data.ingest import IngestResult, load_reviews

CONTRACT = "imdb_reviews"
ID_COLUMNS = ("split", "label", "review_id")
# pandas dtype names for the Arrow schema written by ingest
COLUMN_TYPES = {
    "review_id": "int32",
    "split": "str",
    "label": "int8",
    "rating": "int8",
    "text": "str",
    "source_path": "str",
}
NEGATIVE_RATINGS = range(1, 5)
POSITIVE_RATINGS = range(7, 11)


def expectations(config: ReviewsContractConfig) -> list[Any]:
    """The suite, as code: one GX expectation per rule of the contract."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    label_rating_pairs = [(0, r) for r in NEGATIVE_RATINGS] + [(1, r) for r in POSITIVE_RATINGS]
    balance = [
        gxe.ExpectColumnMeanToBeBetween(
            column="label",
            min_value=config.min_positive_fraction,
            max_value=config.max_positive_fraction,
            row_condition=Column("split") == split,
        )
        for split in ("train", "test")
    ]
    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(COLUMN_TYPES), exact_match=True),
        *(gxe.ExpectColumnValuesToBeOfType(column=c, type_=t) for c, t in COLUMN_TYPES.items()),
        gxe.ExpectColumnValuesToNotBeNull(column="text"),
        gxe.ExpectColumnValuesToNotMatchRegex(column="text", regex=r"^\s*$"),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1]),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "test"]),
        gxe.ExpectColumnValuesToBeBetween(column="rating", min_value=1, max_value=10),
        gxe.ExpectColumnPairValuesToBeInSet(
            column_A="label", column_B="rating", value_pairs_set=label_rating_pairs
        ),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=list(ID_COLUMNS)),
        *balance,
        gxe.ExpectTableRowCountToBeBetween(min_value=config.min_rows, max_value=config.max_rows),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="text", min_value=config.min_text_chars, max_value=config.max_text_chars
        ),
    ]


def train_test_overlap(frame: pd.DataFrame, max_examples: int = 5) -> dict[str, Any]:
    """Reviews whose exact text is in both splits: count and examples (reported, not failed)."""
    if not {"split", "text", "review_id", "label"} <= set(frame.columns):
        return {"count": 0, "examples": []}
    train = frame.loc[frame["split"] == "train", ["review_id", "label", "text"]]
    test = frame.loc[frame["split"] == "test", ["review_id", "label", "text"]]
    pairs = train.merge(test, on="text", suffixes=("_train", "_test"))
    examples = [
        {
            "train": f"train/{'pos' if row.label_train else 'neg'}/{row.review_id_train}",
            "test": f"test/{'pos' if row.label_test else 'neg'}/{row.review_id_test}",
            "text": _snippet(row.text),
        }
        for row in pairs.head(max_examples).itertuples()
    ]
    return {"count": int(pairs["text"].nunique()), "examples": examples}


def _snippet(text: object, limit: int = 80) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "…"


def validate_imdb_reviews(
    data: IngestResult | pd.DataFrame,
    *,
    workspace: Path,
    config: ReviewsContractConfig | None = None,
    raise_on_failure: bool = True,
) -> ContractResult:
    """Check the reviews against the contract; build Data Docs; report train/test overlap.

    Raises ContractViolation naming each failed expectation with offending rows, unless
    ``raise_on_failure`` is False.
    """
    config = config or ReviewsContractConfig()
    frame = data if isinstance(data, pd.DataFrame) else load_reviews(data).to_pandas()
    result = run_suite(
        CONTRACT,
        frame,
        expectations(config),
        project_root=workspace,
        id_columns=ID_COLUMNS,
        max_examples=config.max_examples,
    )
    overlap = train_test_overlap(frame, config.max_examples)
    result = result.model_copy(update={"details": {"train_test_overlap": overlap}})
    if raise_on_failure and not result.success:
        raise ContractViolation(result)
    return result
