"""Files users drop (for scoring, or labelled for training): which are ready, how each is
opened and read, what is bad.

A file is *ready* once it has not been modified for ``settle_seconds`` (its size and
mtime are then taken as final); names that start with ``.`` or end in ``.part``, ``.tmp``
or ``.crdownload`` are still being written by convention and never picked up. Writers that
cannot wait may write under such a name and rename when done.

Only regular files are ever opened, and never in a way that can block or follow a link:
``open_regular`` (``artifacts.open_regular``) opens with ``O_RDONLY | O_NONBLOCK |
O_NOFOLLOW`` and refuses the descriptor unless ``fstat`` says it is a regular file; the
caller hashes and reads that same descriptor, so swapping the file between the check and
the open cannot fool it. Every other object in the inbox (a FIFO, socket, device,
directory, or symbolic link, dangling or looping included) is named by ``object_kind``
and quarantined by the caller with ``os.replace``, which moves it without opening it.
Directories are moved too, so that each is reported once rather than on every run.

Reading never guesses: a file that cannot be read as its format says (bad UTF-8, binary
content, a parse error, no text column, no rows) raises ``BadFile`` with the reason, and
the caller quarantines it whole. Rows that are bad inside a good file are rejected apart,
each with a reason. A TXT line ends at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (universal
newlines); a JSONL line at ``\\n`` or ``\\r\\n``.

Memory stays bounded by the chunk size whatever the file holds. The row rules run on
each row as it is read, so a rejected row is dropped at once and only its bounded record
is kept; a chunk ends at ``chunk_rows`` rows or once its rows hold ``chunk_bytes``,
whichever comes first. A line (TXT, JSONL) or a CSV record (which may span lines) longer
than ``max_row_bytes`` is never held whole: it is read in bounded pieces while it is
hashed and checked. Parquet is read in small batches (``_read_plan``), a text or string id
column that the file stores as a dictionary read as one (a value repeated a million times
is decoded once), and a text longer than ``max_text_chars`` is measured and hashed in
Arrow, never made a Python string; a file whose text column is not text, or with a row
group larger than ``max_row_group_bytes`` uncompressed, is refused whole.

A rejected row keeps a bounded record (``Reject``): its row number, id, reason, text cut
to ``reject_text_chars``, the text's length in characters, and ``text_sha256``, always
the sha256 of the row's bytes as read: the line (TXT, JSONL) or the record (CSV) without
its line end, the text cell (Parquet). The archived input keeps the whole row, found by
its row number and that hash, so the archive is the record.

Besides its text and id, a row may carry further ``fields`` that the caller names (a
label, a domain): a string, a number, a boolean or nothing each, where anything else, or
a string longer than ``MAX_ID_CHARS``, rejects the row. A field the caller requires and a
file's header lacks makes the file bad; missing from one JSONL record, it rejects the row.

Names and texts from users are shown through ``printable``: one line of valid UTF-8,
with control characters, lone surrogates and undecodable bytes escaped, so that no file
name can forge a log line or break a file that records it.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import json
import logging
import os
import re
import reprlib
import sys
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import REGULAR as REGULAR
from lstm_model.artifacts import NotRegularFile, atomic_write_json, file_mode, make_dirs, restrict
from lstm_model.artifacts import object_kind as object_kind
from lstm_model.artifacts import open_regular as open_regular_file
from lstm_model.errors import PipelineError

log = logging.getLogger(__name__)

FORMATS = (".txt", ".csv", ".jsonl", ".parquet")
IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".crdownload")
MAX_ID_CHARS = 1000
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_BOM = b"\xef\xbb\xbf"
_SNIFF_BYTES = 8192
_READ_BUFFER = 1 << 20
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_ID_TYPES = (str, int, float, Decimal, date, dt_time, timedelta)
_PARQUET_BATCH_ROWS = 1024
_PARQUET_FALLBACK_ROWS = 256
_PARQUET_SLICE_BYTES = 4 << 20  # text bytes read or made Python strings at a time
_INDEX_BYTES_PER_ROW = 8  # what dictionary-encoded data pages need per row, at most
_PAGE_OVERHEAD_BYTES = 64 << 10
_ROW_OVERHEAD = 200  # bytes a row costs beyond its strings: list slots, its number, a record


class ReadRules(Protocol):
    """The bounds a file is read under (``ScoringConfig`` is one)."""

    @property
    def text_column(self) -> str: ...
    @property
    def id_column(self) -> str: ...
    @property
    def max_row_bytes(self) -> int: ...
    @property
    def max_text_chars(self) -> int: ...
    @property
    def reject_text_chars(self) -> int: ...
    @property
    def chunk_rows(self) -> int: ...
    @property
    def chunk_bytes(self) -> int: ...
    @property
    def max_row_group_bytes(self) -> int: ...


class BadFile(PipelineError):
    """A dropped file that cannot be scored at all; the message says why."""


class NotRegular(BadFile):
    """An inbox entry that is not a regular file: never opened, quarantined as it is."""

    def __init__(self, kind: str) -> None:
        super().__init__(
            f"not a regular file but a {kind}: only regular files are read "
            "(symbolic links are not followed)"
        )
        self.kind = kind


@dataclass(frozen=True)
class Reject:
    """A rejected row, bounded: the whole row stays in the archived input, where
    ``text_sha256`` (of the row's bytes as read) and ``row_number`` find it."""

    row_number: int
    id: str
    reason: str
    text: str
    text_chars: int
    text_sha256: str


@dataclass(frozen=True)
class Rows:
    """The rows of one chunk: accepted ones to score, rejected ones with a reason each.
    ``row_sha256`` holds, per accepted row, the sha256 of the row's bytes where they are
    not its text's UTF-8 (a CSV record, a JSONL line), else None."""

    row_number: list[int]
    ids: list[str]
    texts: list[str]
    rejected: list[Reject]
    row_sha256: list[str | None]
    fields: list[tuple[object, ...]] = field(default_factory=list)
    """Per accepted row, the values of the fields asked for (empty tuples if none)."""

    @property
    def total(self) -> int:
        return len(self.ids) + len(self.rejected)


# ------------------------------------------------------------------ names and objects


def printable(text: str) -> str:
    """``text`` on one line of valid UTF-8: backslashes doubled, ``\\n`` ``\\r`` ``\\t``
    named, other unprintable characters as ``\\uXXXX`` and bytes that were not UTF-8 (the
    surrogate escapes of ``os.fsdecode``) as ``\\xNN``; two different texts never look
    the same."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escaped(c) for c in text)


def _escaped(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that os.fsdecode could not decode
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def display_name(name: str) -> str:
    """The one form of a file name that is logged, reported and stored (see printable)."""
    return printable(name)


def safe_name(name: str, limit: int = 100) -> str:
    """A file name reduced to letters, digits, '.', '_' and '-' (never a path)."""
    cleaned = _SAFE.sub("_", name).strip("._") or "file"
    return cleaned[:limit]


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file; never blocks, never follows a
    link (``artifacts.open_regular``). Raises NotRegular for any other object, BadFile if
    it may not be read."""
    try:
        return open_regular_file(path, _READ_BUFFER)
    except NotRegularFile as exc:
        raise NotRegular(exc.kind) from exc
    except PermissionError as exc:
        raise BadFile(f"cannot be opened: {exc.strerror}") from exc


def sha256_and_rewind(handle: BinaryIO) -> str:
    """Hex sha256 of everything in ``handle``, read in bounded pieces; rewinds it."""
    handle.seek(0)
    digest = hashlib.sha256()
    while piece := handle.read(_READ_BUFFER):
        digest.update(piece)
    handle.seek(0)
    return digest.hexdigest()


def ready_files(inbox: Path, settle_seconds: float, now: float | None = None) -> list[Path]:
    """Entries of ``inbox`` (not below it) that are complete by the settle rule, oldest
    first. Entries that are not regular files are listed too (never followed or opened),
    so that the caller quarantines each once, with its reason."""
    if not inbox.is_dir():
        raise PipelineError(f"inbox {inbox} does not exist or is not a folder")
    now = time.time() if now is None else now
    ready = []
    for path in inbox.iterdir():
        name = path.name
        if name.startswith(".") or name.lower().endswith(IN_PROGRESS_SUFFIXES):
            continue
        try:
            mtime = path.lstat().st_mtime
        except FileNotFoundError:  # moved away since the listing
            continue
        if now - mtime >= settle_seconds:
            ready.append((mtime, name, path))
    return [path for _, _, path in sorted(ready)]


# ----------------------------------------------------------------------- reading rows


def iter_rows(
    handle: BinaryIO,
    suffix: str,
    name: str,
    config: ReadRules,
    fields: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
) -> Iterator[Rows]:
    """Stream one dropped file (opened by ``open_regular``) as chunks of at most
    ``config.chunk_rows`` rows, each ended early once its rows hold ``config.chunk_bytes``;
    every row is checked by the row rules as it is read, so memory stays bounded however
    long the file or its rows. ``name`` is the file's display name (default ids are
    ``<name>:<row number>``). ``fields``: further columns to read per row, of which
    ``required`` must be there. Raises ``BadFile`` as soon as the file proves unreadable;
    the caller must then discard what it made of the earlier chunks."""
    suffix = suffix.lower()
    if suffix not in FORMATS:
        raise BadFile(f"unsupported format {suffix or '(no extension)'}; use one of {FORMATS}")
    columns = _Columns(fields, required)
    records: Iterator[_Record]
    if suffix == ".parquet":
        records = _parquet_records(handle, config, columns)
    elif suffix == ".txt":
        if required:
            raise BadFile(f"a .txt file holds texts only: no {required[0]!r} column")
        lines = _lines(handle, config.max_row_bytes, config.reject_text_chars, universal=True)
        records = (_Record(None, line) for line in lines)
    elif suffix == ".csv":
        records = _csv_records(handle, config, columns)
    else:
        records = _jsonl_records(handle, config, columns)
    checker = _RowChecker(name, config, fields)
    chunk = _Chunk()
    for record in records:
        checker.take(record, chunk)
        if chunk.rows >= config.chunk_rows or chunk.size >= config.chunk_bytes:
            yield chunk.done()
            chunk = _Chunk()
    if not checker.rows_seen:
        raise BadFile("the file holds no rows")
    if chunk.rows:
        yield chunk.done()


@dataclass(frozen=True)
class _Invalid:
    """A row rejected as read: its reason and what is kept of it."""

    reason: str
    head: str  # the row, or only its head where ``chars`` is given
    chars: int | None = None  # of the whole row, where ``head`` is only its head
    sha256: str | None = None  # of the whole row's bytes, where they are not at hand


@dataclass(frozen=True)
class _LongId:
    """A Parquet id too long to make a Python string of: its head and its length."""

    head: str
    chars: int


class _Record(NamedTuple):
    """One row as read: the id (None: none given), the text (a str to check; any other
    value or an ``_Invalid`` is rejected), the row's bytes as read where they are not
    the text's UTF-8 (a CSV record, a JSONL line; a str stands for its UTF-8), and the
    values of the further fields asked for (empty: none given)."""

    id: object
    text: object
    raw: bytes | str | None = None
    fields: tuple[object, ...] = ()


@dataclass(frozen=True)
class _Columns:
    """The further fields a caller reads, and which of them a file must have."""

    names: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    def missing(self, present: list[str]) -> str | None:
        """The first required field not among ``present`` (a header's names)."""
        return next((name for name in self.required if name not in present), None)


def _sha256(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def _decode(raw: bytes, offset: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(offset + exc.start, raw[exc.start : exc.start + 8]) from exc


def _not_utf8(at: int, sample: bytes) -> BadFile:
    return BadFile(f"not valid UTF-8 at byte {at}: {sample!r}")


def _without_line_end(raw: bytes) -> bytes:
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    return raw[:-1] if raw.endswith(b"\r") else raw


def _sniffed(handle: BinaryIO) -> tuple[bytes, int]:
    """The file's first bytes and where its text starts (past a UTF-8 BOM); NUL bytes in
    them make it binary, as file(1) tells binary from text."""
    head = handle.read(_SNIFF_BYTES)
    if b"\x00" in head:
        raise BadFile("binary content (NUL bytes): not a text file")
    return head, len(_BOM) if head.startswith(_BOM) else 0


def _pieces(handle: BinaryIO, limit: int) -> Iterator[tuple[int, bytes]]:
    """(byte offset, bytes) pieces of a text file split at ``\\n``, each at most ``limit``
    bytes; a piece that ends with ``\\n`` ends its line (what CSV records are cut from)."""
    _, offset = _sniffed(handle)
    handle.seek(offset)
    while piece := handle.readline(limit):
        if b"\x00" in piece:
            raise BadFile("binary content (NUL bytes): not a text file")
        yield offset, piece
        offset += len(piece)


def _line_pieces(
    handle: BinaryIO, limit: int, universal: bool
) -> Iterator[tuple[int, bytes, bool]]:
    """(byte offset, bytes, whether the line ends there) of a text file's lines, their line
    ends left out. A line ends at ``\\r\\n``, ``\\n`` or (``universal``) a lone ``\\r``. A
    line longer than ``limit`` bytes comes in pieces of at most ``limit`` bytes, the last
    one marked as its end, so no more than ``limit`` bytes plus one read are ever held."""
    buffer, pos = _sniffed(handle)
    offset, searched, eof = pos, pos, False  # no line end starts in buffer[pos:searched]
    ends = _LineEnds(universal)
    while True:
        found = ends.next(buffer, max(pos, searched), eof)
        if found is None:
            searched = len(buffer) if eof else max(pos, len(buffer) - 1)  # \r\n may follow
        elif found[1] < 0:  # a \r that the next read tells from \r\n
            searched, found = found[0], None
        else:
            searched = found[0]
        if found is not None and found[0] - pos <= limit:
            yield offset, buffer[pos : found[0]], True
            offset += found[1] - pos
            pos = searched = found[1]
            continue
        if searched - pos > limit:  # a line longer than the limit: cut a piece off it
            yield offset, buffer[pos : pos + limit], False
            offset, pos = offset + limit, pos + limit
            continue
        if eof:
            if pos < len(buffer):
                yield offset, buffer[pos:], True
            return
        data = handle.read(_READ_BUFFER)
        if not data:
            eof = True
            continue
        if b"\x00" in data:
            raise BadFile("binary content (NUL bytes): not a text file")
        buffer, searched, pos = buffer[pos:] + data, searched - pos, 0
        ends.forget()


class _LineEnds:
    """Finds line ends with ``bytes.find`` (a regular expression is several times slower
    here), remembering the next ``\\n`` and ``\\r`` so that no byte is scanned twice."""

    def __init__(self, universal: bool) -> None:
        self.universal = universal
        self.forget()

    def forget(self) -> None:
        """The buffer changed: what was found in it is no longer where it was."""
        self.lf = self.cr = -2  # -2: not looked for; -1: none in the rest of the buffer

    def next(self, buffer: bytes, start: int, eof: bool) -> tuple[int, int] | None:
        """(where the next line end starts, where it stops) at or after ``start``; the stop
        is -1 for a ``\\r`` at the end of ``buffer`` before the end of the file."""
        if self.lf == -2 or -1 < self.lf < start:
            self.lf = buffer.find(b"\n", start)
        if not self.universal:
            if self.lf < 0:
                return None
            crlf = self.lf > start and buffer[self.lf - 1] == 13  # \r before the \n
            return (self.lf - 1 if crlf else self.lf), self.lf + 1
        if self.cr == -2 or -1 < self.cr < start:
            self.cr = buffer.find(b"\r", start)
        if self.cr < 0 or -1 < self.lf < self.cr:
            return None if self.lf < 0 else (self.lf, self.lf + 1)
        if self.cr + 1 < len(buffer):
            return self.cr, self.cr + (2 if buffer[self.cr + 1] == 10 else 1)
        return (self.cr, self.cr + 1) if eof else (self.cr, -1)


class _LongRow:
    """A row too long to hold: hashed, checked and counted piece by piece, its head kept."""

    def __init__(self, offset: int, max_row_bytes: int, head_chars: int) -> None:
        self.offset, self.max_row_bytes, self.head_chars = offset, max_row_bytes, head_chars
        self.digest = hashlib.sha256()
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.size = self.chars = 0
        self.head = ""
        self.held = b""  # a trailing \r that may be the start of the line end

    def add(self, data: bytes, line_end_may_follow: bool = True) -> None:
        """Take the next bytes of the row; with ``line_end_may_follow``, a trailing ``\\r``
        is held back until it is known not to start the line end."""
        data = self.held + data
        self.held = b"\r" if line_end_may_follow and data.endswith(b"\r") else b""
        self._take(data[: len(data) - len(self.held)])

    def _take(self, data: bytes, final: bool = False) -> None:
        buffered = len(self.decoder.getstate()[0])
        try:
            text = self.decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise _not_utf8(self.offset + self.size - buffered + exc.start, b"") from exc
        self.digest.update(data)
        self.size += len(data)
        self.chars += len(text)
        if len(self.head) < self.head_chars:
            self.head += text[: self.head_chars - len(self.head)]

    def finish(self) -> _Invalid:
        """The reject of this row; a held ``\\r`` was its line end."""
        self._take(b"", final=True)
        reason = (
            f"row longer than {self.max_row_bytes} bytes ({self.size} bytes from byte offset "
            f"{self.offset}); the whole row is in the archived input"
        )
        return _Invalid(reason, self.head, self.chars, self.digest.hexdigest())


def _lines(
    handle: BinaryIO, max_row_bytes: int, head_chars: int, universal: bool
) -> Iterator[str | _Invalid]:
    """Decoded lines without their ends; an ``_Invalid`` for a line over ``max_row_bytes``."""
    long_row: _LongRow | None = None
    for offset, piece, ends in _line_pieces(handle, max_row_bytes, universal):
        if long_row is None and ends:
            yield _decode(piece, offset)
            continue
        if long_row is None:
            long_row = _LongRow(offset, max_row_bytes, head_chars)
        long_row.add(piece, line_end_may_follow=False)
        if ends:
            yield long_row.finish()
            long_row = None


def _jsonl_records(handle: BinaryIO, config: ReadRules, columns: _Columns) -> Iterator[_Record]:
    text_column, id_column = config.text_column, config.id_column
    lines = _lines(handle, config.max_row_bytes, config.reject_text_chars, universal=False)
    for line in lines:
        if isinstance(line, _Invalid) or not line.strip():
            yield _Record(None, line)  # a blank line is rejected as blank below
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield _Record(None, _Invalid(f"invalid JSON: {exc.msg}", line), line)
            continue
        except ValueError:  # an integer past Python's digit limit
            yield _Record(None, _Invalid("invalid JSON: a number too long to read", line), line)
            continue
        except RecursionError:
            yield _Record(None, _Invalid("invalid JSON: nested too deeply", line), line)
            continue
        if not isinstance(obj, dict) or text_column not in obj:
            yield _Record(None, _Invalid(f"no {text_column!r} field", line), line)
            continue
        absent = columns.missing(list(obj))
        if absent is not None:
            yield _Record(obj.get(id_column), _Invalid(f"no {absent!r} field", line), line)
            continue
        values = tuple(obj.get(name) for name in columns.names)
        yield _Record(obj.get(id_column), obj[text_column], line, values)


# CSV quoting states, as Python's csv module (excel dialect, not strict) moves between them
_FIELD_START, _IN_FIELD, _QUOTED, _QUOTE_IN_QUOTED = range(4)
_FIELD_END = re.compile(rb"[,\r\n]")


def _csv_state(data: bytes, state: int) -> int:
    """The quoting state after ``data``; a record ends at a line end outside quotes."""
    at, end = 0, len(data)
    while at < end:
        if state == _QUOTED:
            at = data.find(b'"', at)
            if at < 0:
                return _QUOTED
            state, at = _QUOTE_IN_QUOTED, at + 1
        elif state == _QUOTE_IN_QUOTED:
            char = data[at : at + 1]
            state = _QUOTED if char == b'"' else _FIELD_START if char in b",\r\n" else _IN_FIELD
            at += 1
        elif state == _FIELD_START and data[at : at + 1] == b'"':
            state, at = _QUOTED, at + 1
        else:  # in an unquoted field a quote is an ordinary character
            match = _FIELD_END.search(data, at)
            if match is None:
                return _IN_FIELD
            state, at = _FIELD_START, match.end()
    return state


def _csv_raw_records(handle: BinaryIO, config: ReadRules) -> Iterator[list[str] | _Invalid]:
    """Each CSV record as its decoded lines (line ends kept), or an ``_Invalid`` for one
    over ``max_row_bytes``: an over-long record is followed to its real end (quotes
    tracked), so the tail of a long quoted field never turns into rows."""
    limit = config.max_row_bytes + 2
    state, lines, size, start = _FIELD_START, [], 0, 0
    long_row: _LongRow | None = None
    for offset, piece in _pieces(handle, limit):
        if not lines and long_row is None:
            start, size = offset, 0
        state = _csv_state(piece, state)
        record_ends = piece.endswith(b"\n") and state != _QUOTED
        if record_ends:
            state = _FIELD_START
        size += len(piece)
        line_end = len(piece) - len(_without_line_end(piece)) if record_ends else 0
        if long_row is None and size - line_end > config.max_row_bytes:
            long_row = _LongRow(start, config.max_row_bytes, config.reject_text_chars)
            for earlier in lines:
                long_row.add(earlier)
            lines = []
        if long_row is not None:
            long_row.add(_without_line_end(piece) if record_ends else piece)
        else:
            lines.append(piece)
        if record_ends:
            yield long_row.finish() if long_row is not None else _decoded(lines, start)
            lines, long_row = [], None
    if long_row is not None:
        yield long_row.finish()
    elif lines:
        yield _decoded(lines, start)


def _decoded(lines: list[bytes], offset: int) -> list[str]:
    decoded = []
    for raw in lines:
        decoded.append(_decode(raw, offset))
        offset += len(raw)
    return decoded


class _Feed:
    """The lines of one record at a time, for a csv reader that outlives each record."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque()

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if not self.lines:
            raise StopIteration
        return self.lines.popleft()


def _parse_csv(reader: Any, limit: int) -> list[str]:
    """The next record's fields. Records are bounded by max_row_bytes before they reach
    the csv module, whose own field limit (131072 characters by default) must never be
    what rejects one: it is raised for this call alone, as it is the whole process's."""
    previous = csv.field_size_limit(max(limit, csv.field_size_limit()))
    try:
        return next(reader, [])
    finally:
        csv.field_size_limit(previous)


def _csv_records(handle: BinaryIO, config: ReadRules, columns: _Columns) -> Iterator[_Record]:
    feed = _Feed()
    reader = csv.reader(feed)
    fields: list[str] | None = None
    for record in _csv_raw_records(handle, config):
        if isinstance(record, _Invalid):
            if fields is None:
                raise BadFile(f"the header row is longer than {config.max_row_bytes} bytes")
            yield _Record(None, record)
            continue
        feed.lines.clear()
        feed.lines.extend(record)
        raw = "".join(record)
        raw = raw[:-1] if raw.endswith("\n") else raw
        raw = raw[:-1] if raw.endswith("\r") else raw
        try:
            row = _parse_csv(reader, config.max_row_bytes)
        except csv.Error as exc:
            if fields is None:
                raise BadFile(f"CSV parse error in the header: {exc}") from exc
            yield _Record(None, _Invalid(f"malformed CSV record: {exc}", raw), raw)
            continue
        if not row:  # a blank line: not a row, as csv.DictReader has it
            continue
        if fields is None:
            fields = row
            if config.text_column not in fields:
                raise BadFile(f"no {config.text_column!r} column (columns: {_shown(fields, 200)})")
            text_at = len(fields) - 1 - fields[::-1].index(config.text_column)
            absent = columns.missing(fields)
            if absent is not None:
                raise BadFile(f"no {absent!r} column (columns: {_shown(fields, 200)})")
            id_at, *field_at = (
                len(fields) - 1 - fields[::-1].index(name) if name in fields else None
                for name in (config.id_column, *columns.names)
            )
            continue
        given = row[id_at] if id_at is not None and id_at < len(row) else None
        values = tuple(row[at] if at is not None and at < len(row) else None for at in field_at)
        if text_at < len(row):
            yield _Record(given, row[text_at], raw, values)
        else:
            yield _Record(given, _Invalid("row has fewer fields than the header", raw), raw)


def _is_text_type(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _is_scalar_id_type(kind: pa.DataType) -> bool:
    """Types whose values are small and fixed in size, and that ``_row_id`` takes."""
    checks = (
        pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_date,
        pa.types.is_time, pa.types.is_timestamp, pa.types.is_duration, pa.types.is_null,
    )  # fmt: skip
    return any(check(kind) for check in checks)


@dataclass(frozen=True)
class _BadIdType:
    """A Parquet id column of a type no id is taken from (never read)."""

    kind: str


def _parquet_records(handle: BinaryIO, config: ReadRules, wanted: _Columns) -> Iterator[_Record]:
    """Rows of a Parquet file, read a few hundred at a time (see the module docstring)."""
    text_column, id_column = config.text_column, config.id_column
    try:
        parquet = pq.ParquetFile(handle)
        schema, metadata = parquet.schema_arrow, parquet.metadata
        if text_column not in schema.names:
            raise BadFile(f"no {text_column!r} column (columns: {_shown(schema.names, 200)})")
        text_type = schema.field(text_column).type
        if not _is_text_type(text_type):
            shown = _shown(str(text_type), 200)
            raise BadFile(f"the {text_column!r} column holds {shown}, not text")
        columns, strings, bad_id = [text_column], [text_column], None
        if id_column in schema.names:
            id_type = schema.field(id_column).type
            if _is_text_type(id_type):
                columns.append(id_column)
                strings.append(id_column)
            elif _is_scalar_id_type(id_type):
                columns.append(id_column)
            else:  # never read: a nested or binary value may be huge however small the file
                bad_id = _BadIdType(_shown(str(id_type), 100))
        absent = wanted.missing(schema.names)
        if absent is not None:
            raise BadFile(f"no {absent!r} column (columns: {_shown(schema.names, 200)})")
        first_field = len(columns)
        # a field's column: read (its index among the columns read), or why it is not
        field_plan: list[int | _BadIdType | None] = []
        for name in wanted.names:
            if name not in schema.names:
                field_plan.append(None)
                continue
            kind = schema.field(name).type
            if _is_text_type(kind) or _is_scalar_id_type(kind) or pa.types.is_boolean(kind):
                field_plan.append(len(columns))
                columns.append(name)
                if _is_text_type(kind):
                    strings.append(name)
            else:
                field_plan.append(_BadIdType(_shown(str(kind), 100)))
        _check_row_group_sizes(metadata, columns, config.max_row_group_bytes)
        readers = {
            as_dictionary: pq.ParquetFile(
                handle,
                metadata=metadata,
                buffer_size=_READ_BUFFER,
                read_dictionary=strings if as_dictionary else None,
            )
            for as_dictionary in (False, True)
        }
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            plans = [_read_plan(row_group, name, name in strings) for name in columns]
            batch_rows = min(config.chunk_rows, *(rows for _, rows in plans))
            streams = [
                readers[as_dictionary].iter_batches(
                    batch_size=batch_rows, row_groups=[group], columns=[name], use_threads=False
                )
                for name, (as_dictionary, _) in zip(columns, plans, strict=True)
            ]
            for batches in zip(*streams, strict=True):
                ids = batches[1].column(0) if first_field > 1 else None
                plan = [batches[at].column(0) if isinstance(at, int) else at for at in field_plan]
                yield from _batch_records(batches[0].column(0), ids, config, bad_id, plan)
    except (pa.ArrowException, OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise BadFile(f"unreadable Parquet: {_shown(str(exc), 500)}") from exc


def _column_chunks(row_group: Any, name: str) -> list[Any]:
    """The chunks of column ``name`` in a row group (one: only flat columns are read)."""
    chunks = (row_group.column(at) for at in range(row_group.num_columns))
    return [chunk for chunk in chunks if chunk.path_in_schema == name]


def _check_row_group_sizes(metadata: Any, columns: list[str], limit: int) -> None:
    """BadFile for a row group whose ``columns`` hold more than ``limit`` bytes uncompressed."""
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        size = sum(c.total_uncompressed_size for n in columns for c in _column_chunks(row_group, n))
        if size > limit:
            raise BadFile(
                f"row group {group} holds {size} bytes uncompressed in the columns read, more "
                f"than max_row_group_bytes ({limit}): write the file with smaller row groups"
            )


def _read_plan(row_group: Any, name: str, is_string: bool) -> tuple[bool, int]:
    """How to read one column of a row group: whether as a dictionary, and how many rows
    at a time. A string column whose data pages hold only dictionary indices is read as
    the dictionary it is: a value that a million rows repeat is decoded once. Any other
    column is read plainly, in batches of about ``_PARQUET_SLICE_BYTES`` (its size per row
    is what its pages say); fewer when plain pages follow a dictionary, whose values may
    each be as long as the dictionary page. (Read as a dictionary, plain pages would be
    gathered into one growing dictionary per row group: slow, and as large as the group.)"""
    rows = max(1, row_group.num_rows)
    (chunk,) = _column_chunks(row_group, name)
    per_row = max(1, chunk.total_uncompressed_size // rows)
    batch_rows = max(1, min(_PARQUET_BATCH_ROWS, _PARQUET_SLICE_BYTES // per_row))
    if not (is_string and chunk.has_dictionary_page and chunk.dictionary_page_offset):
        return False, batch_rows
    dictionary_bytes = chunk.data_page_offset - chunk.dictionary_page_offset
    data_bytes = chunk.total_compressed_size - dictionary_bytes
    if data_bytes <= _INDEX_BYTES_PER_ROW * rows + _PAGE_OVERHEAD_BYTES:
        return True, _PARQUET_BATCH_ROWS
    return False, min(batch_rows, _PARQUET_FALLBACK_ROWS)


class _ParquetStrings:
    """One batch of a string column, measured before any value is made a Python string:
    a value longer than ``limit`` characters never is. Read as a dictionary, only the
    values the batch uses are looked at (their byte lengths read from the offsets: the
    dictionary is shared by a row group's batches and may be long), and each is made a
    string once, however many rows repeat it. Values are never ``take``n: that reserves
    the dictionary's mean value length for every row taken."""

    def __init__(self, column: Any, limit: int) -> None:
        self.too_long: dict[int, int] = {}  # value index -> characters, for values too long
        self.dictionary = pa.types.is_dictionary(column.type)
        if self.dictionary:
            self.values = column.dictionary
            indices = pc.fill_null(column.indices, -1).to_numpy(zero_copy_only=False)
            used = np.unique(indices[indices >= 0]).astype("int64")
            sizes = _value_bytes(self.values, used)
            for index in used[sizes > limit].tolist():  # no more characters than bytes
                chars = pc.utf8_length(self.values.slice(index, 1))[0].as_py()
                if chars > limit:
                    self.too_long[index] = chars
            size_of = dict(zip(used.tolist(), sizes.tolist(), strict=True))
            self.rows: list[int] = indices.tolist()  # -1 for a null
            row_bytes = [size_of.get(index, 0) for index in self.rows]
        else:
            self.values = column
            self.rows = list(range(len(column)))
            row_bytes = pc.fill_null(pc.binary_length(column), 0).to_pylist()
            chars = pc.utf8_length(column)
            too_long = pc.indices_nonzero(pc.fill_null(pc.greater(chars, limit), False))
            self.too_long = {i: chars[i].as_py() for i in too_long.to_pylist()}
        pairs = zip(self.rows, row_bytes, strict=True)
        self.row_bytes = [0 if i in self.too_long else n for i, n in pairs]

    def strings(self, start: int, stop: int) -> list[object]:
        """Rows ``start`` to ``stop``: a str, None for a null, an ``(index, chars)`` pair
        for a value that is too long (``index`` into ``values``)."""
        rows = self.rows[start:stop]
        if not self.dictionary and not any(i in self.too_long for i in rows):
            return self.values[start:stop].to_pylist()
        out: list[object] = []
        made: dict[int, object] = {}
        for index in rows:
            if index < 0:
                out.append(None)
            elif index in self.too_long:
                out.append((index, self.too_long[index]))
            else:
                if index not in made:
                    made[index] = self.values[index].as_py()
                out.append(made[index])
        return out

    def head(self, index: int, chars: int) -> str:
        return pc.utf8_slice_codeunits(self.values[index : index + 1], 0, chars)[0].as_py()

    def sha256(self, index: int) -> str:
        return hashlib.sha256(self.values[index].as_buffer()).hexdigest()


def _batch_records(
    texts_column: Any,
    ids_column: Any,
    config: ReadRules,
    bad_id: _BadIdType | None,
    field_columns: list[Any] = [],  # noqa: B006 - never changed
) -> Iterator[_Record]:
    """The records of one Parquet batch, made Python objects a bounded slice at a time.
    ``field_columns``: per further field, its column in the batch, or a ``_BadIdType``
    (a column of a type never read) or None (no such column)."""
    texts = _ParquetStrings(texts_column, config.max_text_chars)
    ids_of = _ScalarColumn(ids_column, bad_id)
    fields_of = [
        _ScalarColumn(None, column) if not _is_column(column) else _ScalarColumn(column, None)
        for column in field_columns
    ]
    start = 0
    for stop in _slice_ends(texts.row_bytes, _PARQUET_SLICE_BYTES):
        ids = ids_of.values(start, stop)
        values = list(zip(*(f.values(start, stop) for f in fields_of), strict=True))
        values = values or [()] * (stop - start)
        rows = zip(ids, texts.strings(start, stop), values, strict=True)
        for given, text, extra in rows:
            if isinstance(text, tuple):
                index, chars = text
                reason = f"text has {chars} characters, more than {config.max_text_chars}"
                head = texts.head(index, config.reject_text_chars)
                text = _Invalid(reason, head, chars, texts.sha256(index))
            yield _Record(given, text, b"" if text is None else None, extra)
        start = stop


def _is_column(value: object) -> bool:
    return value is not None and not isinstance(value, _BadIdType)


class _ScalarColumn:
    """An id or field column of a Parquet batch, made Python values a slice at a time:
    a string longer than ``MAX_ID_CHARS`` only as a ``_LongId``; with no column, the
    stand-in (None, or why the column is not read) for every row."""

    def __init__(self, column: Any, stand_in: _BadIdType | None) -> None:
        self.column, self.stand_in, self.strings = column, stand_in, None
        if column is not None and _is_text_type(column.type):
            self.strings = _ParquetStrings(column, MAX_ID_CHARS)

    def values(self, start: int, stop: int) -> list[object]:
        if self.strings is not None:
            return [_LongId(self.strings.head(v[0], MAX_ID_CHARS), v[1]) if isinstance(v, tuple)
                    else v for v in self.strings.strings(start, stop)]  # fmt: skip
        if self.column is not None:
            return self.column[start:stop].to_pylist()
        return [self.stand_in] * (stop - start)


def _slice_ends(sizes: list[int], budget: int) -> list[int]:
    """Where to cut rows of these byte sizes so that each slice holds about ``budget``."""
    ends, total = [], 0
    for row, size in enumerate(sizes):
        total += size
        if total >= budget:
            ends.append(row + 1)
            total = 0
    if not ends or ends[-1] != len(sizes):
        ends.append(len(sizes))
    return ends


def _value_bytes(values: Any, at: Any) -> Any:
    """Byte lengths of ``values[at]`` (a numpy array of indices), read from the offsets:
    no value is copied, however long."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.large_string())
    width = "int64" if pa.types.is_large_string(values.type) else "int32"
    offsets = np.frombuffer(values.buffers()[1], dtype=width)[values.offset :]
    return (offsets[at + 1] - offsets[at]).astype("int64")


# ------------------------------------------------------------------------ row rules

_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 3, MAX_ID_CHARS, MAX_ID_CHARS
_SHOW.maxlist = _SHOW.maxdict = _SHOW.maxtuple = _SHOW.maxset = 20


def _shown(value: object, limit: int) -> str:
    """A bounded, printable form of any value read from a file (what rejects keep)."""
    if isinstance(value, str):
        return encodable(value[:limit])
    if isinstance(value, int) and value.bit_length() > 3 * limit:
        return f"<an integer of {value.bit_length()} bits>"
    try:
        return encodable(_SHOW.repr(value)[:limit])
    except (ValueError, RecursionError):  # integers past the digit limit, deep nesting
        return f"<a {type(value).__name__} that cannot be shown>"


def encodable(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udXXX``: valid UTF-8 to store."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds its first lone surrogate (not valid Unicode), or None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def reject(
    number: int,
    row_id: str,
    reason: str,
    text: object,
    keep_chars: int,
    row_sha256: str | None = None,
) -> Reject:
    """The bounded record of a rejected row (see the module docstring). ``row_sha256``:
    of the row's bytes as read, where they are not the text's UTF-8."""
    if isinstance(text, _Invalid):
        kept, chars, sha = text.head, text.chars, text.sha256
    else:
        kept, chars, sha = text if isinstance(text, str) else _shown(text, keep_chars), None, None
    if chars is None:
        chars = len(kept)
    sha = sha or row_sha256 or _sha256(text if isinstance(text, str) else b"")
    return Reject(number, row_id, reason, encodable(kept[:keep_chars]), chars, sha)


def _row_id(given: object, default: str) -> tuple[str, str | None]:
    """The id a row is scored under, or a bounded form of it and why it is refused."""
    if given is None or given == "":
        return default, None
    if isinstance(given, _LongId):
        return encodable(given.head), f"id has more than {MAX_ID_CHARS} characters"
    if isinstance(given, _BadIdType):
        return default, f"id is a {given.kind}, not a string or a number"
    if isinstance(given, bool) or not isinstance(given, _ID_TYPES):
        kind = type(given).__name__
        return _shown(given, MAX_ID_CHARS), f"id is a {kind}, not a string or a number"
    if isinstance(given, int) and given.bit_length() > 3 * MAX_ID_CHARS:
        return _shown(given, MAX_ID_CHARS), f"id has more than {MAX_ID_CHARS} characters"
    text = given if isinstance(given, str) else str(given)
    if len(text) > MAX_ID_CHARS:
        return _shown(text, MAX_ID_CHARS), f"id has more than {MAX_ID_CHARS} characters"
    at = lone_surrogate(text)
    if at is not None:
        return _shown(
            text, MAX_ID_CHARS
        ), f"id is not valid Unicode: lone surrogate at character {at}"
    return text, None


class _Chunk:
    """The rows of the chunk being read, and what they hold in memory (bytes)."""

    def __init__(self) -> None:
        self.numbers: list[int] = []
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.rejected: list[Reject] = []
        self.row_sha256: list[str | None] = []
        self.fields: list[tuple[object, ...]] = []
        self.size = 0

    @property
    def rows(self) -> int:
        return len(self.ids) + len(self.rejected)

    def accept(
        self,
        number: int,
        row_id: str,
        text: str,
        row_sha256: str | None,
        fields: tuple[object, ...] = (),
    ) -> None:
        self.numbers.append(number)
        self.ids.append(row_id)
        self.texts.append(text)
        self.row_sha256.append(row_sha256)
        self.fields.append(fields)
        self.size += sys.getsizeof(text) + sys.getsizeof(row_id) + _ROW_OVERHEAD
        self.size += sum(sys.getsizeof(value) for value in fields)
        if row_sha256 is not None:
            self.size += sys.getsizeof(row_sha256)

    def add_reject(self, rejected: Reject) -> None:
        self.rejected.append(rejected)
        strings = (rejected.id, rejected.reason, rejected.text, rejected.text_sha256)
        self.size += sum(sys.getsizeof(s) for s in strings) + _ROW_OVERHEAD

    def done(self) -> Rows:
        return Rows(self.numbers, self.ids, self.texts, self.rejected, self.row_sha256, self.fields)


class _RowChecker:
    """Row rules, applied to each row as it is read, across the chunks of one file
    (duplicate ids span chunks: a 16-byte digest of each id accepted is kept)."""

    def __init__(self, file_name: str, config: ReadRules, fields: tuple[str, ...] = ()) -> None:
        self.file_name = file_name
        self.fields = fields
        self.max_text_chars, self.keep_chars = config.max_text_chars, config.reject_text_chars
        self.seen: set[bytes] = set()
        self.rows_seen = 0

    def take(self, record: _Record, chunk: _Chunk) -> None:
        """Check one row and add it to ``chunk``: accepted, or only its bounded reject."""
        self.rows_seen += 1
        number, text = self.rows_seen, record.text
        row_id, reason = _row_id(record.id, f"{self.file_name}:{number}")
        reason = self._text_problem(text) or reason
        values = record.fields or (None,) * len(self.fields)
        problems = (_field_problem(f, v) for f, v in zip(self.fields, values, strict=True))
        reason = reason or next(filter(None, problems), None)
        key = b""
        if reason is None:
            key = hashlib.blake2b(row_id.encode("utf-8"), digest_size=16).digest()
            if key in self.seen:
                reason = f"duplicate id {row_id!r}"
        row_sha256 = None if record.raw is None else _sha256(record.raw)
        if reason is not None:
            chunk.add_reject(reject(number, row_id, reason, text, self.keep_chars, row_sha256))
            return
        assert isinstance(text, str)  # _text_problem refuses every other type
        self.seen.add(key)
        chunk.accept(number, row_id, text, row_sha256, values)

    def _text_problem(self, text: object) -> str | None:
        if isinstance(text, _Invalid):
            return text.reason
        if not isinstance(text, str):
            return f"text is {type(text).__name__}, not a string"
        if not text.strip():
            return "empty or blank text"
        if len(text) > self.max_text_chars:
            return f"text has {len(text)} characters, more than {self.max_text_chars}"
        at = lone_surrogate(text)
        if at is not None:
            return f"not valid Unicode: lone surrogate at character {at}"
        return None


_FIELD_TYPES = (str, int, float, bool, type(None))


def _field_problem(name: str, value: object) -> str | None:
    """Why a further field's value is refused (the caller judges what it means)."""
    if isinstance(value, _Invalid):
        return value.reason
    if isinstance(value, _LongId):
        return f"{name!r} has more than {MAX_ID_CHARS} characters"
    if isinstance(value, _BadIdType):
        return f"{name!r} is a {value.kind}, not a string, a number or a boolean"
    if not isinstance(value, _FIELD_TYPES):
        return f"{name!r} is a {type(value).__name__}, not a string, a number or a boolean"
    if isinstance(value, str) and len(value) > MAX_ID_CHARS:
        return f"{name!r} has more than {MAX_ID_CHARS} characters"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"{name!r} holds an integer of more than 64 bits"
    if isinstance(value, str) and lone_surrogate(value) is not None:
        return f"{name!r} is not valid Unicode"
    return None


# ------------------------------------------------------------- moving what was read


class DropFolders(BaseModel):
    """The folders of an inbox, all below ``root``: ``inbox/`` (users drop files there),
    ``rejects/`` (bad rows of good files), ``quarantine/`` (whole bad files, each with a
    JSON sidecar) and ``archive/`` (inputs once done). The inbox keeps the mode its users'
    umask gives it; every folder the pipeline writes is owner-only (``artifacts.dir_mode``)."""

    model_config = ConfigDict(frozen=True)

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    def written(self) -> tuple[Path, ...]:
        """The folders the pipeline writes."""
        return (self.rejects, self.quarantine, self.archive)

    def create(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        for folder in self.written():
            make_dirs(folder)


Identity = tuple[int, int, int, int]
"""(st_dev, st_ino, st_size, st_mtime_ns) of an inbox entry: what was read, as opposed to
whatever holds its name later."""


def identity(info: os.stat_result) -> Identity:
    """The ``Identity`` an ``fstat`` or ``lstat`` gives."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


class Dropped(BaseModel):
    """One inbox entry being handled: its path, display name (``inbox.display_name``), what
    it is, and its sha256: of its bytes for a regular file; for another object, of its link
    target or its identity, as it is never read. ``identity`` is that of the entry hashed
    (from ``fstat`` of the descriptor read, or ``lstat`` of an object never opened): an
    entry is archived or quarantined only while its path still holds that same entry."""

    model_config = ConfigDict(frozen=True)

    path: Path
    name: str
    sha256: str
    kind: str = REGULAR
    identity: Identity | None = None


def move_entry(entry: Dropped, target: Path) -> bool:
    """Move ``entry`` to ``target`` if its path still holds the entry that was read (its
    identity); False, leaving the path alone, if another entry took the name since.
    Raises FileNotFoundError if nothing is there."""
    if entry.identity is not None and identity(os.lstat(entry.path)) != entry.identity:
        return False
    os.replace(entry.path, target)
    if entry.identity is None or identity(os.lstat(target)) == entry.identity:
        return True
    _put_back(target, entry.path)  # swapped in the instant between the check and the move
    return False


def _put_back(moved: Path, path: Path) -> None:
    """Return an entry moved by mistake to the inbox, never over one that took its name."""
    renamed = path.with_name(f"{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}")
    for name in (path, renamed):
        try:
            os.link(moved, name, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError:  # a directory cannot be linked: renamed onto a name seen free
            if os.path.lexists(name):
                continue
            os.rename(moved, name)
            return
        os.unlink(moved)
        return
    log.error("%s: moved by mistake and left at %s", display_name(path.name), moved)


def restrict_moved(path: Path) -> None:
    try:
        restrict(path)
    except OSError as exc:  # not ours: its folder (owner-only) still guards it
        log.warning("%s: mode left as it was: %s", display_name(path.name), printable(str(exc)))


def archive_entry(entry: Dropped, folder: Path) -> None:
    """Move a file that was read whole into ``folder`` (``<sha>-<safe name>``), if its path
    still holds what was read; a file replaced under its name since is left for the next
    run. Raises OSError, but for a file removed by hand meanwhile."""
    target = folder / f"{entry.sha256[:12]}-{safe_name(entry.path.name)}"
    try:
        moved = move_entry(entry, target)
    except FileNotFoundError:  # removed by hand once read: what it held is accounted for
        log.info("%s: no longer in the inbox to archive", entry.name)
        return
    if not moved:
        log.warning(
            "%s: replaced in the inbox while it was read: the new file is left for the next "
            "run (the version read is not archived)",
            entry.name,
        )
        return
    restrict_moved(target)


def _quarantine_target(entry: Dropped, folder: Path) -> Path:
    """A name in quarantine/ that no other entry holds, reserved by creating its sidecar:
    two entries of the same content whose names reduce to the same safe name (or the same
    file dropped twice) each keep their own sidecar and reason."""
    safe, number = safe_name(entry.path.name), 1
    while True:
        name = f"{entry.sha256[:12]}{f'.{number}' if number > 1 else ''}-{safe}"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            os.close(os.open(folder / f"{name}.json", flags, file_mode()))
        except FileExistsError:
            number += 1
            continue
        return folder / name


def quarantine_entry(entry: Dropped, reason: str, folder: Path) -> Path | None:
    """Move a bad file or a non-regular object into ``folder`` (``os.replace``, which never
    opens it) beside a JSON sidecar that says what it is and what is wrong: where it went,
    or None (nothing moved) if another entry took its name since it was read. Raises
    OSError if it could not be moved; the sidecar is then removed again."""
    target = _quarantine_target(entry, folder)
    sidecar = target.with_name(target.name + ".json")
    try:
        atomic_write_json(
            sidecar,
            {
                "source_file": entry.name,
                "sha256": entry.sha256,
                "kind": entry.kind,
                "reason": reason,
                "quarantined_at": datetime.now(UTC).isoformat(),
            },
        )
        moved = move_entry(entry, target)
    except OSError:
        sidecar.unlink(missing_ok=True)
        raise
    if not moved:
        sidecar.unlink(missing_ok=True)
        return None
    restrict_moved(target)
    return target


class Refused(Exception):
    """An inbox entry that may not be read (not a regular file, or not ours to open): the
    caller quarantines ``entry`` as it is, with ``reason``."""

    def __init__(self, entry: Dropped, reason: str) -> None:
        super().__init__(reason)
        self.entry, self.reason = entry, reason


def open_drop(path: Path) -> tuple[Dropped, BinaryIO, os.stat_result]:
    """``path`` opened and hashed if it is a regular file that may be read: the entry, its
    open handle (rewound) and its ``fstat``. Raises FileNotFoundError if it is gone,
    ``Refused`` for an entry never to be opened, any other OSError as it comes."""
    name = display_name(path.name)
    try:
        kind = object_kind(os.lstat(path).st_mode)
        if kind != REGULAR:
            raise NotRegular(kind)
        handle = open_regular(path)
    except BadFile as exc:
        kind = exc.kind if isinstance(exc, NotRegular) else REGULAR
        try:
            seen: Identity | None = identity(os.lstat(path))
        except FileNotFoundError:
            raise
        except OSError:
            seen = None
        entry = Dropped(
            path=path, name=name, sha256=_identity_sha256(path, kind), kind=kind, identity=seen
        )
        raise Refused(entry, str(exc)) from exc
    try:
        info = os.fstat(handle.fileno())
        sha = sha256_and_rewind(handle)
    except OSError:
        handle.close()
        raise
    return Dropped(path=path, name=name, sha256=sha, identity=identity(info)), handle, info


def _identity_sha256(path: Path, kind: str) -> str:
    """What names an entry that is not read: a link's target, else the object itself."""
    digest = hashlib.sha256(f"{kind}\0".encode())
    with suppress(OSError):
        if kind == "symbolic link":
            digest.update(os.readlink(os.fsencode(path)))
        else:
            info = os.lstat(path)
            digest.update(f"{info.st_dev}:{info.st_ino}:{info.st_mtime_ns}".encode())
    digest.update(b"\0" + os.fsencode(path.name))
    return digest.hexdigest()


REJECTS_SCHEMA = pa.schema(
    [
        pa.field("row_number", pa.int64()),
        pa.field("id", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("text", pa.string()),
        pa.field("text_chars", pa.int64()),
        pa.field("text_sha256", pa.string()),
        pa.field("source_file", pa.string()),
        pa.field("source_sha256", pa.string()),
    ]
)


def rejects_table(rejected: list[Reject], entry: Dropped) -> pa.Table:
    """Rejected rows as a table of ``REJECTS_SCHEMA``."""
    columns: dict[str, list[Any]] = {
        f.name: [getattr(r, f.name) for r in rejected] for f in dataclasses.fields(Reject)
    }
    columns["source_file"] = [entry.name] * len(rejected)
    columns["source_sha256"] = [entry.sha256] * len(rejected)
    return pa.table(columns, schema=REJECTS_SCHEMA)
