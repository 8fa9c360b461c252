"""The rows of one file on their way to a result: read in chunks, checked against the
input contract, rejects kept with a bounded record, and the names results go under."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from lstm_model.artifacts import (
    atomic_parquet_writer,
)
from lstm_model.data.drops import (
    REJECTS_SCHEMA,
    Dropped,
    Reject,
    Rows,
    iter_rows,
    rejects_table,
    safe_name,
)
from lstm_model.errors import DataContractError
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.outcomes import OpenedFile

FrameCheck = Callable[[pd.DataFrame], None]
"""A contract over a frame; raises DataContractError (with the reason) when the frame
breaks it."""


def result_paths(entry: Dropped, version: int, folders: ScoringFolders) -> tuple[Path, Path]:
    """Where a file's result and rejects go: names fixed by its content and the model."""
    stem = f"{safe_name(entry.path.stem)}.{entry.sha256[:12]}.v{version}"
    return folders.results / f"{stem}.parquet", folders.rejects / f"{stem}.rejects.parquet"


def read_chunks(opened: OpenedFile, config: ScoringConfig) -> Iterator[Rows]:
    """The file's rows in chunks of ``config.chunk_rows``, checked by the row rules."""
    return iter_rows(opened.handle, opened.entry.path.suffix, opened.entry.name, config)


class ContractBreach(Exception):
    """Rows of a file break the scoring_input contract (the file is quarantined)."""


def check_rows(rows: Rows, check_input: FrameCheck | None) -> None:
    """Apply the input contract to the accepted rows; ContractBreach if they break it.

    Only a verdict (DataContractError) condemns the file; a check that fails for another
    reason raises as it is, and the file stays in the inbox for the next run.
    """
    if check_input is None or not rows.ids:
        return
    try:
        check_input(_input_frame(rows))
    except DataContractError as exc:
        raise ContractBreach(str(exc)) from exc


class RejectsFile:
    """A file's rejected rows, streamed to Parquet as they come (memory stays flat): the
    file appears at ``path``, atomically, only if a row is rejected and ``stack`` closes
    without an error."""

    def __init__(self, path: Path, entry: Dropped, stack: ExitStack) -> None:
        self.path, self.entry, self.stack = path, entry, stack
        self.rows = 0
        self._writer: Any = None

    @property
    def path_if_any(self) -> Path | None:
        return self.path if self.rows else None

    def write(self, rejected: list[Reject] | pa.Table) -> None:
        table = rejected if isinstance(rejected, pa.Table) else rejects_table(rejected, self.entry)
        if not table.num_rows:
            return
        if self._writer is None:
            self._writer = self.stack.enter_context(
                atomic_parquet_writer(self.path, REJECTS_SCHEMA)
            )
        self._writer.write_table(table)
        self.rows += table.num_rows


def _input_frame(rows: Rows) -> pd.DataFrame:
    return pd.DataFrame({"id": rows.ids, "text": rows.texts, "row_number": rows.row_number})
