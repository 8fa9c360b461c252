"""Data contracts: pass on real reviews; each expectation fails on a frame built to break it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_contracts import ContractViolation, validate_imdb_reviews, validate_imdb_tokenised
from data_contracts._runner import run_suite
from data_contracts.config import ReviewsContractConfig
from data_contracts.imdb_reviews import COLUMN_TYPES
from data_contracts.imdb_tokenised import expectations as tokenised_expectations
from data_contracts.imdb_tokenised import summarise
from lstm_model.data.config import TokeniserConfig
from lstm_model.data.dataset import tokenise_reviews
from lstm_model.data.ingest import REVIEWS_SCHEMA
from tests.helpers.tiny import FIXTURE_CONTRACT

CONFIG = ReviewsContractConfig(**FIXTURE_CONTRACT)


@pytest.fixture(scope="module")
def gx_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gx")


def test_column_types_cover_the_ingest_schema() -> None:
    assert set(COLUMN_TYPES) == set(REVIEWS_SCHEMA.names)


def test_real_reviews_pass_and_overlap_is_reported(
    reviews_frame: pd.DataFrame, gx_workspace: Path
) -> None:
    result = validate_imdb_reviews(reviews_frame, workspace=gx_workspace, config=CONFIG)
    assert result.success and result.failures == []
    assert result.evaluated == 18
    overlap = result.details["train_test_overlap"]
    assert overlap["count"] == 4  # the fixture keeps 4 texts that are in both splits
    assert overlap["examples"][0]["train"].startswith("train/")
    docs = Path(result.data_docs.removeprefix("file://"))
    assert docs.name == "index.html" and docs.is_file()
    assert "imdb_reviews" in docs.read_text()


def _set(column: str, index: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[index, column] = value
        return frame

    return change


def _drop_positives(split: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        cut = frame[(frame.split == split) & (frame.label == 1)].index[:80]
        return frame.drop(cut).reset_index(drop=True)

    return change


def _duplicate_id(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[1, "review_id"] = frame.loc[0, "review_id"]
    return frame


BREAKS: list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame], str]] = [
    ("extra column", lambda f: f.assign(extra=1), "expect_table_columns_to_match_set"),
    (
        "missing column",
        lambda f: f.drop(columns="source_path"),
        "expect_table_columns_to_match_set",
    ),
    *(
        (
            f"{column} type",
            lambda f, c=column, w=wrong: f.assign(**{c: w(f[c])}),
            f"expect_column_values_to_be_of_type(column='{column}'",
        )
        for column, wrong in [
            ("review_id", lambda s: s.astype("int64")),
            ("split", lambda s: s.astype("category")),
            ("label", lambda s: s.astype("int64")),
            ("rating", lambda s: s.astype("float64")),
            ("text", lambda s: s.str.encode("utf-8")),  # bytes, not str
            ("source_path", lambda s: s.astype("category")),
        ]
    ),
    (
        "null text",
        lambda f: f.assign(text=f.text.where(f.index != 3, None)),
        "expect_column_values_to_not_be_null",
    ),
    ("blank text", _set("text", 3, "   \n "), "expect_column_values_to_not_match_regex"),
    ("label 2", _set("label", 3, 2), "expect_column_values_to_be_in_set(column='label'"),
    ("split dev", _set("split", 3, "dev"), "expect_column_values_to_be_in_set(column='split'"),
    ("rating 11", _set("rating", 3, 11), "expect_column_values_to_be_between(column='rating'"),
    ("rating vs label", _set("rating", 3, 9), "expect_column_pair_values_to_be_in_set"),
    ("duplicate id", _duplicate_id, "expect_compound_columns_to_be_unique"),
    ("train imbalance", _drop_positives("train"), "row_condition=\"split == 'train'\""),
    ("test imbalance", _drop_positives("test"), "row_condition=\"split == 'test'\""),
    ("too few rows", lambda f: f.head(50), "expect_table_row_count_to_be_between"),
    ("too short", _set("text", 3, "bad"), "expect_column_value_lengths_to_be_between"),
    ("too long", _set("text", 3, "long " * 5000), "expect_column_value_lengths_to_be_between"),
]


@pytest.mark.parametrize(("case", "change", "named"), BREAKS, ids=[b[0] for b in BREAKS])
def test_each_expectation_fails_on_a_bad_frame(
    reviews_frame: pd.DataFrame,
    gx_workspace: Path,
    case: str,
    change: Callable[[pd.DataFrame], pd.DataFrame],
    named: str,
) -> None:
    frame = change(reviews_frame.copy())
    with pytest.raises(ContractViolation) as info:
        validate_imdb_reviews(frame, workspace=gx_workspace, config=CONFIG)
    message = str(info.value)
    assert message.startswith("data contract 'imdb_reviews': ")
    assert named in message, message
    failed = [f.expectation for f in info.value.result.failures]
    assert len(failed) <= 3, f"{case} broke more than it should: {failed}"


def test_failure_shows_offending_rows(reviews_frame: pd.DataFrame, gx_workspace: Path) -> None:
    frame = reviews_frame.copy()
    frame.loc[3, "label"] = 7
    row = frame.loc[3]
    with pytest.raises(ContractViolation) as info:
        validate_imdb_reviews(frame, workspace=gx_workspace, config=CONFIG)
    message = str(info.value)
    assert "1 unexpected of 408 rows" in message
    assert f"'review_id': {row.review_id}" in message and f"'split': '{row.split}'" in message
    assert "Data Docs: file://" in message


def test_report_without_raising(reviews_frame: pd.DataFrame, gx_workspace: Path) -> None:
    result = validate_imdb_reviews(
        reviews_frame,
        workspace=gx_workspace,
        config=ReviewsContractConfig(min_rows=1000),
        raise_on_failure=False,
    )
    assert not result.success
    assert [f.expectation for f in result.failures] == ["expect_table_row_count_to_be_between"]


# --- imdb_tokenised ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenised(ingested, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return tokenise_reviews(
        ingested, TokeniserConfig(vocab_size=500, maxlen=40), tmp_path_factory.mktemp("tok")
    )


def test_tokenised_dataset_passes(tokenised, ingested, gx_workspace: Path) -> None:  # type: ignore[no-untyped-def]
    result = validate_imdb_tokenised(tokenised, ingested, workspace=gx_workspace)
    assert result.success and result.evaluated == 9


def _tokenised_frame(tokenised, reviews_frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    table = pq.read_table(tokenised.path)
    ids = table["ids"].combine_chunks().values.to_numpy().reshape(table.num_rows, -1).copy()
    return ids, table.select(["review_id", "split", "label"]).to_pandas()


def _check(frame: pd.DataFrame, rows: int, workspace: Path) -> list[str]:
    result = run_suite(
        "imdb_tokenised",
        frame,
        tokenised_expectations(rows=rows, maxlen=40, vocab_size=500),
        project_root=workspace,
        id_columns=("split", "label", "review_id"),
        max_examples=3,
    )
    return [f.describe() for f in result.failures]


def test_id_outside_vocabulary_fails(tokenised, reviews_frame, gx_workspace) -> None:  # type: ignore[no-untyped-def]
    ids, meta = _tokenised_frame(tokenised, reviews_frame)
    ids[5, -1] = 500
    failures = _check(summarise(ids, meta, reviews_frame), len(reviews_frame), gx_workspace)
    assert len(failures) == 1 and "column='max_id', max_value=499" in failures[0]


def test_wrong_row_length_fails(tokenised, reviews_frame, gx_workspace) -> None:  # type: ignore[no-untyped-def]
    ids, meta = _tokenised_frame(tokenised, reviews_frame)
    rows = list(ids)
    rows[2] = rows[2][:-3]
    failures = _check(summarise(rows, meta, reviews_frame), len(reviews_frame), gx_workspace)
    assert len(failures) == 1 and "column='row_length', value_set=[40]" in failures[0]


def test_misaligned_labels_fail(tokenised, reviews_frame, gx_workspace) -> None:  # type: ignore[no-untyped-def]
    ids, meta = _tokenised_frame(tokenised, reviews_frame)
    meta.loc[0, "label"] = 1 - meta.loc[0, "label"]
    failures = _check(summarise(ids, meta, reviews_frame), len(reviews_frame), gx_workspace)
    assert any("column_A='label', column_B='review_label'" in f for f in failures)


def test_shuffled_rows_fail(tokenised, reviews_frame, gx_workspace) -> None:  # type: ignore[no-untyped-def]
    ids, meta = _tokenised_frame(tokenised, reviews_frame)
    order = np.random.default_rng(0).permutation(len(meta))
    failures = _check(
        summarise(ids[order], meta.iloc[order].reset_index(drop=True), reviews_frame),
        len(reviews_frame),
        gx_workspace,
    )
    assert any("column_B='review_review_id'" in f for f in failures)


def test_all_padding_row_with_text_fails(tokenised, reviews_frame, gx_workspace) -> None:  # type: ignore[no-untyped-def]
    ids, meta = _tokenised_frame(tokenised, reviews_frame)
    ids[7] = 0
    failures = _check(summarise(ids, meta, reviews_frame), len(reviews_frame), gx_workspace)
    assert len(failures) == 1
    assert "column='n_nonpad', row_condition='text_blank == False', min_value=1" in failures[0]
    assert "'review_id': " in failures[0]


def test_all_padding_row_with_empty_text_passes(tokenised, reviews_frame, gx_workspace) -> None:  # type: ignore[no-untyped-def]
    ids, meta = _tokenised_frame(tokenised, reviews_frame)
    ids[7] = 0
    reviews = reviews_frame.copy()
    reviews.loc[7, "text"] = "   "
    assert _check(summarise(ids, meta, reviews), len(reviews), gx_workspace) == []


def test_negative_id_fails(tokenised, reviews_frame, gx_workspace) -> None:  # type: ignore[no-untyped-def]
    ids, meta = _tokenised_frame(tokenised, reviews_frame)
    ids[4, 0] = -1
    failures = _check(summarise(ids, meta, reviews_frame), len(reviews_frame), gx_workspace)
    assert len(failures) == 1 and "column='min_id', min_value=0" in failures[0]


def test_label_outside_0_1_fails(tokenised, reviews_frame, gx_workspace) -> None:  # type: ignore[no-untyped-def]
    ids, meta = _tokenised_frame(tokenised, reviews_frame)
    reviews = reviews_frame.copy()
    meta.loc[9, "label"] = reviews.loc[9, "label"] = 3
    failures = _check(summarise(ids, meta, reviews), len(reviews), gx_workspace)
    assert len(failures) == 1 and "column='label', value_set=[0, 1]" in failures[0]


def test_misaligned_split_fails(tokenised, reviews_frame, gx_workspace) -> None:  # type: ignore[no-untyped-def]
    ids, meta = _tokenised_frame(tokenised, reviews_frame)
    meta.loc[0, "split"] = "train" if meta.loc[0, "split"] == "test" else "test"
    failures = _check(summarise(ids, meta, reviews_frame), len(reviews_frame), gx_workspace)
    assert len(failures) == 1 and "column_A='split', column_B='review_split'" in failures[0]


def test_missing_rows_fail(tokenised, reviews_frame, gx_workspace) -> None:  # type: ignore[no-untyped-def]
    ids, meta = _tokenised_frame(tokenised, reviews_frame)
    failures = _check(
        summarise(ids[:-2], meta.iloc[:-2], reviews_frame), len(reviews_frame), gx_workspace
    )
    assert any("expect_table_row_count_to_equal(value=408)" in f for f in failures)


def test_tokenised_parquet_schema(tokenised) -> None:  # type: ignore[no-untyped-def]
    schema = pq.read_schema(tokenised.path)
    assert schema.field("ids").type == pa.list_(pa.int32(), 40)


def test_old_validation_results_are_pruned_and_the_data_docs_rebuilt(
    reviews_frame: pd.DataFrame, tmp_path: Path
) -> None:
    from data_contracts import prune_results

    for _ in range(3):
        validate_imdb_reviews(reviews_frame, workspace=tmp_path, config=CONFIG)
    site = tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site"
    stored = tmp_path / "gx" / "uncommitted" / "validations" / "imdb_reviews"
    runs = sorted(p.parent.name for p in stored.rglob("*.json"))
    assert len(runs) == 3 and len(list((site / "validations").rglob("*.html"))) == 3

    dry = prune_results(tmp_path, 1, dry_run=True)
    assert [(p.contract, p.bytes > 0) for p in dry] == [("imdb_reviews", True)] * 2
    assert len(list(stored.rglob("*.json"))) == 3

    assert prune_results(tmp_path, 1, dry_run=False) == dry
    assert [p.parent.name for p in stored.rglob("*.json")] == [runs[-1]]  # the newest stays
    assert [p.parent.name for p in (site / "validations").rglob("*.html")] == [runs[-1]]
    index = (site / "index.html").read_text()
    assert runs[-1] in index and runs[0] not in index and runs[1] not in index
    assert prune_results(tmp_path, 1, dry_run=False) == []
