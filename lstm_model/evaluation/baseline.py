"""The linear baseline every candidate is compared with: TF-IDF word n-grams + logistic
regression (scikit-learn), fit on the same training rows as the model.

It sees the text through the one tokeniser's normalisation, trains on the train split
minus the same seeded validation share as the model, and is scored on the test split.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import (
    atomic_write_json,
    find_valid_artifact,
    sha256_text,
    staged_artifact,
    write_manifest,
)
from lstm_model.data.ingest import IngestResult, load_reviews
from lstm_model.data.splits import id_blocks, stratified_split
from lstm_model.data.tokeniser import TextBatch, normalise
from lstm_model.evaluation.config import BaselineConfig
from lstm_model.evaluation.evaluate import Metrics, compute_metrics
from lstm_model.training.config import TrainConfig

log = logging.getLogger(__name__)

BASELINE_VERSION = "1"
METRICS_FILE = "metrics.json"


class BaselineResult(BaseModel):
    """The baseline's test metrics and where they were published."""

    model_config = ConfigDict(frozen=True)

    metrics: Metrics
    path: Path
    features: int
    fit_seconds: float
    cached: bool


def fit_baseline(
    reviews: IngestResult, config: BaselineConfig, split: TrainConfig, out_root: Path
) -> BaselineResult:
    """Fit and score the baseline; published under ``out_root/baseline/<key>/``.

    The key hashes the reviews, this config and the validation split (fraction, seed, and
    runs of ids when set), so an unchanged input is a cache hit.
    """
    key = sha256_text(
        "baseline",
        BASELINE_VERSION,
        reviews.sha256,
        config.fingerprint(),
        str(split.validation_fraction),
        str(split.seed),
        # only when set, so that the default's key (and its cached fit) stays as it was
        *([f"block {split.validation_block}"] if split.validation_block != 1 else []),
    )
    folder = out_root / "baseline" / key[:16]
    manifest = find_valid_artifact(folder)
    if manifest is not None:
        log.info("baseline: cache hit %s", folder)
        return _result(folder, cached=True)

    started = time.perf_counter()
    table = load_reviews(reviews, columns=["split", "label", "review_id", "text"])
    train = table.filter(pc.equal(table["split"], "train"))
    test = table.filter(pc.equal(table["split"], "test"))
    y_train = train["label"].to_numpy()
    # The same rows the model trains on: the train split minus its validation share.
    rows, _ = stratified_split(
        y_train, split.validation_fraction, split.seed,
        groups=id_blocks(train["review_id"].to_numpy(), split.validation_block),
    )  # fmt: skip
    classifier = fit_baseline_classifier(train["text"].take(rows), y_train[rows], config)
    probabilities = baseline_probabilities(classifier, test["text"])
    features = len(classifier.named_steps["tfidf"].vocabulary_)
    metrics = compute_metrics(test["label"].to_numpy(), probabilities)
    seconds = round(time.perf_counter() - started, 2)
    with staged_artifact(folder) as tmp:
        atomic_write_json(
            tmp / METRICS_FILE,
            {
                "metrics": metrics.model_dump(),
                "features": features,
                "fit_seconds": seconds,
            },
        )
        write_manifest(
            tmp,
            kind="baseline_metrics",
            main_file=METRICS_FILE,
            inputs={"reviews": reviews.sha256},
            config={
                **config.model_dump(mode="json"),
                "validation_fraction": split.validation_fraction,
                "seed": split.seed,
                "validation_block": split.validation_block,
            },
            details={"train_rows": len(rows), "test_rows": test.num_rows},
        )
    log.info(
        "baseline (TF-IDF 1-%d-grams + logistic regression): test accuracy %.4f, %d features, "
        "%.0f s",
        config.ngram_max,
        metrics.accuracy,
        features,
        seconds,
    )
    return _result(folder, cached=False)


def fit_baseline_classifier(texts: TextBatch, labels: np.ndarray, config: BaselineConfig) -> Any:
    """The baseline (a scikit-learn pipeline, TF-IDF then logistic regression) fitted on
    raw ``texts`` and their labels."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    vectoriser = TfidfVectorizer(
        token_pattern=r"\S+",  # the text is already normalised and space-separated
        lowercase=False,
        ngram_range=(1, config.ngram_max),
        min_df=config.min_df,
        sublinear_tf=True,
        dtype=np.float32,
    )
    classifier = LogisticRegression(C=config.c, max_iter=1000)
    pipeline = Pipeline([("tfidf", vectoriser), ("logistic", classifier)])
    return pipeline.fit(normalise(texts).to_pylist(), labels)


def baseline_probabilities(classifier: Any, texts: TextBatch) -> np.ndarray:
    """Positive-class probabilities of a fitted baseline for raw ``texts``."""
    return np.asarray(classifier.predict_proba(normalise(texts).to_pylist())[:, 1])


def _result(folder: Path, *, cached: bool) -> BaselineResult:
    saved = json.loads((folder / METRICS_FILE).read_text())
    return BaselineResult(
        metrics=Metrics(**saved["metrics"]),
        path=folder / METRICS_FILE,
        features=saved["features"],
        fit_seconds=saved["fit_seconds"],
        cached=cached,
    )
