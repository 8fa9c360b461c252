"""Labelled drops made from the fixture's texts: the head of each review (never a whole
one, so none equals an aclImdb review) with its label, written as a team would write them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def labelled_rows(reviews: pd.DataFrame, n: int, start: int = 0, words: int = 12) -> list[dict]:
    """``n`` rows of ``{"text", "label"}``: the first ``words`` words of reviews ``start``
    onwards, alternating the splits they came from, labels as the reviews have them."""
    rows = []
    for review in reviews.iloc[start : start + n].itertuples():
        head = " ".join(str(review.text).split()[:words])
        rows.append({"text": f"{head} (team note {review.Index})", "label": int(review.label)})
    return rows


def write_drop(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` as CSV, JSONL or Parquet by ``path``'s suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        pd.DataFrame(rows).to_csv(path, index=False)
    return path
