"""From a trained candidate to the champion: register, gate, export with parity, promote.

Each function is one step of the retraining flow and records its outcome in the
registry, so a rejected candidate stays listed with the reason.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import read_manifest
from lstm_model.data.dataset import TokenisedResult
from lstm_model.data.ingest import IngestResult, load_reviews
from lstm_model.data.spans import Span
from lstm_model.data.tokeniser import TOKENIZER_FILE, VOCAB_FILE, Tokeniser
from lstm_model.errors import PipelineError
from lstm_model.evaluation.baseline import BaselineResult
from lstm_model.evaluation.config import GateConfig
from lstm_model.evaluation.evaluate import PROBABILITIES_FILE, EvaluationResult
from lstm_model.evaluation.gate import (
    GateDecision,
    GateFailed,
    compare_slice,
    decide,
    with_slices,
)
from lstm_model.evaluation.slices import Predictor, domain_slices
from lstm_model.model.config import ModelConfig
from lstm_model.release import layout
from lstm_model.release.canary import record_canary
from lstm_model.release.config import ExportConfig
from lstm_model.release.export import (
    ParityResult,
    check_parity,
    export_model,
    saved_model_predict,
    tflite_predict,
)
from lstm_model.release.registry import Registry, Status
from lstm_model.training.config import TrainConfig
from lstm_model.training.fingerprint import Fingerprint, build_fingerprint
from lstm_model.training.result import HISTORY_FILE, TrainResult

log = logging.getLogger(__name__)


class ParityFailed(PipelineError):
    """An exported model disagrees with the Keras model beyond the tolerance."""


class PreviousBuild(BaseModel):
    """A registered version built from the same fingerprint as a retrain would be."""

    model_config = ConfigDict(frozen=True)

    version: int
    status: Status
    reason: str
    champion: int | None

    def describe(self) -> str:
        if self.status == "rejected":
            return (
                f"nothing new since version {self.version}, which was built from the same "
                f"data, config and code and rejected ({self.reason}): not trained again; "
                "set force to train it anyway"
            )
        return f"nothing new since version {self.version} ({self.status}: {self.reason})"


# A version counts as built once its gate decided: "candidate" is a run that died half
# way (or is still running), and retraining it is how it gets finished.
DECIDED: frozenset[Status] = frozenset({"champion", "accepted", "retired", "rejected"})


def previous_build(registry_root: Path, fingerprint: Fingerprint) -> PreviousBuild | None:
    """The version already built from ``fingerprint``: the champion if it is one, else
    the newest decided version; None when no version has it."""
    registry = Registry(registry_root)
    if not registry.versions_dir.is_dir():
        return None
    champion = registry.champion()
    numbers = sorted(
        (int(p.name) for p in registry.versions_dir.iterdir() if p.name.isdigit()),
        key=lambda number: (number == champion, number),
        reverse=True,
    )
    for number in numbers:
        try:
            manifest = registry.trusted_manifest(number)
            status = registry.status(number)
        except PipelineError as error:  # a version that cannot be vouched for was not built
            log.warning("model version %d is not considered as built: %s", number, error)
            continue
        built_from = (manifest.get("fingerprint") or {}).get("sha256")
        state = "champion" if number == champion else status["status"]
        if built_from == fingerprint.sha256 and state in DECIDED:
            return PreviousBuild(
                version=number,
                status=state,
                reason=status.get("reason", ""),
                champion=champion,
            )
    return None


def register_candidate(
    registry_root: Path,
    trained: TrainResult,
    evaluation: EvaluationResult,
    tokenised: TokenisedResult,
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    baseline: BaselineResult | None = None,
    fingerprint: Fingerprint | None = None,
) -> int:
    """Copy the model, its tokeniser and its evaluation into a new registry version; its
    manifest records the fingerprint of the build (see ``previous_build``): the one given,
    else that of training on the tokenised reviews as they are (no labelled spans)."""
    if fingerprint is None:
        fingerprint = build_fingerprint(
            tokenised.reviews_sha256, tokenised.config, model_config, train_config
        )
    evaluation_dir = evaluation.report_path.parent
    files = {
        layout.MODEL: trained.model_path,
        f"tokenizer/{TOKENIZER_FILE}": tokenised.tokeniser_dir / TOKENIZER_FILE,
        f"tokenizer/{VOCAB_FILE}": tokenised.tokeniser_dir / VOCAB_FILE,
        f"{layout.TRAINING_DIR}/{HISTORY_FILE}": trained.run_dir / HISTORY_FILE,
        layout.EVALUATION_DIR: evaluation_dir,
    }
    return Registry(registry_root).register(
        files,
        metadata={
            "data": {
                "reviews_sha256": tokenised.reviews_sha256,
                "tokenised_sha256": tokenised.sha256,
                "vocab_sha256": tokenised.vocab_sha256,
            },
            "config": {
                "tokeniser": tokenised.config.model_dump(mode="json"),
                "model": model_config.model_dump(mode="json"),
                "train": train_config.model_dump(mode="json"),
            },
            "fingerprint": fingerprint.model_dump(),
            "metrics": evaluation.metrics.model_dump(),
            "slices": [s.model_dump() for s in evaluation.slices],
            "reference": _reference_figures(tokenised),
            "baseline": None if baseline is None else baseline.metrics.model_dump(),
            "training": trained.model_dump(mode="json", exclude={"history"}),
            "canary": record_canary(
                _keras_predictor(trained.model_path, tokenised.tokeniser_dir), "keras"
            ),
        },
    )


def _keras_predictor(model_path: Path, tokeniser_dir: Path):  # type: ignore[no-untyped-def]
    from lstm_model.model.builders import load_model, predict_ids

    model, tokeniser = load_model(model_path), Tokeniser.load(tokeniser_dir)
    return lambda texts: predict_ids(model, tokeniser.encode(list(texts)))


def _reference_figures(tokenised: TokenisedResult) -> dict[str, float | None]:
    """The training data's figures that scoring compares new texts with (drift)."""
    details = read_manifest(tokenised.tokeniser_dir).details
    return {key: details.get(key) for key in ("oov_rate", "mean_chars", "mean_tokens")}


def gate_candidate(
    registry_root: Path, version: int, config: GateConfig, spans: Sequence[Span] = ()
) -> GateDecision:
    """Decide on a registered candidate; a failure marks it rejected and raises GateFailed.
    With ``config.slice_gate``, each domain's test share in ``spans`` is scored now by the
    candidate and by the champion's exported model (TFLite), so new slices count too."""
    registry = Registry(registry_root)
    manifest = registry.manifest(version)
    accuracy = manifest["metrics"]["accuracy"]
    baseline = (manifest.get("baseline") or {}).get("accuracy")
    champion = registry.champion()
    decision = decide(
        accuracy,
        None
        if champion is None
        else (champion, registry.manifest(champion)["metrics"]["accuracy"]),
        config,
        baseline,
    )
    slices = domain_slices(list(spans)) if config.slice_gate and champion is not None else []
    if slices and champion is not None:
        candidate = _keras_version_predictor(registry, version)
        champion_predict = _tflite_version_predictor(registry, champion)
        comparisons = [
            compare_slice(
                part.slice,
                np.asarray(part.labels),
                candidate(part.texts),
                champion_predict(part.texts),
                config.max_regression,
                config.slice_confidence,
            )
            for part in slices
        ]
        decision = with_slices(decision, comparisons, config)
    log.info("model version %d: %s", version, decision.describe())
    if not decision.passed:
        registry.set_status(version, "rejected", decision.describe())
        raise GateFailed(f"model version {version} rejected: {decision.describe()}")
    registry.set_status(version, "candidate", decision.describe())
    return decision


def _keras_version_predictor(registry: Registry, version: int) -> Predictor:
    folder = registry.load_version(version)
    return _keras_predictor(folder / layout.MODEL, folder / layout.TOKENISER_DIR)


def _tflite_version_predictor(registry: Registry, version: int) -> Predictor:
    folder = registry.load_version(version)
    tokeniser = Tokeniser.load(folder / layout.TOKENISER_DIR)
    return lambda texts: tflite_predict(folder / layout.TFLITE, tokeniser.encode(list(texts)))


def export_candidate(
    registry_root: Path, version: int, reviews: IngestResult, config: ExportConfig
) -> ParityResult:
    """Export a gated candidate beside it and check parity on the whole test split.

    Parity: raw test texts through the SavedModel, and through ``Tokeniser`` + TFLite,
    against the Keras probabilities saved at evaluation; the mobile file by its accuracy.
    Failing it marks the version rejected and raises ParityFailed; passing it seals the
    manifest and accepts it.
    """
    registry = Registry(registry_root)
    folder = registry.path(version)
    if (folder / layout.EXPORT_DIR).exists() and "parity" not in registry.manifest(version):
        shutil.rmtree(folder / layout.EXPORT_DIR)  # left by an export that died: start it again
    folder = registry.load_version(version)
    tokeniser_dir = folder / layout.TOKENISER_DIR
    exported = export_model(
        folder / layout.MODEL, tokeniser_dir, folder / layout.EXPORT_DIR, version, config
    )
    table = load_reviews(reviews, columns=["split", "text", "label"])
    test = table.filter(pc.equal(table["split"], "test"))
    texts = test["text"].to_pylist()
    expected = np.load(folder / layout.EVALUATION_DIR / PROBABILITIES_FILE)
    if len(expected) != len(texts):
        raise PipelineError(
            f"model version {version} was evaluated on {len(expected)} test reviews but the "
            f"reviews hold {len(texts)}: pass the reviews it was trained on"
        )
    parity = check_parity(
        exported,
        tokeniser_dir,
        texts,
        expected,
        config.parity_tolerance,
        labels=test["label"].to_numpy(),
        accuracy_tolerance=config.mobile_accuracy_tolerance,
    )
    tokeniser = Tokeniser.load(tokeniser_dir)
    canary = record_canary(
        lambda t: saved_model_predict(exported.saved_model_dir, t),
        "saved_model",
        registry.manifest(version).get("canary"),
    )
    canary = record_canary(
        lambda t: tflite_predict(exported.tflite_path, tokeniser.encode(list(t))), "tflite", canary
    )
    registry.seal(
        version,
        {
            "export": {**config.model_dump(mode="json"), "seconds": round(exported.seconds, 2)},
            "parity": parity.model_dump(),
            "canary": canary,
        },
    )
    if not parity.passed:
        registry.set_status(version, "rejected", parity.describe())
        raise ParityFailed(f"model version {version} not promoted: {parity.describe()}")
    registry.set_status(version, "accepted", parity.describe())
    return parity


def promote_candidate(registry_root: Path, version: int, config: ExportConfig) -> int:
    """Make an accepted version the champion; return it."""
    Registry(registry_root).promote(version, config.model_name)
    return version


def rollback_champion(registry_root: Path, config: ExportConfig) -> int:
    """Restore the previous champion; return its version."""
    return Registry(registry_root).rollback(config.model_name)
