"""Files users drop for scoring: which are ready, how each format is read, what is bad.

A file is *ready* once it has not been modified for ``settle_seconds`` (its size and
mtime are then taken as final); files whose names start with ``.`` or end in ``.part``,
``.tmp`` or ``.crdownload`` are still being written by convention and never picked up.
Writers that cannot wait may write under such a name and rename when done.

Reading never guesses: a file that cannot be read as its format says (bad UTF-8, binary
content, a parse error, no text column, no rows) raises ``BadFile`` with the reason, and
the caller quarantines it whole. Rows that are bad inside a good file are returned apart
with a reason each.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lstm_model.errors import PipelineError

FORMATS = (".txt", ".csv", ".jsonl", ".parquet")
IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".crdownload")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class BadFile(PipelineError):
    """A dropped file that cannot be scored at all; the message says why."""


@dataclass(frozen=True)
class Rows:
    """The rows of one file: accepted ones to score, rejected ones with a reason each."""

    row_number: list[int]
    ids: list[str]
    texts: list[str]
    rejected: list[dict[str, object]]

    @property
    def total(self) -> int:
        return len(self.ids) + len(self.rejected)


def ready_files(inbox: Path, settle_seconds: float, now: float | None = None) -> list[Path]:
    """Files in ``inbox`` (not below it) that are complete by the settle rule, oldest first.

    Symbolic links and other non-regular files are returned too, so that the caller
    quarantines them with a reason instead of following them out of the inbox.
    """
    if not inbox.is_dir():
        raise PipelineError(f"inbox {inbox} does not exist or is not a folder")
    now = time.time() if now is None else now
    ready = []
    for path in inbox.iterdir():
        name = path.name
        if name.startswith(".") or name.lower().endswith(IN_PROGRESS_SUFFIXES):
            continue
        if path.is_dir() and not path.is_symlink():
            continue
        stat = path.lstat()
        if now - stat.st_mtime >= settle_seconds:
            ready.append((stat.st_mtime, name, path))
    return [path for _, _, path in sorted(ready)]


def safe_name(name: str, limit: int = 100) -> str:
    """A file name reduced to letters, digits, '.', '_' and '-' (never a path)."""
    cleaned = _SAFE.sub("_", name).strip("._") or "file"
    return cleaned[:limit]


def iter_rows(
    path: Path,
    *,
    text_column: str = "text",
    id_column: str = "id",
    max_text_chars: int = 20_000,
    chunk_rows: int = 50_000,
) -> Iterator[Rows]:
    """Stream one dropped file as chunks of at most ``chunk_rows`` rows (memory stays flat
    however long the file). Raises ``BadFile`` as soon as the file proves unreadable;
    the caller must then discard what it made of the earlier chunks."""
    if path.is_symlink() or not path.is_file():
        raise BadFile("not a regular file (symbolic links are not followed)")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise BadFile(f"unsupported format {suffix or '(no extension)'}; use one of {FORMATS}")
    if suffix == ".parquet":
        records = _parquet_records(path, text_column, id_column, chunk_rows)
    elif suffix == ".txt":
        records = ((None, line) for line in _lines(path))
    elif suffix == ".csv":
        records = _csv_records(path, text_column, id_column)
    else:
        records = _jsonl_records(path, text_column, id_column)
    checker = _RowChecker(path.name, max_text_chars)
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == chunk_rows:
            yield checker.check(chunk)
            chunk = []
    if chunk or not checker.rows_seen:
        if not chunk:
            raise BadFile("the file holds no rows")
        yield checker.check(chunk)


def _text_lines(path: Path) -> Iterator[str]:
    """Decoded lines (BOM dropped, line ends kept), checked for UTF-8 and binary content."""
    offset = 0
    with path.open("rb") as handle:
        if b"\x00" in handle.read(8192):  # how file(1) tells binary from text
            raise BadFile("binary content (NUL bytes): not a text file")
        handle.seek(0)
        first = True
        for raw in handle:
            if first and raw.startswith(b"\xef\xbb\xbf"):
                raw, offset = raw[3:], 3
            first = False
            if b"\x00" in raw:
                raise BadFile("binary content (NUL bytes): not a text file")
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                at = offset + exc.start
                raise BadFile(
                    f"not valid UTF-8 at byte {at}: {raw[exc.start : exc.start + 8]!r}"
                ) from exc
            offset += len(raw)


def _lines(path: Path) -> Iterator[str]:
    for line in _text_lines(path):
        yield line.rstrip("\r\n") if line.endswith("\n") else line.rstrip("\r")


Record = tuple[object, object]  # (id or None, text or a non-string to reject)


def _csv_records(path: Path, text_column: str, id_column: str) -> Iterator[Record]:
    try:
        reader = csv.DictReader(_text_lines(path))
        fields = reader.fieldnames or []
        if text_column not in fields:
            raise BadFile(f"no {text_column!r} column (columns: {fields})")
        for row in reader:
            given = row.get(id_column) if id_column in fields else None
            yield (given, row[text_column] if row[text_column] is not None else _Invalid(
                "row has fewer fields than the header", ""))  # fmt: skip
    except csv.Error as exc:
        raise BadFile(f"CSV parse error: {exc}") from exc


def _jsonl_records(path: Path, text_column: str, id_column: str) -> Iterator[Record]:
    for line in _lines(path):
        if not line.strip():
            yield (None, line)  # rejected as blank below
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield (None, _Invalid(f"invalid JSON: {exc.msg}", line))
            continue
        if not isinstance(obj, dict) or text_column not in obj:
            yield (None, _Invalid(f"no {text_column!r} field", line))
            continue
        yield (obj.get(id_column), obj[text_column])


def _parquet_records(
    path: Path, text_column: str, id_column: str, batch_rows: int
) -> Iterator[Record]:
    try:
        handle = pq.ParquetFile(path)
        names = handle.schema_arrow.names
        if text_column not in names:
            raise BadFile(f"no {text_column!r} column (columns: {names})")
        columns = [text_column] + ([id_column] if id_column in names else [])
        for batch in handle.iter_batches(batch_size=batch_rows, columns=columns):
            texts = batch.column(text_column).to_pylist()
            ids = batch.column(id_column).to_pylist() if id_column in names else [None] * len(texts)
            yield from zip(ids, texts, strict=True)
    except (pa.ArrowException, OSError) as exc:
        raise BadFile(f"unreadable Parquet: {exc}") from exc


@dataclass(frozen=True)
class _Invalid:
    reason: str
    raw: str


class _RowChecker:
    """Row rules across the chunks of one file (duplicate ids span chunks)."""

    def __init__(self, file_name: str, max_text_chars: int) -> None:
        self.file_name, self.max_text_chars = file_name, max_text_chars
        self.seen: set[str] = set()
        self.rows_seen = 0

    def check(self, records: list[Record]) -> Rows:
        numbers: list[int] = []
        ids: list[str] = []
        texts: list[str] = []
        rejected: list[dict[str, object]] = []
        for offset, (given, text) in enumerate(records, start=1):
            number = self.rows_seen + offset
            row_id = str(given) if given not in (None, "") else f"{self.file_name}:{number}"
            reason = None
            if isinstance(text, _Invalid):
                reason, text = text.reason, text.raw
            elif not isinstance(text, str):
                reason, text = f"text is {type(text).__name__}, not a string", repr(text)
            elif not text.strip():
                reason = "empty or blank text"
            elif len(text) > self.max_text_chars:
                reason = f"text has {len(text)} characters, more than {self.max_text_chars}"
            elif row_id in self.seen:
                reason = f"duplicate id {row_id!r}"
            if reason is not None:
                rejected.append(
                    {"row_number": number, "id": row_id, "reason": reason, "text": text}
                )
                continue
            self.seen.add(row_id)
            numbers.append(number)
            ids.append(row_id)
            texts.append(text)
        self.rows_seen += len(records)
        return Rows(numbers, ids, texts, rejected)
