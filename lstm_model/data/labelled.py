"""The labelled inbox: files of labelled texts that a team drops, each taken exactly once.

Everything lies below ``<workspace>/labelled/``: ``inbox/`` (users drop CSV, JSONL and
Parquet files there), ``spans/`` (each accepted file, frozen: see ``spans``), ``rejects/``
(bad rows of accepted files, with a reason each), ``quarantine/`` (whole bad files and
every entry that is not a regular file, each with a JSON sidecar saying why) and
``archive/`` (accepted files, once their span is published).

A file is read as batch scoring reads its inbox (``drops``: the settle rule, regular files
only, bounded rows, bad files quarantined whole). A row has ``text`` and ``label`` (0 or 1,
or negative or positive in any case), and may have ``id``, ``domain`` (else the
configured domain, else the file's name) and ``split`` (train or test; else fixed by a
hash of the normalised text, ``splits.fixed_split``). A row is rejected, with its reason,
when its label, domain or split is not one of those, when the same text comes with
conflicting labels (every copy is rejected), when it repeats a text of the file or of an
active span, and when training on it would leak into evaluation: a train row whose text
is an aclImdb test review or in any test share, or a test row whose text is in the
training data.

A file whose every row is rejected, or that would push either label past
``max_class_share`` of the training set, or whose accepted rows break the
``labelled_reviews`` contract, is quarantined whole with the numbers: a skewed training
set moves the decision threshold for every domain, and a weekly schedule would otherwise
promote that model unseen. The accepted rows are held in memory to become one span.

Exactly once: per file, the rejects are written under a name fixed by its content, then
the span is published (one atomic rename, named by the content), then the file is
archived. A run killed at any point leaves the file in the inbox; the next run finds its
span published and only archives it, or reads it again into the same names.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import atomic_write_parquet, remove_temporary_files
from lstm_model.data.config import ACLIMDB_DOMAIN, DOMAIN_PATTERN, LabelledConfig
from lstm_model.data.drops import (
    BadFile,
    DropFolders,
    Dropped,
    Refused,
    Reject,
    archive_entry,
    display_name,
    open_drop,
    printable,
    quarantine_entry,
    ready_files,
    rejects_table,
    safe_name,
)
from lstm_model.data.drops import iter_rows as _iter_rows
from lstm_model.data.ingest import IngestResult, load_reviews
from lstm_model.data.spans import (
    SPAN_SCHEMA,
    Span,
    check_spans,
    find_span,
    load_span,
    lock,
    publish_span,
)
from lstm_model.data.splits import fixed_split, text_keys
from lstm_model.errors import DataContractError, PipelineError

log = logging.getLogger(__name__)

FORMATS = (".csv", ".jsonl", ".parquet")
FIELDS = ("label", "domain", "split")
LABELS = {"0": 0, "1": 1, "negative": 0, "positive": 1}
MAX_REASONS_SHOWN = 5
_DOMAIN = re.compile(DOMAIN_PATTERN)

FrameCheck = Callable[[pd.DataFrame], None]
"""A contract over the rows of a span to be; raises DataContractError when they break it."""


def labelled_folders(workspace: Path) -> DropFolders:
    """The labelled inbox of a workspace: its folders, all below ``labelled/``."""
    return DropFolders(root=workspace / "labelled")


class DropOutcome(BaseModel):
    """What became of one dropped file."""

    model_config = ConfigDict(frozen=True)

    source_file: str
    sha256: str = ""
    status: Literal["accepted", "already accepted", "quarantined", "skipped", "failed"]
    span: str | None = None
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    reason: str | None = None
    counts: dict[str, dict[str, dict[str, int]]] = {}


class IntakeReport(BaseModel):
    """A pass over the labelled inbox: each file's outcome and the rows' tally."""

    model_config = ConfigDict(frozen=True)

    outcomes: list[DropOutcome]

    @property
    def rows_read(self) -> int:
        """Rows read from the files taken."""
        return sum(o.rows_read for o in self.outcomes)

    @property
    def rows_accepted(self) -> int:
        """Rows that are in a span now."""
        return sum(o.rows_accepted for o in self.outcomes)

    @property
    def rows_rejected(self) -> int:
        """Rows in a rejects file, each with its reason."""
        return sum(o.rows_rejected for o in self.outcomes)

    @property
    def spans_added(self) -> list[str]:
        """The spans this pass published."""
        return [o.span for o in self.outcomes if o.status == "accepted" and o.span]

    def table(self) -> list[dict[str, Any]]:
        """One row per file, for a report."""
        keys = ("source_file", "status", "span", "rows_read", "rows_accepted", "rows_rejected")
        return [{**{k: getattr(o, k) for k in keys}, "reason": o.reason} for o in self.outcomes]


def take_labelled(
    workspace: Path,
    reviews: IngestResult,
    config: LabelledConfig,
    check: FrameCheck | None = None,
) -> IntakeReport:
    """Take every settled file of the labelled inbox: each becomes a span, is quarantined,
    or (for an error that is not the file's fault) stays for the next run."""
    folders = labelled_folders(workspace)
    folders.create()
    with lock(folders.root):  # runs that overlap take turns: one reads what the other wrote
        for folder in folders.written():
            remove_temporary_files(folder)
        todo = ready_files(folders.inbox, config.settle_seconds)
        if not todo:
            return IntakeReport(outcomes=[])
        known = _Known.load(reviews, check_spans(folders.root))
        return _take_all(todo, folders, reviews, known, config, check)


def _take_all(
    todo: list[Path],
    folders: DropFolders,
    reviews: IngestResult,
    known: _Known,
    config: LabelledConfig,
    check: FrameCheck | None,
) -> IntakeReport:
    outcomes = []
    for path in todo:
        outcome = _take(path, folders, reviews, known, config, check)
        log.info(
            "labelled: %s: %s%s",
            outcome.source_file,
            outcome.status,
            f" ({outcome.reason})" if outcome.reason else "",
        )
        outcomes.append(outcome)
    report = IntakeReport(outcomes=outcomes)
    if report.rows_read != report.rows_accepted + report.rows_rejected:
        raise PipelineError(
            f"labelled intake does not reconcile: {report.rows_read} rows read, "
            f"{report.rows_accepted} accepted + {report.rows_rejected} rejected"
        )
    return report


class _Known:
    """The texts already in the data, by key: aclImdb's splits and the active spans'."""

    def __init__(self) -> None:
        self.imdb: dict[str, set[tuple[str, int]]] = {}  # key -> {(split, label)}
        self.spans: dict[str, tuple[str, str, int]] = {}  # key -> (span, split, label)
        self.train_labels = {"0": 0, "1": 0}

    @classmethod
    def load(cls, reviews: IngestResult, spans: list[Span]) -> _Known:
        known = cls()
        table = load_reviews(reviews, columns=["split", "label", "text"])
        for key, split, label in zip(
            text_keys(table["text"]),
            table["split"].to_pylist(),
            table["label"].to_pylist(),
            strict=True,
        ):
            known.imdb.setdefault(key, set()).add((split, label))
        for label in ("0", "1"):
            known.train_labels[label] += reviews.counts["train"][label]
        for span in spans:
            known.add(span.id, load_span(span, ["key", "split", "label"]))
        return known

    def add(self, span: str, rows: pa.Table) -> None:
        for key, split, label in zip(
            rows["key"].to_pylist(),
            rows["split"].to_pylist(),
            rows["label"].to_pylist(),
            strict=True,
        ):
            self.spans.setdefault(key, (span, split, label))
            if split == "train":
                self.train_labels[str(label)] += 1


def _take(
    path: Path,
    folders: DropFolders,
    reviews: IngestResult,
    known: _Known,
    config: LabelledConfig,
    check: FrameCheck | None,
) -> DropOutcome:
    name = display_name(path.name)
    try:
        entry, handle, _ = open_drop(path)
    except FileNotFoundError:
        return DropOutcome(source_file=name, status="skipped", reason="gone since it was listed")
    except Refused as exc:
        return _quarantine(exc.entry, exc.reason, folders)
    except OSError as exc:
        return DropOutcome(source_file=name, status="failed", reason=printable(str(exc)))
    with handle:
        span = find_span(folders.root, entry.sha256)
        if span is not None:
            _archive(entry, folders)
            return DropOutcome(
                source_file=name, sha256=entry.sha256, status="already accepted", span=span.id,
                reason=f"this content is span {span.id} already (from {span.source_file})",
            )  # fmt: skip
        suffix = path.suffix.lower()
        if suffix not in FORMATS:
            shown = suffix or "(no extension)"
            return _quarantine(entry, f"unsupported format {shown}; use one of {FORMATS}", folders)
        try:
            rows, rejected, read = _read(handle, suffix, entry, config)
        except BadFile as exc:
            return _quarantine(entry, str(exc), folders)
        except OSError as exc:
            return DropOutcome(
                source_file=name, sha256=entry.sha256, status="failed", reason=printable(str(exc))
            )
    rows, more = _cross_check(rows, known, config)
    rejected += more
    rejected.sort(key=lambda r: r.row_number)
    if read != len(rows) + len(rejected):
        raise PipelineError(
            f"{name}: {read} rows read, but {len(rows)} accepted + {len(rejected)} rejected"
        )
    if not rows:
        return _quarantine(entry, _all_rejected(read, rejected), folders)
    table = pa.Table.from_pylist(rows, schema=SPAN_SCHEMA)
    balance = _balance_problem(table, known, config)
    if balance is not None:
        return _quarantine(entry, balance, folders)
    if check is not None:
        try:
            check(table.to_pandas())
        except DataContractError as exc:
            return _quarantine(entry, f"breaks the labelled_reviews contract: {exc}", folders)
    try:
        if rejected:
            target = folders.rejects / f"{entry.sha256[:12]}-{safe_name(path.stem)}.parquet"
            atomic_write_parquet(target, rejects_table(rejected, entry))
        span = publish_span(
            folders.root, table, source_file=name, source_sha256=entry.sha256,
            details={"rows_read": read, "rows_rejected": len(rejected),
                     "test_share": config.test_share},
        )  # fmt: skip
    except OSError as exc:
        return DropOutcome(
            source_file=name, sha256=entry.sha256, status="failed", reason=printable(str(exc))
        )
    known.add(span.id, table)
    _archive(entry, folders)
    return DropOutcome(
        source_file=name, sha256=entry.sha256, status="accepted", span=span.id, rows_read=read,
        rows_accepted=table.num_rows, rows_rejected=len(rejected), counts=span.counts,
    )  # fmt: skip


def _read(
    handle: Any, suffix: str, entry: Dropped, config: LabelledConfig
) -> tuple[list[dict[str, Any]], list[Reject], int]:
    """The file's rows with a valid label, domain and split; the rejected ones; rows read."""
    default_domain = config.domain or _domain_of(entry.path.stem)
    rows: list[dict[str, Any]] = []
    rejected: list[Reject] = []
    read = 0
    for chunk in _iter_rows(handle, suffix, entry.name, config, FIELDS, ("label",)):
        read += chunk.total
        rejected.extend(chunk.rejected)
        for number, row_id, text, raw_sha, (label, domain, split) in zip(
            chunk.row_number, chunk.ids, chunk.texts, chunk.row_sha256, chunk.fields, strict=True
        ):
            value, reason = _label(label), None
            if value is None:
                reason = f"label {_shown(label)} is not 0, 1, negative or positive"
            domain_name = default_domain if domain in (None, "") else str(domain).strip().lower()
            if reason is None and not _DOMAIN.fullmatch(domain_name):
                reason = (
                    f"domain {_shown(domain)} is not a name of letters, digits, '.', '_' and "
                    "'-' (at most 64, starting with a letter or digit)"
                )
            if reason is None and domain_name.lower() == ACLIMDB_DOMAIN:
                reason = f"domain {ACLIMDB_DOMAIN!r} is reserved for the aclImdb reviews"
            given_split = None if split in (None, "") else str(split).strip().lower()
            if reason is None and given_split not in (None, "train", "test"):
                reason = f"split {_shown(split)} is not train or test"
            if reason is not None:
                rejected.append(_reject(number, row_id, reason, text, config, raw_sha))
                continue
            rows.append(
                {"id": row_id, "text": text, "label": value, "domain": domain_name,
                 "split": given_split, "key": "", "source_file": entry.name,
                 "row_number": number, "row_sha256": raw_sha}
            )  # fmt: skip
    return rows, rejected, read


def _cross_check(
    rows: list[dict[str, Any]], known: _Known, config: LabelledConfig
) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Rows against each other and against the data already there (see the module
    docstring); fixes each row's key and split."""
    keys = text_keys([r["text"] for r in rows]) if rows else []
    labels: dict[str, set[int]] = {}
    first: dict[str, int] = {}
    for row, key in zip(rows, keys, strict=True):
        row["key"] = key
        row["split"] = row["split"] or fixed_split(key, config.test_share)
        labels.setdefault(key, set()).add(row["label"])
        first.setdefault(key, row["row_number"])
    drop_test = {r["key"] for r in rows if r["split"] == "test"}
    drop_train = {r["key"] for r in rows if r["split"] == "train"}
    kept, rejected = [], []
    for row in rows:
        key = row["key"]
        reason = None
        if len(labels[key]) > 1:
            copies = [r["row_number"] for r in rows if r["key"] == key]
            reason = f"conflicting labels for the same text (rows {_numbers(copies)})"
        elif first[key] != row["row_number"]:
            reason = f"the same text as row {first[key]}"
        elif key in known.spans:
            span, _, label = known.spans[key]
            reason = (
                f"conflicts with label {label} of the same text in span {span}"
                if label != row["label"]
                else f"the same text is in span {span} already"
            )
        elif key in known.imdb:
            reason = _against_imdb(row, known.imdb[key])
        elif row["split"] == "train" and key in drop_test:
            reason = "would leak into evaluation: the same text is in the file's test share"
        elif row["split"] == "test" and key in drop_train:
            reason = "cannot be tested on: the same text is trained on"
        if reason is None:
            kept.append(row)
        else:
            rejected.append(
                _reject(
                    row["row_number"], row["id"], reason, row["text"], config, row["row_sha256"]
                )
            )
    return kept, rejected


def _against_imdb(row: dict[str, Any], seen: set[tuple[str, int]]) -> str:
    """Why a row whose text is an aclImdb review (in ``seen``: its splits and labels) is
    refused."""
    splits = {split for split, _ in seen}
    labels = {label for _, label in seen}
    if row["split"] == "train" and "test" in splits:
        return "would leak into evaluation: the same text is an aclImdb test review"
    if row["split"] == "test" and "train" in splits:
        return "cannot be tested on: the same text is an aclImdb train review"
    if row["label"] not in labels:
        return f"conflicts with label {min(labels)} of the same aclImdb {min(splits)} review"
    return f"the same text is an aclImdb {row['split']} review already"


def _balance_problem(table: pa.Table, known: _Known, config: LabelledConfig) -> str | None:
    train = table.filter(pc.equal(table["split"], "train"))["label"].to_pylist()
    positives = known.train_labels["1"] + sum(train)
    total = known.train_labels["0"] + known.train_labels["1"] + len(train)
    share = max(positives, total - positives) / total if total else 0.0
    if share <= config.max_class_share:
        return None
    major = "positive" if positives * 2 > total else "negative"
    count = positives if major == "positive" else total - positives
    return (
        f"would make the training set {share:.1%} {major} ({count} of {total} rows, "
        f"{sum(train)} of this file's {len(train)} train rows positive), above "
        f"max_class_share {config.max_class_share:.0%}"
    )


def _all_rejected(read: int, rejected: list[Reject]) -> str:
    counts: dict[str, int] = {}
    for r in rejected:
        counts[r.reason] = counts.get(r.reason, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:MAX_REASONS_SHOWN]
    shown = "; ".join(f"{n} x {reason}" for reason, n in top)
    return f"every row was rejected ({read} rows): {shown}"


def _quarantine(entry: Dropped, reason: str, folders: DropFolders) -> DropOutcome:
    reason = printable(reason)[:2000]
    base = {"source_file": entry.name, "sha256": entry.sha256}
    try:
        target = quarantine_entry(entry, reason, folders.quarantine)
    except FileNotFoundError:
        return DropOutcome(**base, status="skipped", reason="gone before it was quarantined")
    except OSError as exc:
        note = f"not quarantined ({printable(str(exc))}): {reason}"
        return DropOutcome(**base, status="failed", reason=note)
    if target is None:
        note = f"replaced in the inbox before it could be quarantined ({reason})"
        return DropOutcome(**base, status="skipped", reason=note)
    log.warning("labelled: %s quarantined: %s", entry.name, reason)
    return DropOutcome(**base, status="quarantined", reason=reason)


def _archive(entry: Dropped, folders: DropFolders) -> None:
    """Archive a file whose rows are in a span; if that fails, the next run finds its span
    and archives it then."""
    try:
        archive_entry(entry, folders.archive)
    except OSError as exc:
        log.warning("labelled: %s not archived (%s): next run", entry.name, printable(str(exc)))


def _reject(
    number: int, row_id: str, reason: str, text: str, config: LabelledConfig, sha: str | None
) -> Reject:
    """A row rejected after it was read: ``sha``, of its bytes as read where they are not
    its text's UTF-8 (``Rows.row_sha256``), else of its text."""
    sha = sha or hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return Reject(number, row_id, reason, text[: config.reject_text_chars], len(text), sha)


def _label(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    if isinstance(value, str):
        return LABELS.get(value.strip().lower())
    return None


def _domain_of(stem: str) -> str:
    name = safe_name(stem, 64).lstrip("._-").lower() or "labelled"
    return name if name.lower() != ACLIMDB_DOMAIN else f"{name}-labelled"


def _shown(value: object) -> str:
    return repr(printable(value) if isinstance(value, str) else value)[:100]


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:10]))
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")
