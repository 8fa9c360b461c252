"""Batch scoring of dropped files with the champion model, exactly once.

Layout under the scoring root: ``inbox/`` (users drop files), ``results/`` (one Parquet per
scored file), ``rejects/`` (bad rows of good files, with reasons), ``quarantine/`` (whole
bad files, each with a JSON sidecar saying why), ``archive/`` (inputs once done),
``ledger.sqlite``, ``locks/`` and ``staging/`` (parts of files scored on Dask, see
``scoring_parts``).

Exactly once: the ledger is keyed by (content sha256, model version). Per file the order
is: result and rejects written atomically under names fixed by the content hash and the
model version -> ledger row committed -> input moved to the archive. A run killed at any
point leaves the input in the inbox; the next run either finds the ledger row (and only
archives the input) or scores it again into the same names, so each row ends up in exactly
one result file, and no temporary file survives (they are swept at the start of a run).
Deciding whether a (content, version) is scored and publishing it happen under its lock
(``claim``), so runs that overlap score each file once.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import (
    atomic_parquet_writer,
    atomic_write_json,
    atomic_write_parquet,
    exclusive_lock,
    remove_temporary_files,
    sha256_file,
    sha256_text,
)
from lstm_model.config import ScoringConfig
from lstm_model.errors import DataContractError, PipelineError
from lstm_model.evaluate import PROBABILITIES_FILE, THRESHOLD
from lstm_model.inbox import BadFile, Rows, iter_rows, ready_files, safe_name
from lstm_model.registry import Registry
from lstm_model.tokeniser import OOV_ID, Tokeniser

log = logging.getLogger(__name__)

FOLDERS = ("inbox", "results", "rejects", "quarantine", "archive")
HISTOGRAM_BINS = 20
FrameCheck = Callable[[pd.DataFrame], None]
"""A contract over a frame; raises DataContractError (with the reason) when the frame
breaks it."""


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

    @property
    def staging(self) -> Path:
        """Input and scored parts of files being scored in parallel (see scoring_parts)."""
        return self.root / "staging"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    def create(self) -> None:
        for name in (*FOLDERS, "staging", "locks"):
            (self.root / name).mkdir(parents=True, exist_ok=True)


class ScoreTally(BaseModel):
    """Running figures of the rows scored so far: counts, score histogram and drift inputs."""

    rows_scored: int = 0
    positives: int = 0
    histogram: list[int] = [0] * HISTOGRAM_BINS
    tokens: int = 0
    oov_tokens: int = 0
    text_chars: int = 0

    def __add__(self, other: ScoreTally) -> ScoreTally:
        return ScoreTally(
            rows_scored=self.rows_scored + other.rows_scored,
            positives=self.positives + other.positives,
            histogram=[a + b for a, b in zip(self.histogram, other.histogram, strict=True)],
            tokens=self.tokens + other.tokens,
            oov_tokens=self.oov_tokens + other.oov_tokens,
            text_chars=self.text_chars + other.text_chars,
        )


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


def scored_outcome(
    name: str,
    sha: str,
    version: int,
    rows_total: int,
    tally: ScoreTally,
    result_path: Path,
    rejects_path: Path | None,
    rows_rejected: int,
) -> FileOutcome:
    """The outcome of a scored file whose rows reconcile; raises PipelineError otherwise."""
    if tally.rows_scored + rows_rejected != rows_total:
        raise PipelineError(
            f"{name}: row counts do not reconcile: {rows_total} read, "
            f"{tally.rows_scored} scored, {rows_rejected} rejected"
        )
    return FileOutcome(
        source_file=name,
        sha256=sha,
        status="scored",
        model_version=version,
        rows_total=rows_total,
        rows_rejected=rows_rejected,
        result_path=result_path,
        rejects_path=rejects_path,
        **tally.model_dump(),
    )


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
    for staged in folders.staging.iterdir():  # parts of killed attempts at published files
        stem = staged.name.rsplit(".", 1)[0]
        if (folders.results / f"{stem}.parquet").exists():
            discard_staging(folders, stem)
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
    try:
        sha = content_sha256(path)
    except FileNotFoundError:
        return gone(path)
    with claim(folders, sha, champion.version):
        done = already_scored(path, sha, folders, champion)
        if done is not None:
            return done
        started = time.perf_counter()
        result_path, rejects_path = result_paths(path.name, sha, champion.version, folders)
        tally, rows_total, rejected = ScoreTally(), 0, []
        try:
            with atomic_parquet_writer(result_path, RESULT_SCHEMA) as writer:
                for rows in read_chunks(path, config):
                    check_rows(rows, check_input)
                    table, chunk = score_rows(rows, champion, config, path.name, sha)
                    if check_output is not None and table.num_rows:
                        check_output(table.to_pandas())
                    writer.write_table(table)
                    tally, rows_total = tally + chunk, rows_total + rows.total
                    rejected += rows.rejected
                # inside the writer block, so that counts that do not add up publish nothing
                outcome = scored_outcome(
                    path.name, sha, champion.version, rows_total, tally, result_path,
                    rejects_path if rejected else None, len(rejected),
                )  # fmt: skip
        except BadFile as exc:
            return quarantine(path, sha, str(exc), folders)
        except ContractBreach as exc:
            return quarantine(path, sha, f"breaks the scoring_input contract: {exc}", folders)
        if rejected:
            write_rejects(rejects_path, pd.DataFrame(rejected), path.name, sha)
        publish(path, outcome, folders)
    log.info(
        "%s: %d rows scored, %d rejected by model %d in %.1f s -> %s",
        path.name, outcome.rows_scored, outcome.rows_rejected, champion.version,
        time.perf_counter() - started, result_path.name,
    )  # fmt: skip
    return outcome


@contextmanager
def claim(folders: ScoringFolders, sha: str, version: int) -> Iterator[None]:
    """Hold the lock of one (content, model version): one process at a time decides
    whether it is scored and publishes it, so overlapping runs never score it twice."""
    with exclusive_lock(_lock_path(folders, sha, version)):
        yield


def _lock_path(folders: ScoringFolders, sha: str, version: int) -> Path:
    return folders.locks / f"{sha}.v{version}.lock"


def already_scored(
    path: Path, sha: str, folders: ScoringFolders, champion: Champion
) -> FileOutcome | None:
    """A "skipped" outcome if this content is in the ledger for this model version (the
    input is archived) or was moved away by another run; None if it is to be scored.
    Call it under ``claim``."""
    done = Ledger(folders.ledger).lookup(sha, champion.version)
    if done is None and path.exists():
        return None
    if done is None:
        return gone(path, sha)
    reason = f"same content already scored as {done['result_file']}"
    if path.exists() and not _is_archived(path, folders):
        _archive(path, sha, folders)
    _lock_path(folders, sha, champion.version).unlink(missing_ok=True)
    log.info("%s: skipped: %s", path.name, reason)
    return FileOutcome(
        source_file=path.name, sha256=sha, status="skipped", model_version=champion.version,
        reason=reason,
    )  # fmt: skip


def gone(path: Path, sha: str = "") -> FileOutcome:
    """The outcome of a file that another run moved away (archived or quarantined)
    between this run's listing and its turn: that run accounts for its rows."""
    reason = "moved out of the inbox by another run before this one could read it"
    log.info("%s: skipped: %s", path.name, reason)
    return FileOutcome(source_file=path.name, sha256=sha, status="skipped", reason=reason)


def result_paths(name: str, sha: str, version: int, folders: ScoringFolders) -> tuple[Path, Path]:
    """Where a file's result and rejects go: names fixed by its content and the model."""
    stem = f"{safe_name(Path(name).stem)}.{sha[:12]}.v{version}"
    return folders.results / f"{stem}.parquet", folders.rejects / f"{stem}.rejects.parquet"


def read_chunks(path: Path, config: ScoringConfig) -> Iterator[Rows]:
    """The file's rows in chunks of ``config.chunk_rows``, checked by the row rules."""
    return iter_rows(
        path,
        text_column=config.text_column,
        id_column=config.id_column,
        max_text_chars=config.max_text_chars,
        chunk_rows=config.chunk_rows,
    )


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


def write_rejects(path: Path, rejected: pd.DataFrame, name: str, sha: str) -> None:
    """Publish a file's rejected rows with their reasons, atomically."""
    table = rejected.assign(source_file=name, source_sha256=sha)
    atomic_write_parquet(path, pa.Table.from_pandas(table, preserve_index=False))


def publish(path: Path, outcome: FileOutcome, folders: ScoringFolders) -> None:
    """Record a scored file in the ledger, then archive its input. Call it under ``claim``
    once the result and rejects are in place."""
    Ledger(folders.ledger).record(outcome)
    if not _is_archived(path, folders):
        _archive(path, outcome.sha256, folders)
    if outcome.result_path is not None:
        discard_staging(folders, outcome.result_path.stem)
    # Safe only now the ledger has the row: whoever takes a fresh lock skips this content.
    _lock_path(folders, outcome.sha256, outcome.model_version or 0).unlink(missing_ok=True)


def discard_staging(folders: ScoringFolders, result_stem: str) -> None:
    """Remove the staging folders of every attempt at one result (``<stem>.<token>``)."""
    for folder in folders.staging.glob(f"{result_stem}.*"):
        shutil.rmtree(folder, ignore_errors=True)


def _is_archived(path: Path, folders: ScoringFolders) -> bool:
    return path.parent.resolve() == folders.archive.resolve()


@lru_cache(maxsize=2)
def _model_and_tokeniser(folder: Path, model_sha256: str) -> tuple[Any, Tokeniser]:
    from lstm_model.model import load_model

    return load_model(folder / "model.keras"), Tokeniser.load(folder / "tokenizer")


def score_rows(
    rows: Rows, champion: Champion, config: ScoringConfig, name: str, sha: str
) -> tuple[pa.Table, ScoreTally]:
    """Score accepted rows with the champion: the result table and its tally."""
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
    labels = (probabilities >= THRESHOLD).astype("int8")
    table = pa.table(
        {
            "id": pa.array(rows.ids, pa.string()),
            "row_number": pa.array(rows.row_number, pa.int64()),
            "probability": pa.array(probabilities, pa.float32()),
            "label": pa.array(labels, pa.int8()),
            "model_version": pa.array([champion.version] * n, pa.int32()),
            "scored_at": pa.array([now] * n, pa.timestamp("us", "UTC")),
            "source_file": pa.array([name] * n, pa.string()),
            "source_sha256": pa.array([sha] * n, pa.string()),
        },
        schema=RESULT_SCHEMA,
    )
    tally = ScoreTally(
        rows_scored=n,
        positives=int(labels.sum()),
        histogram=np.histogram(probabilities, bins=HISTOGRAM_BINS, range=(0, 1))[0].tolist(),
        tokens=tokens,
        oov_tokens=oov,
        text_chars=sum(len(t) for t in rows.texts),
    )
    return table, tally


def score_texts(registry_root: Path, texts: list[str], scratch: Path) -> np.ndarray:
    """Probabilities of ``texts`` from the nightly path itself: the texts dropped as a JSONL
    file into an inbox under ``scratch`` and scored by the champion (parity checks)."""
    folders = ScoringFolders(root=scratch)
    folders.create()
    lines = "\n".join(json.dumps({"text": t}) for t in texts) + "\n"
    (folders.inbox / "texts.jsonl").write_text(lines, encoding="utf-8")
    config = ScoringConfig(settle_seconds=0)
    champion = load_champion(registry_root)
    [path] = files_to_score(folders, config, champion.version)
    outcome = score_file(path, folders, champion, config)
    if outcome.status != "scored" or outcome.rows_scored != len(texts):
        raise PipelineError(f"scoring {len(texts)} texts gave {outcome.model_dump()}")
    result = pq.read_table(outcome.result_path, columns=["row_number", "probability"])
    return result.sort_by("row_number")["probability"].to_numpy()


def _input_frame(rows: Rows) -> pd.DataFrame:
    return pd.DataFrame({"id": rows.ids, "text": rows.texts, "row_number": rows.row_number})


def content_sha256(path: Path) -> str:
    """The sha256 of a dropped file's bytes (of a symbolic link's target text)."""
    if path.is_symlink():  # never followed: the link's own text identifies it
        return sha256_text(os.readlink(path))
    return sha256_file(path)


def _archive(path: Path, sha: str, folders: ScoringFolders) -> Path:
    target = folders.archive / f"{sha[:12]}-{safe_name(path.name)}"
    os.replace(path, target)
    return target


def quarantine(path: Path, sha: str, reason: str, folders: ScoringFolders) -> FileOutcome:
    """Move a bad file to quarantine/ with a JSON sidecar that says what is wrong."""
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
