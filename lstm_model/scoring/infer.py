"""The champion model, checked on its canary texts, and scoring rows with it. Rows the
model scores as NaN, infinite or outside [0, 1] are rejected ("model output is not a
probability").

Every process that scores (the flow's, and each Dask worker) loads the model for itself,
once: from copies of its files made while hashing them against the version's trusted
manifest (signed, when a signing key is set), then checked on the canary texts, so no
process ever scores with a model it has not verified.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import NotRegularFile, open_regular
from lstm_model.data.drops import (
    Dropped,
    Reject,
    Rows,
    reject,
)
from lstm_model.data.tokeniser import OOV_ID, Tokeniser
from lstm_model.errors import ArtifactError, PipelineError
from lstm_model.evaluation.evaluate import PROBABILITIES_FILE
from lstm_model.model.labels import THRESHOLD
from lstm_model.release import layout
from lstm_model.release.canary import verify_canary
from lstm_model.release.registry import Registry
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.outcomes import HISTOGRAM_BINS, ScoreTally

NOT_A_PROBABILITY = "model output is not a probability"

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


class ScoringModel(BaseModel):
    """The registry's champion as scoring uses it: its version, folder, model hash, and the
    figures of its training data that drift is measured against."""

    model_config = ConfigDict(frozen=True)

    version: int
    folder: Path
    model_sha256: str
    test_positive_rate: float
    training_figures: dict[str, float | None] = {}
    """Training data's oov_rate, mean_chars and mean_tokens (empty for older models)."""


def load_scoring_model(registry_root: Path) -> ScoringModel:
    """The current champion, every file checked against its (signed) manifest, and its
    Keras model checked on the canary texts before any file is scored."""
    registry = Registry(registry_root)
    version = registry.champion()
    if version is None:
        raise PipelineError(f"no champion model in {registry_root}: run the retraining flow first")
    # Leased for this process's life: retention keeps the files this run's workers read.
    registry.hold(version, "scoring run")
    folder = registry.load_version(version)
    manifest = registry.trusted_manifest(version)
    _model_and_tokeniser(folder, manifest["files"][layout.MODEL])  # verified, in this process
    reference = np.load(folder / layout.EVALUATION_DIR / PROBABILITIES_FILE)
    return ScoringModel(
        version=version,
        folder=folder,
        model_sha256=manifest["files"][layout.MODEL],
        test_positive_rate=float(np.mean(reference >= THRESHOLD)),
        training_figures=manifest.get("reference") or {},  # its stored key
    )


@lru_cache(maxsize=2)
def _model_and_tokeniser(folder: Path, model_sha256: str) -> tuple[Any, Tokeniser]:
    """The Keras model and tokeniser of the version at ``folder``, once per process (see
    the module docstring). ``model_sha256`` is the model's hash as the run verified it: a
    manifest that now names another model is refused. Raises ArtifactError (a file that
    differs from the manifest, a bad signature) or ModelOutputError (the canary texts)."""
    from lstm_model.model.builders import load_model, predict_ids

    registry, version = Registry(folder.parent.parent), int(folder.name)
    manifest = registry.trusted_manifest(version)
    files: dict[str, str] = manifest["files"]
    if registry.path(version) != folder or files.get(layout.MODEL) != model_sha256:
        raise ArtifactError(
            f"model version {version}: its manifest no longer names the model this run "
            "verified; refusing it"
        )
    names = [layout.MODEL, *sorted(n for n in files if n.startswith(f"{layout.TOKENISER_DIR}/"))]
    with tempfile.TemporaryDirectory(prefix=f"lstm-scoring-v{version}-") as scratch:
        copy = Path(scratch)
        for name in names:
            _copy_verified(folder, copy, name, files[name], f"model version {version}")
        model = load_model(copy / layout.MODEL)  # read whole: the copy may go afterwards
        tokeniser = Tokeniser.load(copy / layout.TOKENISER_DIR)
    verify_canary(
        lambda texts: predict_ids(model, tokeniser.encode(list(texts))),
        manifest.get("canary"),
        "keras",
        f"model version {version}",
    )
    return model, tokeniser


def _copy_verified(folder: Path, copy: Path, name: str, expected: str, what: str) -> None:
    """Copy ``folder/name`` (a regular file, never a link) to ``copy/name`` while hashing
    it; ArtifactError unless the bytes copied hash to ``expected``."""
    try:
        reader = open_regular(folder / name)
    except (NotRegularFile, OSError) as exc:
        raise ArtifactError(f"{what}: {name} cannot be read ({type(exc).__name__})") from exc
    target = copy / name
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with reader, target.open("wb") as writer:
        while piece := reader.read(1 << 20):
            digest.update(piece)
            writer.write(piece)
    if digest.hexdigest() != expected:
        raise ArtifactError(
            f"{what}: {name} has sha256 {digest.hexdigest()[:12]}…, the manifest says "
            f"{expected[:12]}…; refusing a tampered model"
        )


class ScoredRows(NamedTuple):
    """Accepted rows once scored: the result table, its tally, and the rows rejected
    because the model's output for them is not a probability."""

    table: pa.Table
    tally: ScoreTally
    rejected: list[Reject]


def score_rows(
    rows: Rows, champion: ScoringModel, config: ScoringConfig, entry: Dropped
) -> ScoredRows:
    """Score accepted rows with the champion. A row whose output is NaN, infinite or
    outside [0, 1] is rejected; a wrong number of outputs raises ModelOutputError."""
    from lstm_model.model.builders import predict_ids

    model, tokeniser = _model_and_tokeniser(champion.folder, champion.model_sha256)
    n = len(rows.texts)
    probabilities = np.zeros(n, dtype="float32")
    tokens, oov = np.zeros(n, dtype="int64"), np.zeros(n, dtype="int64")
    # Tokenise a few batches at a time: the id matrix of a whole chunk (rows x maxlen
    # int32) would be the largest buffer of the run.
    step = config.batch_size * 8
    for begin in range(0, n, step):
        ids = tokeniser.encode(rows.texts[begin : begin + step])
        tokens[begin : begin + len(ids)] = np.count_nonzero(ids, axis=1)  # all but padding
        oov[begin : begin + len(ids)] = np.count_nonzero(ids == OOV_ID, axis=1)
        probabilities[begin : begin + len(ids)] = predict_ids(model, ids, config.batch_size)
    valid = np.isfinite(probabilities) & (probabilities >= 0) & (probabilities <= 1)
    rejected = [
        reject(rows.row_number[i], rows.ids[i], NOT_A_PROBABILITY, rows.texts[i],
               config.reject_text_chars, rows.row_sha256[i])
        for i in np.flatnonzero(~valid)
    ]  # fmt: skip
    keep = np.flatnonzero(valid)
    scored = probabilities[keep]
    labels = (scored >= THRESHOLD).astype("int8")
    now, count = datetime.now(UTC), len(keep)
    table = pa.table(
        {
            "id": pa.array([rows.ids[i] for i in keep], pa.string()),
            "row_number": pa.array([rows.row_number[i] for i in keep], pa.int64()),
            "probability": pa.array(scored, pa.float32()),
            "label": pa.array(labels, pa.int8()),
            "model_version": pa.array([champion.version] * count, pa.int32()),
            "scored_at": pa.array([now] * count, pa.timestamp("us", "UTC")),
            "source_file": pa.array([entry.name] * count, pa.string()),
            "source_sha256": pa.array([entry.sha256] * count, pa.string()),
        },
        schema=RESULT_SCHEMA,
    )
    tally = ScoreTally(
        rows_scored=count,
        positives=int(labels.sum()),
        histogram=np.histogram(scored, bins=HISTOGRAM_BINS, range=(0, 1))[0].tolist(),
        tokens=int(tokens[keep].sum()),
        oov_tokens=int(oov[keep].sum()),
        text_chars=sum(len(rows.texts[i]) for i in keep),
    )
    return ScoredRows(table, tally, rejected)
