"""Batch scoring of dropped files with the champion model, exactly once.

Layout under the scoring root: ``inbox/`` (users drop files), ``results/`` (one Parquet per
scored file), ``rejects/`` (bad rows of good files, with reasons), ``quarantine/`` (whole
bad files, each with a JSON sidecar saying why), ``archive/`` (inputs once done) and
``ledger.sqlite``.

Exactly once: the ledger is keyed by (content sha256, model version). Per file the order
is: result and rejects written atomically under names fixed by the content hash and the
model version -> ledger row committed -> input moved to the archive. A run killed at any
point leaves the input in the inbox; the next run either finds the ledger row (and only
archives the input) or scores it again into the same names, so each row ends up in exactly
one result file, and no temporary file survives (they are swept at the start of a run).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import (
    atomic_parquet_writer,
    atomic_write_json,
    atomic_write_parquet,
    remove_temporary_files,
    sha256_file,
    sha256_text,
)
from lstm_model.config import ScoringConfig
from lstm_model.errors import PipelineError
from lstm_model.evaluate import PROBABILITIES_FILE, THRESHOLD
from lstm_model.inbox import BadFile, Rows, iter_rows, ready_files, safe_name
from lstm_model.registry import Registry
from lstm_model.tokeniser import OOV_ID, Tokeniser

log = logging.getLogger(__name__)

FOLDERS = ("inbox", "results", "rejects", "quarantine", "archive")
HISTOGRAM_BINS = 20
FrameCheck = Callable[[pd.DataFrame], None]
"""A contract over a frame; raises (with the reason) when the frame breaks it."""


class ScoringFolders(BaseModel):
    """Where scoring reads and writes; every path is below ``root``."""

    model_config = ConfigDict(frozen=True)

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.sqlite"

    def create(self) -> None:
        for name in FOLDERS:
            (self.root / name).mkdir(parents=True, exist_ok=True)


class FileOutcome(BaseModel):
    """What happened to one dropped file; every input row is counted in exactly one place."""

    source_file: str
    sha256: str
    status: Literal["scored", "skipped", "quarantined"]
    reason: str = ""
    model_version: int | None = None
    rows_total: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    positives: int = 0
    result_path: Path | None = None
    rejects_path: Path | None = None
    quarantine_path: Path | None = None
    histogram: list[int] = []
    tokens: int = 0
    oov_tokens: int = 0
    text_chars: int = 0


class Champion(BaseModel):
    """The champion model's version, folder and reference figures."""

    model_config = ConfigDict(frozen=True)

    version: int
    folder: Path
    model_sha256: str
    test_positive_rate: float
    reference: dict[str, float | None] = {}
    """Training data's oov_rate, mean_chars and mean_tokens (empty for older models)."""


def load_champion(registry_root: Path) -> Champion:
    """The current champion, every file checked against its manifest."""
    registry = Registry(registry_root)
    version = registry.champion()
    if version is None:
        raise PipelineError(f"no champion model in {registry_root}: run the retraining flow first")
    folder = registry.load_version(version)
    manifest = registry.manifest(version)
    reference = np.load(folder / "evaluation" / PROBABILITIES_FILE)
    return Champion(
        version=version,
        folder=folder,
        model_sha256=manifest["files"]["model.keras"],
        test_positive_rate=float(np.mean(reference >= THRESHOLD)),
        reference=manifest.get("reference") or {},
    )


class Ledger:
    """SQLite record of (content sha256, model version) pairs already scored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS scored ("
                " sha256 TEXT NOT NULL, model_version INTEGER NOT NULL,"
                " source_file TEXT NOT NULL, result_file TEXT NOT NULL,"
                " rows_scored INTEGER NOT NULL, rows_rejected INTEGER NOT NULL,"
                " scored_at TEXT NOT NULL, PRIMARY KEY (sha256, model_version))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def lookup(self, sha256: str, version: int) -> dict[str, Any] | None:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            row = db.execute(
                "SELECT * FROM scored WHERE sha256 = ? AND model_version = ?", (sha256, version)
            ).fetchone()
        return None if row is None else dict(row)

    def record(self, outcome: FileOutcome) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO scored VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    outcome.sha256,
                    outcome.model_version,
                    outcome.source_file,
                    str(outcome.result_path.name if outcome.result_path else ""),
                    outcome.rows_scored,
                    outcome.rows_rejected,
                    datetime.now(UTC).isoformat(),
                ),
            )

    def entries(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM scored ORDER BY scored_at")]


def files_to_score(folders: ScoringFolders, config: ScoringConfig, version: int) -> list[Path]:
    """Ready inbox files; with ``config.rescore``, also archived files that this champion
    version has not scored. Sweeps temporaries that killed runs left behind."""
    folders.create()
    for folder in (folders.results, folders.rejects, folders.quarantine, folders.archive):
        remove_temporary_files(folder)
    todo = ready_files(folders.inbox, config.settle_seconds)
    if config.rescore:
        ledger = Ledger(folders.ledger)
        for path in sorted(folders.archive.iterdir()):
            if path.is_file() and ledger.lookup(sha256_file(path), version) is None:
                todo.append(path)
    return todo


RESULT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("row_number", pa.int64()),
        pa.field("probability", pa.float32()),
        pa.field("label", pa.int8()),
        pa.field("model_version", pa.int32()),
        pa.field("scored_at", pa.timestamp("us", "UTC")),
        pa.field("source_file", pa.string()),
        pa.field("source_sha256", pa.string()),
    ]
)


class _ContractBreach(Exception):
    pass


def score_file(
    path: Path,
    folders: ScoringFolders,
    champion: Champion,
    config: ScoringConfig,
    *,
    check_input: FrameCheck | None = None,
    check_output: FrameCheck | None = None,
) -> FileOutcome:
    """Score one file exactly once (see the module docstring); bad files are quarantined.

    The file is streamed in chunks of ``config.chunk_rows`` rows into a temporary result
    that is renamed into place only when the whole file is scored, so memory stays flat and
    a reader never sees a partial result. ``check_input`` / ``check_output`` are the data
    contracts (the pipeline passes the GX suites), applied to each chunk: an input that
    breaks its contract quarantines the file with the contract's report; an output that
    breaks its contract raises and nothing is published.
    """
    folders.create()
    name = path.name
    sha = _content_sha256(path)
    archived = path.parent.resolve() == folders.archive.resolve()
    ledger = Ledger(folders.ledger)
    done = ledger.lookup(sha, champion.version)
    if done is not None:
        log.info("%s: already scored by model %d as %s; skipped", name, champion.version,
                 done["result_file"])  # fmt: skip
        if not archived:
            _archive(path, sha, folders)
        return FileOutcome(
            source_file=name, sha256=sha, status="skipped", model_version=champion.version,
            reason=f"same content already scored as {done['result_file']}",
        )  # fmt: skip

    started = time.perf_counter()
    stem = f"{safe_name(Path(name).stem)}.{sha[:12]}.v{champion.version}"
    result_path = folders.results / f"{stem}.parquet"
    totals = {"total": 0, "scored": 0, "positives": 0, "tokens": 0, "oov": 0, "chars": 0}
    histogram = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
    rejected: list[dict[str, object]] = []
    chunks = iter_rows(
        path,
        text_column=config.text_column,
        id_column=config.id_column,
        max_text_chars=config.max_text_chars,
        chunk_rows=config.chunk_rows,
    )
    try:
        with atomic_parquet_writer(result_path, RESULT_SCHEMA) as writer:
            for rows in chunks:
                if check_input is not None and rows.ids:
                    try:
                        check_input(_input_frame(rows))
                    except Exception as exc:  # whatever the contract raises, the file is wrong
                        raise _ContractBreach(str(exc)) from exc
                table, scored = _score_chunk(rows, champion, config, name, sha)
                if check_output is not None and table.num_rows:
                    check_output(table.to_pandas())
                writer.write_table(table)
                rejected += rows.rejected
                probabilities = scored["probability"]
                totals["total"] += rows.total
                totals["scored"] += table.num_rows
                totals["positives"] += int((probabilities >= THRESHOLD).sum())
                totals["tokens"] += scored["tokens"]
                totals["oov"] += scored["oov_tokens"]
                totals["chars"] += sum(len(t) for t in rows.texts)
                histogram += np.histogram(probabilities, bins=HISTOGRAM_BINS, range=(0, 1))[0]
            if totals["scored"] + len(rejected) != totals["total"]:
                raise PipelineError(
                    f"{name}: row counts do not reconcile: {totals['total']} read, "
                    f"{totals['scored']} scored, {len(rejected)} rejected"
                )
    except BadFile as exc:
        return _quarantine(path, sha, str(exc), folders)
    except _ContractBreach as exc:
        return _quarantine(path, sha, f"breaks the scoring_input contract: {exc}", folders)

    rejects_path = None
    if rejected:
        rejects_path = folders.rejects / f"{stem}.rejects.parquet"
        rejects = pd.DataFrame(rejected).assign(source_file=name, source_sha256=sha)
        atomic_write_parquet(rejects_path, pa.Table.from_pandas(rejects, preserve_index=False))
    outcome = FileOutcome(
        source_file=name,
        sha256=sha,
        status="scored",
        model_version=champion.version,
        rows_total=totals["total"],
        rows_scored=totals["scored"],
        rows_rejected=len(rejected),
        positives=totals["positives"],
        result_path=result_path,
        rejects_path=rejects_path,
        histogram=histogram.tolist(),
        tokens=totals["tokens"],
        oov_tokens=totals["oov"],
        text_chars=totals["chars"],
    )
    ledger.record(outcome)
    if not archived:
        _archive(path, sha, folders)
    log.info(
        "%s: %d rows scored, %d rejected by model %d in %.1f s -> %s",
        name, outcome.rows_scored, outcome.rows_rejected, champion.version,
        time.perf_counter() - started, result_path.name,
    )  # fmt: skip
    return outcome


@lru_cache(maxsize=2)
def _model_and_tokeniser(folder: Path, model_sha256: str) -> tuple[Any, Tokeniser]:
    from lstm_model.model import load_model

    return load_model(folder / "model.keras"), Tokeniser.load(folder / "tokenizer")


def _score_chunk(
    rows: Rows, champion: Champion, config: ScoringConfig, name: str, sha: str
) -> tuple[pa.Table, dict[str, Any]]:
    model, tokeniser = _model_and_tokeniser(champion.folder, champion.model_sha256)
    n = len(rows.texts)
    probabilities = np.zeros(n, dtype="float32")
    tokens = oov = 0
    # Tokenise a few batches at a time: the id matrix of a whole chunk (rows x maxlen
    # int32) would be the largest buffer of the run.
    step = config.batch_size * 8
    for begin in range(0, n, step):
        ids = tokeniser.encode(rows.texts[begin : begin + step])
        tokens += int(np.count_nonzero(ids))  # every id but padding (0)
        oov += int(np.count_nonzero(ids == OOV_ID))
        # predict_on_batch reuses one traced function and skips model.predict's data
        # pipeline: measured 1.65x the texts/s of model.predict here, same memory.
        for at in range(0, len(ids), config.batch_size):
            out = np.asarray(model.predict_on_batch(ids[at : at + config.batch_size])).ravel()
            probabilities[begin + at : begin + at + len(out)] = out
    now = datetime.now(UTC)
    table = pa.table(
        {
            "id": pa.array(rows.ids, pa.string()),
            "row_number": pa.array(rows.row_number, pa.int64()),
            "probability": pa.array(probabilities, pa.float32()),
            "label": pa.array((probabilities >= THRESHOLD).astype("int8"), pa.int8()),
            "model_version": pa.array([champion.version] * n, pa.int32()),
            "scored_at": pa.array([now] * n, pa.timestamp("us", "UTC")),
            "source_file": pa.array([name] * n, pa.string()),
            "source_sha256": pa.array([sha] * n, pa.string()),
        },
        schema=RESULT_SCHEMA,
    )
    return table, {"probability": probabilities, "tokens": tokens, "oov_tokens": oov}


def _input_frame(rows: Rows) -> pd.DataFrame:
    return pd.DataFrame({"id": rows.ids, "text": rows.texts, "row_number": rows.row_number})


def _content_sha256(path: Path) -> str:
    if path.is_symlink():  # never followed: the link's own text identifies it
        return sha256_text(os.readlink(path))
    return sha256_file(path)


def _archive(path: Path, sha: str, folders: ScoringFolders) -> Path:
    target = folders.archive / f"{sha[:12]}-{safe_name(path.name)}"
    os.replace(path, target)
    return target


def _quarantine(path: Path, sha: str, reason: str, folders: ScoringFolders) -> FileOutcome:
    target = folders.quarantine / f"{sha[:12]}-{safe_name(path.name)}"
    atomic_write_json(
        target.with_name(target.name + ".json"),
        {
            "source_file": path.name,
            "sha256": sha,
            "reason": reason,
            "quarantined_at": datetime.now(UTC).isoformat(),
        },
    )
    os.replace(path, target)
    log.warning("%s: quarantined: %s", path.name, reason)
    return FileOutcome(
        source_file=path.name, sha256=sha, status="quarantined", reason=reason,
        quarantine_path=target,
    )  # fmt: skip


class RunSummary(BaseModel):
    """Counts of one scoring run, reconciled, and where its report was written."""

    files: dict[str, int]
    rows_total: int
    rows_scored: int
    rows_rejected: int
    positive_rate: float | None
    oov_rate: float | None
    mean_chars: float | None
    warnings: list[str]
    report_path: Path
    histogram_path: Path | None


def summarise_run(
    outcomes: list[FileOutcome], champion: Champion, config: ScoringConfig, out_dir: Path
) -> RunSummary:
    """Reconcile the counts, draw the score histogram, write ``report.md``."""
    scored = [o for o in outcomes if o.status == "scored"]
    files = {s: sum(o.status == s for o in outcomes) for s in ("scored", "skipped", "quarantined")}
    rows_scored = sum(o.rows_scored for o in scored)
    rows_rejected = sum(o.rows_rejected for o in scored)
    rows_total = sum(o.rows_total for o in scored)
    if rows_scored + rows_rejected != rows_total:
        raise PipelineError(
            f"rows do not reconcile: {rows_total} != {rows_scored} + {rows_rejected}"
        )
    tokens = sum(o.tokens for o in scored)
    positive_rate = sum(o.positives for o in scored) / rows_scored if rows_scored else None
    warnings = []
    if positive_rate is not None:
        shift = abs(positive_rate - champion.test_positive_rate)
        if shift > config.max_score_shift:
            warnings.append(
                f"positive rate {positive_rate:.3f} differs from the champion's on its test "
                f"split ({champion.test_positive_rate:.3f}) by {shift:.3f}, more than "
                f"{config.max_score_shift:.3f}"
            )
    oov_rate = sum(o.oov_tokens for o in scored) / tokens if tokens else None
    mean_chars = sum(o.text_chars for o in scored) / rows_scored if rows_scored else None
    warnings += _drift(oov_rate, mean_chars, champion.reference, config)
    for warning in warnings:
        log.warning("scoring drift: %s", warning)
    out_dir.mkdir(parents=True, exist_ok=True)
    histogram_path = _histogram(scored, out_dir) if scored else None
    summary = RunSummary(
        files=files,
        rows_total=rows_total,
        rows_scored=rows_scored,
        rows_rejected=rows_rejected,
        positive_rate=positive_rate,
        oov_rate=oov_rate,
        mean_chars=mean_chars,
        warnings=warnings,
        report_path=out_dir / "report.md",
        histogram_path=histogram_path,
    )
    atomic_write_json(out_dir / "summary.json", summary.model_dump(mode="json"))
    (out_dir / "report.md").write_text(_render(summary, outcomes, champion))
    return summary


def _drift(
    oov_rate: float | None,
    mean_chars: float | None,
    reference: dict[str, float | None],
    config: ScoringConfig,
) -> list[str]:
    """Warnings where this run's texts differ from the training data past the bounds."""
    warnings = []
    train_oov, train_chars = reference.get("oov_rate"), reference.get("mean_chars")
    if (
        oov_rate is not None
        and train_oov is not None
        and oov_rate - train_oov > config.max_oov_shift
    ):
        warnings.append(
            f"out-of-vocabulary rate {oov_rate:.3f} exceeds the training data's "
            f"({train_oov:.3f}) by more than {config.max_oov_shift:.3f}"
        )
    if mean_chars and train_chars:
        ratio = max(mean_chars / train_chars, train_chars / mean_chars)
        if ratio > config.max_length_ratio:
            warnings.append(
                f"mean text length {mean_chars:.0f} characters against the training data's "
                f"{train_chars:.0f}: {ratio:.1f}x apart, more than {config.max_length_ratio:.1f}x"
            )
    return warnings


def _histogram(scored: list[FileOutcome], out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.sum([o.histogram for o in scored], axis=0)
    edges = np.linspace(0, 1, HISTOGRAM_BINS + 1)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(edges[:-1], counts, width=1 / HISTOGRAM_BINS, align="edge")
    ax.set_xlabel("probability of positive")
    ax.set_ylabel("texts")
    ax.set_title("scores of this run")
    fig.tight_layout()
    path = out_dir / "score_histogram.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _render(summary: RunSummary, outcomes: list[FileOutcome], champion: Champion) -> str:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    lines = [
        f"# Scoring run (champion model version {champion.version})",
        "",
        "| files scored | skipped (already scored) | quarantined |",
        "|---|---|---|",
        f"| {summary.files['scored']} | {summary.files['skipped']} | "
        f"{summary.files['quarantined']} |",
        "",
        "| rows read | scored | rejected |",
        "|---|---|---|",
        f"| {summary.rows_total} | {summary.rows_scored} | {summary.rows_rejected} |",
        "",
        "| drift | this run | reference |",
        "|---|---|---|",
        f"| positive rate | {pct(summary.positive_rate)} | "
        f"{pct(champion.test_positive_rate)} (champion on its test split) |",
        f"| out-of-vocabulary rate | {pct(summary.oov_rate)} | "
        f"{pct(champion.reference.get('oov_rate'))} (training data) |",
        f"| mean characters per text | {num(summary.mean_chars)} | "
        f"{num(champion.reference.get('mean_chars'))} (training data) |",
        "",
    ]
    lines += [f"**Warning:** {w}" for w in summary.warnings]
    lines += [
        "",
        "| file | status | rows | scored | rejected | note |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {o.source_file} | {o.status} | {o.rows_total} | {o.rows_scored} | "
        f"{o.rows_rejected} | {o.reason.replace('|', '/')[:120]} |"
        for o in outcomes
    ]
    return "\n".join(lines) + "\n"
