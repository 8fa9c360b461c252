"""The champion model, checked on its canary texts, and scoring rows with it. Rows the
model scores as NaN, infinite or outside [0, 1] are rejected ("model output is not a
probability")."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from lstm_model.data.tokeniser import OOV_ID, Tokeniser
from lstm_model.errors import PipelineError
from lstm_model.evaluation.evaluate import PROBABILITIES_FILE
from lstm_model.model.labels import THRESHOLD
from lstm_model.release import layout
from lstm_model.release.canary import ModelOutputError, verify_canary
from lstm_model.release.registry import Registry
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.inbox import (
    Reject,
    Rows,
    reject,
)
from lstm_model.scoring.outcomes import HISTOGRAM_BINS, Dropped, ScoreTally

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
    """The current champion, every file checked against its (signed) manifest, and its
    Keras model checked on the canary texts before any file is scored."""
    from lstm_model.model.builders import predict_ids

    registry = Registry(registry_root)
    version = registry.champion()
    if version is None:
        raise PipelineError(f"no champion model in {registry_root}: run the retraining flow first")
    folder = registry.load_version(version)
    manifest = registry.trusted_manifest(version)
    model, tokeniser = _model_and_tokeniser(folder, manifest["files"][layout.MODEL])
    verify_canary(
        lambda texts: predict_ids(model, tokeniser.encode(list(texts))),
        manifest.get("canary"),
        "keras",
        f"model version {version}",
    )
    reference = np.load(folder / layout.EVALUATION_DIR / PROBABILITIES_FILE)
    return Champion(
        version=version,
        folder=folder,
        model_sha256=manifest["files"][layout.MODEL],
        test_positive_rate=float(np.mean(reference >= THRESHOLD)),
        reference=manifest.get("reference") or {},
    )


@lru_cache(maxsize=2)
def _model_and_tokeniser(folder: Path, model_sha256: str) -> tuple[Any, Tokeniser]:
    from lstm_model.model.builders import load_model

    return load_model(folder / layout.MODEL), Tokeniser.load(folder / layout.TOKENISER_DIR)


class ScoredRows(NamedTuple):
    """Accepted rows once scored: the result table, its tally, and the rows rejected
    because the model's output for them is not a probability."""

    table: pa.Table
    tally: ScoreTally
    rejected: list[Reject]


def score_rows(rows: Rows, champion: Champion, config: ScoringConfig, entry: Dropped) -> ScoredRows:
    """Score accepted rows with the champion. A row whose output is NaN, infinite or
    outside [0, 1] is rejected; a wrong number of outputs raises ModelOutputError."""
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
        # predict_on_batch reuses one traced function and skips model.predict's data
        # pipeline: measured 1.65x the texts/s of model.predict here, same memory.
        for at in range(0, len(ids), config.batch_size):
            batch = ids[at : at + config.batch_size]
            out = np.asarray(model.predict_on_batch(batch)).ravel()
            if len(out) != len(batch):
                raise ModelOutputError(
                    f"the model gave {len(out)} outputs for a batch of {len(batch)} texts"
                )
            probabilities[begin + at : begin + at + len(out)] = out
    valid = np.isfinite(probabilities) & (probabilities >= 0) & (probabilities <= 1)
    rejected = [
        reject(rows.row_number[i], rows.ids[i], NOT_A_PROBABILITY, rows.texts[i],
               config.reject_text_chars)
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
