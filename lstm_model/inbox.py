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
import io
import json
import re
import time
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


def read_rows(
    path: Path,
    *,
    text_column: str = "text",
    id_column: str = "id",
    max_text_chars: int = 20_000,
) -> Rows:
    """Read one dropped file into rows to score and rows rejected (with reasons)."""
    if path.is_symlink() or not path.is_file():
        raise BadFile("not a regular file (symbolic links are not followed)")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise BadFile(f"unsupported format {suffix or '(no extension)'}; use one of {FORMATS}")
    if suffix == ".parquet":
        records = _parquet_records(path, text_column, id_column)
    else:
        text = _utf8(path.read_bytes())
        if suffix == ".txt":
            records = [(None, line) for line in _lines(text)]
        elif suffix == ".csv":
            records = _csv_records(text, text_column, id_column)
        else:
            records = _jsonl_records(text, text_column, id_column)
    if not records:
        raise BadFile("the file holds no rows")
    return _check_rows(records, path.name, max_text_chars)


def _utf8(data: bytes) -> str:
    if b"\x00" in data:
        raise BadFile("binary content (NUL bytes): not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadFile(
            f"not valid UTF-8 at byte {exc.start}: {data[exc.start : exc.start + 8]!r}"
        ) from exc


def _lines(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


Record = tuple[object, object]  # (id or None, text or a non-string to reject)


def _csv_records(text: str, text_column: str, id_column: str) -> list[Record]:
    try:
        reader = csv.DictReader(io.StringIO(text.replace("\r\n", "\n"), newline=""))
        fields = reader.fieldnames or []
        if text_column not in fields:
            raise BadFile(f"no {text_column!r} column (columns: {fields})")
        return [(row.get(id_column) if id_column in fields else None, row[text_column])
                for row in reader]  # fmt: skip
    except csv.Error as exc:
        raise BadFile(f"CSV parse error: {exc}") from exc


def _jsonl_records(text: str, text_column: str, id_column: str) -> list[Record]:
    records: list[Record] = []
    for line in _lines(text):
        if not line.strip():
            records.append((None, line))  # rejected as blank below
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append((None, _Invalid(f"invalid JSON: {exc.msg}", line)))
            continue
        if not isinstance(obj, dict) or text_column not in obj:
            records.append((None, _Invalid(f"no {text_column!r} field", line)))
            continue
        records.append((obj.get(id_column), obj[text_column]))
    return records


def _parquet_records(path: Path, text_column: str, id_column: str) -> list[Record]:
    try:
        schema = pq.read_schema(path)
        if text_column not in schema.names:
            raise BadFile(f"no {text_column!r} column (columns: {schema.names})")
        columns = [text_column] + ([id_column] if id_column in schema.names else [])
        table = pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise BadFile(f"unreadable Parquet: {exc}") from exc
    texts = table[text_column].to_pylist()
    ids = table[id_column].to_pylist() if id_column in table.column_names else [None] * len(texts)
    return list(zip(ids, texts, strict=True))


@dataclass(frozen=True)
class _Invalid:
    reason: str
    raw: str


def _check_rows(records: list[Record], file_name: str, max_text_chars: int) -> Rows:
    numbers: list[int] = []
    ids: list[str] = []
    texts: list[str] = []
    rejected: list[dict[str, object]] = []
    seen: set[str] = set()
    for number, (given, text) in enumerate(records, start=1):
        row_id = str(given) if given not in (None, "") else f"{file_name}:{number}"
        reason = None
        if isinstance(text, _Invalid):
            reason, text = text.reason, text.raw
        elif not isinstance(text, str):
            reason, text = f"text is {type(text).__name__}, not a string", repr(text)
        elif not text.strip():
            reason = "empty or blank text"
        elif len(text) > max_text_chars:
            reason = f"text has {len(text)} characters, more than {max_text_chars}"
        elif row_id in seen:
            reason = f"duplicate id {row_id!r}"
        if reason is not None:
            rejected.append({"row_number": number, "id": row_id, "reason": reason, "text": text})
            continue
        seen.add(row_id)
        numbers.append(number)
        ids.append(row_id)
        texts.append(text)
    return Rows(numbers, ids, texts, rejected)
