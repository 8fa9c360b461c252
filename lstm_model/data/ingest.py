"""aclImdb (archive or folder, official layout) to one Parquet file with a manifest.

The archive is streamed member by member and nothing is unpacked to disk. Rows are
sorted by (split, label, review_id), so the same reviews give the same bytes
whatever order the archive or the file system lists them in.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import tarfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import (
    find_valid_artifact,
    require_sha256,
    sha256_text,
    staged_artifact,
    write_manifest,
)
from lstm_model.data.sources import ResolvedSource
from lstm_model.errors import IngestError

log = logging.getLogger(__name__)

INGEST_VERSION = "1"
"""Bump when the output of ingest changes for the same source; it is part of the cache key."""

REVIEWS_FILE = "reviews.parquet"
SPLITS = ("train", "test")
POLARITIES = {"neg": 0, "pos": 1}

REVIEWS_SCHEMA = pa.schema(
    [
        pa.field("review_id", pa.int32(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("rating", pa.int8(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
    ],
    metadata={"dataset": "imdb_reviews", "ingest_version": INGEST_VERSION},
)

_REVIEW_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")
# Parts of the official archive that carry no labelled review: skipped on purpose.
_KNOWN_EXTRAS = {
    ("README",),
    ("imdb.vocab",),
    ("imdbEr.txt",),
    ("train", "labeledBow.feat"),
    ("test", "labeledBow.feat"),
    ("train", "unsupBow.feat"),
    ("train", "urls_pos.txt"),
    ("train", "urls_neg.txt"),
    ("train", "urls_unsup.txt"),
    ("test", "urls_pos.txt"),
    ("test", "urls_neg.txt"),
}
_KNOWN_FOLDERS = {
    (),
    *((split,) for split in SPLITS),
    *((split, polarity) for split in SPLITS for polarity in POLARITIES),
    ("train", "unsup"),
}
_REVIEW_FOLDERS = {(split, polarity) for split in SPLITS for polarity in POLARITIES}
_MAX_PROBLEMS_SHOWN = 20


class IngestResult(BaseModel):
    """Where the reviews Parquet lies and what it holds; passed between pipeline steps."""

    model_config = ConfigDict(frozen=True)

    path: Path
    sha256: str
    rows: int
    counts: dict[str, dict[str, int]]
    source_sha256: str
    cached: bool


@dataclass
class _Collector:
    review_id: list[int] = field(default_factory=list)
    split: list[str] = field(default_factory=list)
    label: list[int] = field(default_factory=list)
    rating: list[int] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    source_path: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, rel: tuple[str, ...], data: bytes) -> None:
        split, polarity, name = rel
        match = _REVIEW_NAME.match(name)
        path = "/".join(rel)
        if match is None:
            self.problems.append(f"{path}: unexpected file name (expected <id>_<rating>.txt)")
            return
        rating = int(match.group(2))
        if not 1 <= rating <= 10:
            self.problems.append(f"{path}: rating {rating} in the file name is outside 1-10")
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problems.append(f"{path}: not valid UTF-8 (byte {exc.start}: {exc.reason})")
            return
        if not text.strip():
            self.problems.append(f"{path}: empty review")
            return
        self.review_id.append(int(match.group(1)))
        self.split.append(split)
        self.label.append(POLARITIES[polarity])
        self.rating.append(rating)
        self.text.append(text)
        self.source_path.append(path)

    def table(self) -> pa.Table:
        table = pa.table(
            {
                "review_id": pa.array(self.review_id, pa.int32()),
                "split": pa.array(self.split, pa.string()),
                "label": pa.array(self.label, pa.int8()),
                "rating": pa.array(self.rating, pa.int8()),
                "text": pa.array(self.text, pa.string()),
                "source_path": pa.array(self.source_path, pa.string()),
            },
            schema=REVIEWS_SCHEMA,
        )
        return table.sort_by(
            [("split", "ascending"), ("label", "ascending"), ("review_id", "ascending")]
        )


def read_reviews(source: Path) -> pa.Table:
    """Read every labelled review of an aclImdb archive or folder into an Arrow table.

    Raises IngestError listing every problem found (unexpected entries, bad names or
    ratings, non-UTF-8 or empty reviews), or naming the archive if it is corrupt.
    """
    if not source.exists():
        raise IngestError(f"{source}: not found")
    collector = _Collector()
    members = _archive_members(source) if source.is_file() else _folder_members(source)
    for entry in members:
        _route(entry, collector)
    if not collector.problems:
        _require_all_groups(collector)
    if collector.problems:
        shown = collector.problems[:_MAX_PROBLEMS_SHOWN]
        more = len(collector.problems) - len(shown)
        raise IngestError(
            f"{source}: {len(collector.problems)} problem(s) in the aclImdb data:\n  - "
            + "\n  - ".join(shown)
            + (f"\n  … and {more} more" if more else "")
        )
    return collector.table()


def ingest_reviews(source: ResolvedSource, out_root: Path) -> IngestResult:
    """Ingest ``source`` into ``out_root/reviews/<key>/``, or reuse an identical earlier run.

    The key is derived from the source fingerprint and INGEST_VERSION, so re-running on an
    unchanged source finds the published artifact and reads nothing from the source.
    """
    folder = ingest_folder(source, out_root)
    manifest = find_valid_artifact(folder)
    if manifest is not None:
        log.info("ingest: cache hit %s (source unchanged)", folder)
        return _result(folder, manifest.content_sha256, manifest.details, cached=True)

    started = time.perf_counter()
    table = read_reviews(source.path)
    source_sha = source.fingerprint if source.kind == "archive" else _tree_sha256(table)
    counts = count_splits(table)
    with staged_artifact(folder) as tmp:
        pq.write_table(table, tmp / REVIEWS_FILE, compression="zstd")
        details = {
            "rows": table.num_rows,
            "counts": counts,
            "source": {"path": str(source.path), "kind": source.kind, "sha256": source_sha},
            "schema": {f.name: str(f.type) for f in REVIEWS_SCHEMA},
            "ingest_version": INGEST_VERSION,
            "pyarrow": pa.__version__,
        }
        manifest = write_manifest(
            tmp,
            kind="imdb_reviews",
            main_file=REVIEWS_FILE,
            inputs={"source": source_sha},
            details=details,
        )
    log.info(
        "ingest: %d reviews from %s in %.1f s -> %s",
        table.num_rows,
        source.path,
        time.perf_counter() - started,
        folder,
    )
    return _result(folder, manifest.content_sha256, details, cached=False)


def ingest_folder(source: ResolvedSource, out_root: Path) -> Path:
    """Where the ingest of ``source`` is published: addressed by its fingerprint."""
    return out_root / "reviews" / sha256_text("ingest", INGEST_VERSION, source.fingerprint)[:16]


def load_reviews(result: IngestResult, columns: list[str] | None = None) -> pa.Table:
    """Read an ingested Parquet file after checking it is the one the manifest describes."""
    require_sha256(result.path, result.sha256, "re-run the ingest step")
    return pq.read_table(result.path, columns=columns)


def _result(folder: Path, sha: str, details: dict, *, cached: bool) -> IngestResult:
    return IngestResult(
        path=folder / REVIEWS_FILE,
        sha256=sha,
        rows=details["rows"],
        counts=details["counts"],
        source_sha256=details["source"]["sha256"],
        cached=cached,
    )


_Entry = tuple[tuple[str, ...], str, bytes | None]
"""(path parts under the dataset root, 'dir' | 'file' | 'other', bytes if wanted)."""


def _wanted(rel: tuple[str, ...]) -> bool:
    """Whether a file's bytes are needed: only files that could be labelled reviews."""
    return len(rel) == 3 and rel[:2] in _REVIEW_FOLDERS


def _archive_members(path: Path) -> Iterator[_Entry]:
    try:
        with _open_stream(path) as raw, tarfile.open(fileobj=raw, mode="r|*") as archive:
            for member in archive:
                rel = _relative_parts(member.name)
                if member.isdir():
                    yield rel, "dir", None
                elif member.isfile():
                    handle = archive.extractfile(member) if _wanted(rel) else None
                    yield rel, "file", handle.read() if handle else None
                else:
                    yield rel, "other", None
            # Read to the end so gzip checks its length and CRC trailer: a stream cut
            # after the last review would otherwise pass unnoticed.
            while raw.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise IngestError(
            f"{path}: corrupt or truncated archive ({type(exc).__name__}: {exc}); download it again"
        ) from exc


def _open_stream(path: Path) -> BinaryIO:
    """The archive as a byte stream: gunzipped by ``gzip`` (which checks truncation and
    CRC, unlike tarfile's own stream reader), else raw for tarfile to sniff."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _folder_members(root: Path) -> Iterator[_Entry]:
    if not (root / "train").is_dir() and (root / "aclImdb").is_dir():
        root = root / "aclImdb"
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        base = Path(folder)
        yield base.relative_to(root).parts, "dir", None
        for name in sorted(files):
            path = base / name
            rel = path.relative_to(root).parts
            if not path.is_file():
                yield rel, "other", None
            else:
                yield rel, "file", path.read_bytes() if _wanted(rel) else None


def _relative_parts(name: str) -> tuple[str, ...]:
    parts = tuple(p for p in PurePosixPath(name).parts if p not in {".", ""})
    if parts and parts[0] == "aclImdb":
        parts = parts[1:]
    return parts


def _route(entry: _Entry, out: _Collector) -> None:
    rel, kind, data = entry
    if any(part.startswith(".") for part in rel):
        return  # hidden files (.DS_Store, ._* from macOS tar) carry no reviews
    path = "/".join(rel) or "."
    if kind == "dir":
        if rel not in _KNOWN_FOLDERS and rel[:2] != ("train", "unsup"):
            out.problems.append(
                f"{path}/: unexpected folder (aclImdb has only "
                "train/{pos,neg,unsup} and test/{pos,neg})"
            )
        return
    if rel in _KNOWN_EXTRAS or rel[:2] == ("train", "unsup"):
        return
    if rel[:-1] not in _KNOWN_FOLDERS:
        out.problems.append(f"{path}: unexpected folder {'/'.join(rel[:-1])}/")
        return
    if len(rel) != 3:
        out.problems.append(f"{path}: unexpected file")
        return
    if kind != "file" or data is None:
        out.problems.append(f"{path}: not a regular file")
        return
    out.add(rel, data)


def _require_all_groups(out: _Collector) -> None:
    seen = set(zip(out.split, out.label, strict=True))
    for split in SPLITS:
        for polarity, label in POLARITIES.items():
            if (split, label) not in seen:
                out.problems.append(f"{split}/{polarity}/: no reviews (is this aclImdb?)")


def count_splits(table: pa.Table) -> dict[str, dict[str, int]]:
    """Reviews per split and label ("0", "1") of a table in the reviews' schema."""
    grouped = table.group_by(["split", "label"]).aggregate([("review_id", "count")])
    counts: dict[str, dict[str, int]] = {split: {"0": 0, "1": 0} for split in SPLITS}
    for row in grouped.to_pylist():
        counts[row["split"]][str(row["label"])] = row["review_id_count"]
    return counts


def _tree_sha256(table: pa.Table) -> str:
    """Content hash of a folder source: its reviews' paths and texts, in sorted order."""
    digest = sha256_text(
        *(
            f"{p}\0{t}"
            for p, t in zip(
                table["source_path"].to_pylist(), table["text"].to_pylist(), strict=True
            )
        )
    )
    return digest
