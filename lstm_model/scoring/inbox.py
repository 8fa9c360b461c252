"""Files users drop for scoring: which are ready, how each is opened and read, what is bad.

A file is *ready* once it has not been modified for ``settle_seconds`` (its size and
mtime are then taken as final); names that start with ``.`` or end in ``.part``, ``.tmp``
or ``.crdownload`` are still being written by convention and never picked up. Writers that
cannot wait may write under such a name and rename when done.

Only regular files are ever opened, and never in a way that can block or follow a link:
``open_regular`` opens with ``O_RDONLY | O_NONBLOCK | O_NOFOLLOW`` and refuses the
descriptor unless ``fstat`` says it is a regular file; the caller hashes and reads that
same descriptor, so swapping the file between the check and the open cannot fool it.
Every other object in the inbox (a FIFO, socket, device, directory, or symbolic link,
dangling or looping included) is named by ``object_kind`` and quarantined by the caller
with ``os.replace``, which moves it without opening it. Directories are moved too, so
that each is reported once rather than on every run.

Reading never guesses: a file that cannot be read as its format says (bad UTF-8, binary
content, a parse error, no text column, no rows) raises ``BadFile`` with the reason, and
the caller quarantines it whole. Rows that are bad inside a good file are rejected apart,
each with a reason.

Memory stays bounded by the chunk size whatever the file holds: a line (TXT, JSONL) or a
CSV record (which may span lines) longer than ``max_row_bytes`` is never held whole; it
is read in bounded pieces while it is hashed and checked, and rejected with its row
number, its byte offset and the sha256 of its bytes. A rejected row keeps a bounded record
(its row number, id, reason, text cut to ``reject_text_chars``, the text's length in
characters and its sha256): the archived input keeps the whole row, so the archive is
the record.

Names and texts from users are shown through ``printable``: one line of valid UTF-8,
with control characters, lone surrogates and undecodable bytes escaped, so that no file
name can forge a log line or break a file that records it.
"""

from __future__ import annotations

import codecs
import csv
import errno
import hashlib
import json
import os
import re
import reprlib
import stat
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from datetime import time as dt_time
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from lstm_model.errors import PipelineError
from lstm_model.scoring.config import ScoringConfig

FORMATS = (".txt", ".csv", ".jsonl", ".parquet")
IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".crdownload")
REGULAR = "regular file"
MAX_ID_CHARS = 1000
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_BOM = b"\xef\xbb\xbf"
_SNIFF_BYTES = 8192
_READ_BUFFER = 1 << 20
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_ID_TYPES = (str, int, float, Decimal, date, dt_time, timedelta)


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
    """A rejected row, bounded: the whole row stays in the archived input."""

    row_number: int
    id: str
    reason: str
    text: str
    text_chars: int
    text_sha256: str


@dataclass(frozen=True)
class Rows:
    """The rows of one chunk: accepted ones to score, rejected ones with a reason each."""

    row_number: list[int]
    ids: list[str]
    texts: list[str]
    rejected: list[Reject]

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


def object_kind(mode: int) -> str:
    """What an ``lstat``/``fstat`` mode says an inbox entry is, in words."""
    kinds = (
        (stat.S_ISREG, REGULAR),
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    )
    return next((kind for test, kind in kinds if test(mode)), "file of an unknown type")


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file; never blocks, never follows a
    link. Raises NotRegular for any other object, BadFile if it may not be read."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # what O_NOFOLLOW answers for a link
            raise NotRegular("symbolic link") from exc
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):  # sockets, devices
            raise NotRegular(object_kind(os.lstat(path).st_mode)) from exc
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise BadFile(f"cannot be opened: {exc.strerror}") from exc
        raise
    try:
        kind = object_kind(os.fstat(fd).st_mode)
        if kind != REGULAR:
            raise NotRegular(kind)
        return os.fdopen(fd, "rb", buffering=_READ_BUFFER)
    except BaseException:
        os.close(fd)
        raise


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


def iter_rows(handle: BinaryIO, suffix: str, name: str, config: ScoringConfig) -> Iterator[Rows]:
    """Stream one dropped file (opened by ``open_regular``) as chunks of at most
    ``config.chunk_rows`` rows; memory stays bounded however long the file or its rows.
    ``name`` is the file's display name (default ids are ``<name>:<row number>``).
    Raises ``BadFile`` as soon as the file proves unreadable; the caller must then
    discard what it made of the earlier chunks."""
    suffix = suffix.lower()
    if suffix not in FORMATS:
        raise BadFile(f"unsupported format {suffix or '(no extension)'}; use one of {FORMATS}")
    records: Iterator[Record]
    if suffix == ".parquet":
        records = _parquet_records(handle, config)
    elif suffix == ".txt":
        lines = _lines(handle, config.max_row_bytes, config.reject_text_chars)
        records = ((None, line) for line in lines)
    elif suffix == ".csv":
        records = _csv_records(handle, config)
    else:
        records = _jsonl_records(handle, config)
    checker = _RowChecker(name, config)
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == config.chunk_rows:
            yield checker.check(chunk)
            chunk = []
    if chunk or not checker.rows_seen:
        if not chunk:
            raise BadFile("the file holds no rows")
        yield checker.check(chunk)


@dataclass(frozen=True)
class _Invalid:
    """A row rejected as read: its reason and what is kept of it."""

    reason: str
    raw: str
    chars: int | None = None  # of the whole row, where ``raw`` is only its head
    sha256: str | None = None  # of the whole row's bytes, likewise


Record = tuple[object, object]  # (id or None, text, or a non-string or _Invalid to reject)


def _pieces(handle: BinaryIO, limit: int) -> Iterator[tuple[int, bytes]]:
    """(byte offset, bytes) pieces of a text file, each at most ``limit`` bytes; a piece
    that ends with ``\\n`` ends its line. Drops the UTF-8 BOM; NUL bytes make it binary."""
    head = handle.read(_SNIFF_BYTES)
    if b"\x00" in head:  # how file(1) tells binary from text
        raise BadFile("binary content (NUL bytes): not a text file")
    offset = len(_BOM) if head.startswith(_BOM) else 0
    handle.seek(offset)
    while piece := handle.readline(limit):
        if b"\x00" in piece:
            raise BadFile("binary content (NUL bytes): not a text file")
        yield offset, piece
        offset += len(piece)


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


class _LongRow:
    """A row too long to hold: hashed, checked and counted piece by piece, its head kept."""

    def __init__(self, offset: int, max_row_bytes: int, head_chars: int) -> None:
        self.offset, self.max_row_bytes, self.head_chars = offset, max_row_bytes, head_chars
        self.digest = hashlib.sha256()
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.size = self.chars = 0
        self.head = ""
        self.held = b""  # a trailing \r that may be the start of the line end

    def add(self, data: bytes) -> None:
        data = self.held + data
        self.held = b"\r" if data.endswith(b"\r") else b""
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


def _lines(handle: BinaryIO, max_row_bytes: int, head_chars: int) -> Iterator[str | _Invalid]:
    """Decoded lines without their ends; an ``_Invalid`` for a line over ``max_row_bytes``."""
    limit = max_row_bytes + 2  # room for the line end
    pieces = _pieces(handle, limit)
    for offset, piece in pieces:
        if piece.endswith(b"\n") or len(piece) < limit:
            raw = _without_line_end(piece)
            if len(raw) <= max_row_bytes:
                yield _decode(raw, offset).rstrip("\r")
                continue
        long_row = _LongRow(offset, max_row_bytes, head_chars)
        long_row.add(piece if not piece.endswith(b"\n") else piece[:-1])
        while not piece.endswith(b"\n"):
            try:
                _, piece = next(pieces)
            except StopIteration:
                break
            long_row.add(piece[:-1] if piece.endswith(b"\n") else piece)
        yield long_row.finish()


def _jsonl_records(handle: BinaryIO, config: ScoringConfig) -> Iterator[Record]:
    text_column, id_column = config.text_column, config.id_column
    for line in _lines(handle, config.max_row_bytes, config.reject_text_chars):
        if isinstance(line, _Invalid) or not line.strip():
            yield (None, line)  # a blank line is rejected as blank below
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield (None, _Invalid(f"invalid JSON: {exc.msg}", line))
            continue
        except ValueError:  # an integer past Python's digit limit
            yield (None, _Invalid("invalid JSON: a number too long to read", line))
            continue
        except RecursionError:
            yield (None, _Invalid("invalid JSON: nested too deeply", line))
            continue
        if not isinstance(obj, dict) or text_column not in obj:
            yield (None, _Invalid(f"no {text_column!r} field", line))
            continue
        yield (obj.get(id_column), obj[text_column])


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


def _csv_raw_records(handle: BinaryIO, config: ScoringConfig) -> Iterator[list[str] | _Invalid]:
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


def _csv_records(handle: BinaryIO, config: ScoringConfig) -> Iterator[Record]:
    # Records are bounded by max_row_bytes before they reach the csv module: its own
    # limit (131072 characters a field by default) must never be what rejects a record.
    csv.field_size_limit(max(csv.field_size_limit(), config.max_row_bytes))
    feed = _Feed()
    reader = csv.reader(feed)
    fields: list[str] | None = None
    for record in _csv_raw_records(handle, config):
        if isinstance(record, _Invalid):
            if fields is None:
                raise BadFile(f"the header row is longer than {config.max_row_bytes} bytes")
            yield (None, record)
            continue
        feed.lines.clear()
        feed.lines.extend(record)
        try:
            row = next(reader, [])
        except csv.Error as exc:
            if fields is None:
                raise BadFile(f"CSV parse error in the header: {exc}") from exc
            yield (None, _Invalid(f"malformed CSV record: {exc}", "".join(record)))
            continue
        if not row:  # a blank line: not a row, as csv.DictReader has it
            continue
        if fields is None:
            fields = row
            if config.text_column not in fields:
                raise BadFile(f"no {config.text_column!r} column (columns: {_shown(fields, 200)})")
            text_at = len(fields) - 1 - fields[::-1].index(config.text_column)
            id_at = (
                len(fields) - 1 - fields[::-1].index(config.id_column)
                if config.id_column in fields
                else None
            )
            continue
        given = row[id_at] if id_at is not None and id_at < len(row) else None
        if text_at < len(row):
            yield (given, row[text_at])
        else:
            yield (given, _Invalid("row has fewer fields than the header", "".join(record)))


def _parquet_records(handle: BinaryIO, config: ScoringConfig) -> Iterator[Record]:
    text_column, id_column = config.text_column, config.id_column
    try:
        parquet = pq.ParquetFile(handle)
        names = parquet.schema_arrow.names
        if text_column not in names:
            raise BadFile(f"no {text_column!r} column (columns: {_shown(names, 200)})")
        columns = [text_column] + ([id_column] if id_column in names else [])
        for batch in parquet.iter_batches(batch_size=config.chunk_rows, columns=columns):
            texts = batch.column(text_column).to_pylist()
            ids = batch.column(id_column).to_pylist() if id_column in names else [None] * len(texts)
            yield from zip(ids, texts, strict=True)
    except (pa.ArrowException, OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise BadFile(f"unreadable Parquet: {exc}") from exc


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


def reject(number: int, row_id: str, reason: str, text: object, keep_chars: int) -> Reject:
    """The bounded record of a rejected row (see the module docstring)."""
    if isinstance(text, _Invalid):
        kept, chars, sha = text.raw, text.chars, text.sha256
    else:
        kept, chars, sha = text if isinstance(text, str) else _shown(text, keep_chars), None, None
    if chars is None:
        chars = len(kept)
    if sha is None:
        sha = hashlib.sha256(kept.encode("utf-8", "surrogatepass")).hexdigest()
    return Reject(number, row_id, reason, encodable(kept[:keep_chars]), chars, sha)


def _row_id(given: object, default: str) -> tuple[str, str | None]:
    """The id a row is scored under, or a bounded form of it and why it is refused."""
    if given is None or given == "":
        return default, None
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


class _RowChecker:
    """Row rules across the chunks of one file (duplicate ids span chunks)."""

    def __init__(self, file_name: str, config: ScoringConfig) -> None:
        self.file_name = file_name
        self.max_text_chars, self.keep_chars = config.max_text_chars, config.reject_text_chars
        self.seen: set[str] = set()
        self.rows_seen = 0

    def check(self, records: list[Record]) -> Rows:
        numbers: list[int] = []
        ids: list[str] = []
        texts: list[str] = []
        rejected: list[Reject] = []
        for offset, (given, text) in enumerate(records, start=1):
            number = self.rows_seen + offset
            row_id, reason = _row_id(given, f"{self.file_name}:{number}")
            reason = self._text_problem(text) or reason
            if reason is None and row_id in self.seen:
                reason = f"duplicate id {row_id!r}"
            if reason is not None:
                rejected.append(reject(number, row_id, reason, text, self.keep_chars))
                continue
            assert isinstance(text, str)  # _text_problem refuses every other type
            self.seen.add(row_id)
            numbers.append(number)
            ids.append(row_id)
            texts.append(text)
        self.rows_seen += len(records)
        return Rows(numbers, ids, texts, rejected)

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
