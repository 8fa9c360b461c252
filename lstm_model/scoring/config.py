"""Batch scoring of files dropped into an inbox."""

from __future__ import annotations

from pydantic import Field

from lstm_model.config import FrozenConfig


class ScoringConfig(FrozenConfig):
    """Batch scoring of files dropped into an inbox."""

    settle_seconds: float = Field(
        10.0,
        ge=0.0,
        description="A file is picked up once unmodified for this long (still being "
        "written otherwise). Names starting with '.' or ending .part/.tmp are never taken.",
    )
    text_column: str = Field("text", min_length=1, description="Text column of CSV/JSONL/Parquet.")
    id_column: str = Field("id", min_length=1, description="Optional id column.")
    max_text_chars: int = Field(
        20_000, ge=1, description="Longer texts are rejected (row by row), not scored."
    )
    max_row_bytes: int = Field(
        1 << 20,
        ge=1024,
        le=64 << 20,
        description="Longest row in bytes (a line of TXT or JSONL, a record of CSV), at most "
        "64 MiB. A longer row is rejected with its row number and sha256 and never held in "
        "memory whole.",
    )
    max_row_group_bytes: int = Field(
        256 << 20,
        ge=1 << 20,
        description="Parquet: largest uncompressed size of the text and id columns in one "
        "row group. A file with a larger row group is quarantined (a page is decoded whole, "
        "and one page may be as large as its row group): write it with smaller row groups.",
    )
    reject_text_chars: int = Field(
        1000,
        ge=0,
        description="Characters of a rejected row's text kept in the rejects file; the whole "
        "row stays in the archived input, found by its row number and sha256.",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        description="A file whose scoring fails for a reason other than its content (a bug, a "
        "full disk, a process killed while reading it) stays in the inbox for the next run; "
        "once this many runs in a row have failed at it, the next run quarantines it unread, "
        "with the last error. A run that scores nothing while several files fail the same "
        "way counts nothing against them, and fails.",
    )
    batch_size: int = Field(512, ge=1, le=65_536, description="Texts per prediction batch.")
    chunk_rows: int = Field(
        50_000,
        ge=1,
        description="Rows read, checked, tokenised and scored at a time (bounds memory).",
    )
    chunk_bytes: int = Field(
        64 << 20,
        ge=1 << 16,
        description="A chunk also ends once its rows hold this many bytes in memory (texts, "
        "ids and the records of rejected rows), whichever of the two limits comes first.",
    )
    rescore: bool = Field(
        False,
        description="Also score archived files again with the current champion if it has "
        "not scored them yet (after a promotion). Off: a new champion only sees new files.",
    )
    max_score_shift: float = Field(
        0.15,
        ge=0.0,
        le=1.0,
        description="Warn when the run's positive rate differs from the champion's on its "
        "test split by more than this.",
    )
    max_oov_shift: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Warn when the out-of-vocabulary rate exceeds the training data's by more.",
    )
    max_length_ratio: float = Field(
        2.0,
        ge=1.0,
        description="Warn when the mean text length is this many times longer or shorter "
        "than the training data's.",
    )
    alert_quarantined_files: int = Field(
        1,
        ge=0,
        description="Raise an alert when a run quarantines at least this many files (0: never).",
    )
    alert_rejected_share: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Raise an alert when a run rejects more than this share of the rows it "
        "read (1: never).",
    )
