"""Contract ``imdb_tokenised``: token-id rows as the model will read them.

The id matrix is summarised per row (length, smallest and largest id, non-padding count)
and joined, row by row, with the reviews it was made from; GX validates that frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_contracts._runner import ContractResult, ContractViolation, run_suite
from lstm_model.data.dataset import TokenisedResult
from lstm_model.data.ingest import IngestResult, load_reviews
from lstm_model.data.tokeniser import PAD_ID

CONTRACT = "imdb_tokenised"
ID_COLUMNS = ("split", "label", "review_id")


def expectations(*, rows: int, maxlen: int, vocab_size: int) -> list[Any]:
    """The suite, as code."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    return [
        gxe.ExpectTableRowCountToEqual(value=rows),
        gxe.ExpectColumnValuesToBeInSet(column="row_length", value_set=[maxlen]),
        gxe.ExpectColumnValuesToBeBetween(column="min_id", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="max_id", max_value=vocab_size - 1),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1]),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="label", column_B="review_label"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="review_id", column_B="review_review_id"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="split", column_B="review_split"),
        gxe.ExpectColumnValuesToBeBetween(
            column="n_nonpad",
            min_value=1,
            row_condition=Column("text_blank") == False,  # noqa: E712
        ),
    ]


def summarise(
    ids: np.ndarray | list, tokenised: pd.DataFrame, reviews: pd.DataFrame
) -> pd.DataFrame:
    """Per-row summary of an id matrix beside the reviews rows it should align with.

    ``ids`` is a 2-D array, or a list of 1-D rows when row lengths differ.
    """
    rows = [np.asarray(r) for r in ids] if isinstance(ids, list) else list(ids)
    frame = pd.DataFrame(
        {
            "review_id": tokenised["review_id"].to_numpy(),
            "split": tokenised["split"].to_numpy(),
            "label": tokenised["label"].to_numpy(),
            "row_length": [len(r) for r in rows],
            "min_id": [int(r.min()) if len(r) else PAD_ID for r in rows],
            "max_id": [int(r.max()) if len(r) else PAD_ID for r in rows],
            "n_nonpad": [int(np.count_nonzero(r != PAD_ID)) for r in rows],
        }
    )
    aligned = reviews.reset_index(drop=True).reindex(range(len(frame)))
    frame["review_review_id"] = aligned["review_id"].to_numpy()
    frame["review_split"] = aligned["split"].to_numpy()
    frame["review_label"] = aligned["label"].to_numpy()
    frame["text_blank"] = aligned["text"].fillna("").str.strip().eq("").to_numpy()
    return frame


def validate_imdb_tokenised(
    tokenised: TokenisedResult,
    reviews: IngestResult,
    *,
    workspace: Path,
    max_examples: int = 5,
    raise_on_failure: bool = True,
) -> ContractResult:
    """Check shapes, id range, label alignment and padding of a tokenised dataset."""
    table = pq.read_table(tokenised.path)
    ids = table["ids"].combine_chunks()
    lengths = pc.list_value_length(ids).to_numpy()
    flat = ids.flatten().to_numpy()
    if len(set(lengths)) <= 1:
        matrix: np.ndarray | list = flat.reshape(len(ids), -1)
    else:
        matrix = np.split(flat, np.cumsum(lengths)[:-1])
    frame = summarise(
        matrix,
        table.select(["review_id", "split", "label"]).to_pandas(),
        load_reviews(reviews, columns=["review_id", "split", "label", "text"]).to_pandas(),
    )
    result = run_suite(
        CONTRACT,
        frame,
        expectations(
            rows=reviews.rows,
            maxlen=tokenised.config.maxlen,
            vocab_size=tokenised.config.vocab_size,
        ),
        project_root=workspace,
        id_columns=ID_COLUMNS,
        max_examples=max_examples,
    )
    if raise_on_failure and not result.success:
        raise ContractViolation(result)
    return result
