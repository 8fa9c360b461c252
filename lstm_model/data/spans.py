"""Spans: each accepted labelled drop, frozen as one Parquet file and its manifest, and the
training set they make with the aclImdb reviews.

``<workspace>/labelled/spans/<id>/`` holds ``rows.parquet`` (``SPAN_SCHEMA``) and
``manifest.json`` (the hashes, rows per domain, split and label, the source file and when
it was accepted). A span is named by the sha256 of the file it came from, so a file
accepted once is never a second span. Every span published is listed in ``spans.json``,
so one deleted on disk is found missing. Spans are never changed: ``retire`` takes one out
of future training and ``restore`` puts it back, each recorded in ``retirements.json``
with its time and reason. Whatever reads or changes the spans holds ``lock``, so runs and
commands that overlap take turns.

The training set is the aclImdb reviews plus the train share of every active span, in the
order they were accepted; its version is the aclImdb reviews' sha256 while no span is
active, else a hash over that and the spans' hashes in order.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import (
    atomic_write_json,
    exclusive_lock,
    find_valid_artifact,
    read_manifest,
    restrict_tree,
    sha256_text,
    staged_artifact,
    verify_artifact,
    write_manifest,
)
from lstm_model.data.config import ACLIMDB_DOMAIN
from lstm_model.data.ingest import (
    REVIEWS_FILE,
    REVIEWS_SCHEMA,
    IngestResult,
    count_splits,
    load_reviews,
)
from lstm_model.errors import ArtifactError, LabelledDataError, PipelineError

log = logging.getLogger(__name__)

SPAN_KIND = "labelled_span"
ROWS_FILE = "rows.parquet"
RETIREMENTS_FILE = "retirements.json"
INDEX_FILE = "spans.json"
LOCK_FILE = ".spans.lock"
TRAINING_SET_KIND = "training_set"

SPAN_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("row_number", pa.int64(), nullable=False),
    ],
    metadata={"dataset": "labelled_reviews"},
)

Counts = dict[str, dict[str, dict[str, int]]]
"""Rows per domain, split and label ("0", "1")."""


class Span(BaseModel):
    """One accepted drop, as the span store lists it."""

    model_config = ConfigDict(frozen=True)

    id: str
    folder: Path
    sha256: str
    source_file: str
    source_sha256: str
    accepted_at: str
    rows: int
    counts: Counts
    status: Literal["active", "retired"] = "active"
    retired_at: str | None = None
    reason: str | None = None

    @property
    def path(self) -> Path:
        """The span's rows."""
        return self.folder / ROWS_FILE


def lock(labelled_root: Path) -> AbstractContextManager[None]:
    """The lock that intake, retiring, restoring and assembling the training set hold."""
    return exclusive_lock(labelled_root / LOCK_FILE)


def spans_folder(labelled_root: Path) -> Path:
    """Where the spans of a labelled root lie."""
    return labelled_root / "spans"


def span_id(source_sha256: str) -> str:
    """A span's name: the head of its source file's sha256 (one span per file content)."""
    return source_sha256[:16]


def find_span(labelled_root: Path, source_sha256: str) -> Span | None:
    """The span already made from a file of this content, if one is published whole."""
    folder = spans_folder(labelled_root) / span_id(source_sha256)
    manifest = find_valid_artifact(folder)
    return None if manifest is None else _span(folder, manifest.content_sha256, manifest.details)


def count_rows(table: pa.Table) -> Counts:
    """Rows per domain, split and label of a table with those columns."""
    counts: Counts = defaultdict(lambda: defaultdict(lambda: {"0": 0, "1": 0}))
    grouped = table.group_by(["domain", "split", "label"]).aggregate([([], "count_all")])
    for row in grouped.to_pylist():
        counts[row["domain"]][row["split"]][str(row["label"])] = row["count_all"]
    return {d: dict(splits) for d, splits in counts.items()}


def publish_span(
    labelled_root: Path,
    table: pa.Table,
    *,
    source_file: str,
    source_sha256: str,
    details: dict[str, Any],
) -> Span:
    """Freeze accepted rows as a span, atomically; the span of the same file content if
    one is published already."""
    found = find_span(labelled_root, source_sha256)
    if found is not None:
        _index(labelled_root, found.id)
        return found
    folder = spans_folder(labelled_root) / span_id(source_sha256)
    table = table.cast(SPAN_SCHEMA)
    span_details = {
        **details,
        "rows": table.num_rows,
        "counts": count_rows(table),
        "source_file": source_file,
        "source_sha256": source_sha256,
        "accepted_at": datetime.now(UTC).isoformat(),
    }
    with staged_artifact(folder) as tmp:
        pq.write_table(table, tmp / ROWS_FILE, compression="zstd")
        manifest = write_manifest(
            tmp,
            kind=SPAN_KIND,
            main_file=ROWS_FILE,
            inputs={"source": source_sha256},
            details=span_details,
        )
        restrict_tree(tmp)  # the team's texts: owner-only, as the inbox's other folders
    _index(labelled_root, folder.name)
    return _span(folder, manifest.content_sha256, span_details)


def list_spans(labelled_root: Path) -> list[Span]:
    """Every span, in the order accepted, with its status. A folder that is not a whole
    span (its manifest unreadable) is listed by ``check_spans``, not here."""
    folder = spans_folder(labelled_root)
    if not folder.is_dir():
        return []
    events = _retirements(labelled_root)
    spans = []
    for path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            manifest = read_manifest(path)
        except ArtifactError as exc:
            log.warning("not a span: %s", exc)
            continue
        span = _span(path, manifest.content_sha256, manifest.details)
        last = next((e for e in reversed(events) if e["span"] == span.id), None)
        if last is not None and last["action"] == "retire":
            span = span.model_copy(
                update={"status": "retired", "retired_at": last["at"], "reason": last["reason"]}
            )
        spans.append(span)
    return sorted(spans, key=lambda s: (s.accepted_at, s.id))


def active_spans(labelled_root: Path) -> list[Span]:
    """The spans that training takes, in the order accepted."""
    return [s for s in list_spans(labelled_root) if s.status == "active"]


def retire(labelled_root: Path, span: str, reason: str) -> Span | None:
    """Take a span out of future training; it stays on disk and ``restore`` undoes this.
    A span deleted on disk can be retired too (None is returned: there is nothing to list),
    so that training goes on without it."""
    with lock(labelled_root):
        return _record(labelled_root, span, "retire", reason)


def restore(labelled_root: Path, span: str, reason: str) -> Span:
    """Put a retired span back into training, unless its texts came in again meanwhile in
    an active span (then both would train on them, perhaps with other labels or splits)."""
    with lock(labelled_root):
        return _restore(labelled_root, span, reason)


def _restore(labelled_root: Path, span: str, reason: str) -> Span | None:
    spans = {s.id: s for s in list_spans(labelled_root)}
    if span in spans and spans[span].status == "retired":
        keys = set(load_span(spans[span], ["key"])["key"].to_pylist())
        for other in (s for s in spans.values() if s.status == "active"):
            shared = keys & set(load_span(other, ["key"])["key"].to_pylist())
            if shared:
                raise PipelineError(
                    f"span {span} shares {len(shared)} texts with active span {other.id} "
                    f"(from {other.source_file}): retire that one first"
                )
    return _record(labelled_root, span, "restore", reason)


def check_spans(labelled_root: Path) -> list[Span]:
    """The active spans, each checked file by file against its manifest: LabelledDataError naming
    the span if one was altered or deleted on disk (nothing is trained from it)."""
    spans = active_spans(labelled_root)
    listed = {s.id for s in list_spans(labelled_root)}
    retired = listed - {s.id for s in spans}
    for missing in [i for i in _indexed(labelled_root) if i not in listed and i not in retired]:
        if _retired_last(labelled_root, missing):
            continue
        raise LabelledDataError(
            f"span {missing} was deleted on disk (spans.json lists it): restore it from a "
            f"backup, or retire it with `lstm-pipeline data retire {missing}`"
        )
    folder = spans_folder(labelled_root)
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_dir() and not path.name.startswith(".") and path.name not in listed:
                raise LabelledDataError(
                    f"span {path.name}: its manifest is missing or unreadable; restore the "
                    f"span from a backup, or move {path} out of {folder}"
                )
    for span in spans:
        try:
            verify_artifact(span.folder)
        except ArtifactError as exc:
            raise LabelledDataError(
                f"span {span.id} (from {span.source_file}) was altered or deleted on disk: "
                f"{exc}. Restore it, or retire it with `lstm-pipeline data retire {span.id}`"
            ) from exc
    return spans


def load_span(span: Span, columns: list[str] | None = None) -> pa.Table:
    """The rows of a span."""
    return pq.read_table(span.path, columns=columns)


def dataset_version(reviews: IngestResult, spans: list[Span]) -> str:
    """The version of the training set: the reviews' sha256 alone while no span is active,
    else a hash over it and the spans' hashes in the order accepted."""
    if not spans:
        return reviews.sha256
    return sha256_text("dataset", reviews.sha256, *(s.sha256 for s in spans))


class TrainingSet(BaseModel):
    """What a model trains on: the reviews table (aclImdb's, or with the spans' train rows
    appended), the dataset version and the spans it holds."""

    model_config = ConfigDict(frozen=True)

    reviews: IngestResult
    version: str
    spans: list[Span]

    @property
    def span_ids(self) -> list[str]:
        return [s.id for s in self.spans]


def assemble_training_set(reviews: IngestResult, workspace: Path) -> TrainingSet:
    """The training set of a workspace now: its active spans, each checked against its
    manifest first (``check_spans``), appended to the aclImdb reviews."""
    with lock(workspace / "labelled"):
        spans = check_spans(workspace / "labelled")
    return TrainingSet(
        reviews=build_training_set(reviews, spans, workspace),
        version=dataset_version(reviews, spans),
        spans=spans,
    )


def build_training_set(reviews: IngestResult, spans: list[Span], out_root: Path) -> IngestResult:
    """The aclImdb reviews with the train share of each span appended (the reviews as they
    are when there is none), published under ``out_root/datasets/<version>/`` in the
    reviews' schema: a span row's ``review_id`` is negative (counted down across spans),
    its ``rating`` 0 (none given) and its ``source_path`` ``span:<id>/<row number>``."""
    if not spans:
        return reviews
    version = dataset_version(reviews, spans)
    folder = out_root / "datasets" / version[:16]
    manifest = find_valid_artifact(folder)
    if manifest is None:
        parts = [load_reviews(reviews)]
        next_id = -1
        for span in spans:
            train = load_span(span, ["text", "label", "split", "row_number"])
            train = train.filter(pc.equal(train["split"], "train"))
            n = train.num_rows
            row_numbers = train["row_number"].to_pylist()
            parts.append(
                pa.table(
                    {
                        "review_id": pa.array(range(next_id, next_id - n, -1), pa.int32()),
                        "split": train["split"],
                        "label": train["label"],
                        "rating": pa.array([0] * n, pa.int8()),
                        "text": train["text"],
                        "source_path": pa.array([f"span:{span.id}/{r}" for r in row_numbers]),
                    },
                    schema=REVIEWS_SCHEMA,
                )
            )
            next_id -= n
        table = pa.concat_tables(parts)
        counts = count_splits(table)
        with staged_artifact(folder) as tmp:
            pq.write_table(table, tmp / REVIEWS_FILE, compression="zstd")
            manifest = write_manifest(
                tmp,
                kind=TRAINING_SET_KIND,
                main_file=REVIEWS_FILE,
                inputs={"reviews": reviews.sha256, **{f"span:{s.id}": s.sha256 for s in spans}},
                details={
                    "rows": table.num_rows,
                    "counts": counts,
                    "version": version,
                    "spans": [s.id for s in spans],
                    "source": {"sha256": reviews.source_sha256},
                },
            )
        log.info(
            "training set %s: %d aclImdb reviews + %d span rows from %d spans",
            version[:16],
            reviews.rows,
            table.num_rows - reviews.rows,
            len(spans),
        )
    return IngestResult(
        path=folder / REVIEWS_FILE,
        sha256=manifest.content_sha256,
        rows=manifest.details["rows"],
        counts=manifest.details["counts"],
        source_sha256=reviews.source_sha256,
        cached=reviews.cached,
    )


def row_domains(review_ids: np.ndarray, spans: list[Span]) -> np.ndarray:
    """The domain of each training-set row, from its ``review_id``: ``ACLIMDB_DOMAIN`` for the
    aclImdb reviews, else that of the span row ``build_training_set`` gave the id."""
    domains = np.full(len(review_ids), ACLIMDB_DOMAIN, dtype=object)
    own = review_ids < 0
    if not own.any():
        return domains
    parts = []
    for span in spans:
        rows = load_span(span, ["domain", "split"])
        parts.append(rows.filter(pc.equal(rows["split"], "train"))["domain"].to_numpy(False))
    span_domains = np.concatenate(parts) if parts else np.array([], dtype=object)
    position = -review_ids[own].astype(np.int64) - 1
    if int(own.sum()) != len(span_domains) or position.max() >= len(span_domains):
        raise LabelledDataError(
            f"the training set has {int(own.sum())} span rows, the active spans "
            f"{[s.id for s in spans]} hold {len(span_domains)} train rows: rebuild it"
        )
    domains[own] = span_domains[position]
    return domains


def _span(folder: Path, sha: str, details: dict[str, Any]) -> Span:
    return Span(
        id=folder.name,
        folder=folder,
        sha256=sha,
        source_file=details["source_file"],
        source_sha256=details["source_sha256"],
        accepted_at=details["accepted_at"],
        rows=details["rows"],
        counts=details["counts"],
    )


def _retirements(labelled_root: Path) -> list[dict[str, str]]:
    path = labelled_root / RETIREMENTS_FILE
    if not path.is_file():
        return []
    try:
        events = list(json.loads(path.read_text())["events"])
        for event in events:
            _ = event["span"], event["action"], event["at"], event["reason"]
    except (ValueError, KeyError, TypeError) as exc:
        raise LabelledDataError(f"{path}: unreadable ({exc!r}); restore it from a backup") from exc
    return events


def _record(labelled_root: Path, span: str, action: str, reason: str) -> Span | None:
    spans = {s.id: s for s in list_spans(labelled_root)}
    gone = span not in spans and span in _indexed(labelled_root)
    if gone and action == "retire" and not _retired_last(labelled_root, span):
        current = "active"
    elif span not in spans:
        there = ", ".join(spans) or "none"
        if gone:
            raise PipelineError(f"span {span} was deleted on disk: it cannot be {action}d")
        raise PipelineError(f"no span {span!r} (spans: {there})")
    else:
        current = spans[span].status
    if (action == "retire") == (current == "retired"):
        raise PipelineError(f"span {span} is {current} already")
    events = _retirements(labelled_root)
    events.append(
        {"span": span, "action": action, "reason": reason, "at": datetime.now(UTC).isoformat()}
    )
    atomic_write_json(labelled_root / RETIREMENTS_FILE, {"events": events})
    log.info("span %s: %s (%s)", span, "retired" if action == "retire" else "restored", reason)
    return next((s for s in list_spans(labelled_root) if s.id == span), None)


def _indexed(labelled_root: Path) -> list[str]:
    path = labelled_root / INDEX_FILE
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text())["spans"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LabelledDataError(f"{path}: unreadable ({exc!r}); restore it from a backup") from exc


def _index(labelled_root: Path, span: str) -> None:
    """Add a published span to the index (again after a run killed between the two)."""
    spans = _indexed(labelled_root)
    if span not in spans:
        atomic_write_json(labelled_root / INDEX_FILE, {"spans": [*spans, span]})


def _retired_last(labelled_root: Path, span: str) -> bool:
    events = [e for e in _retirements(labelled_root) if e["span"] == span]
    return bool(events) and events[-1]["action"] == "retire"
