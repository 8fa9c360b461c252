"""The committed fixture and the tiny models trained on it in seconds."""

from __future__ import annotations

from pathlib import Path

from lstm_model.data.config import TokeniserConfig
from lstm_model.model.config import ModelConfig
from lstm_model.release.config import ExportConfig
from lstm_model.training.config import TrainConfig

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "aclImdb_sample.tar.gz"
FIXTURE_REVIEWS = 408  # 100 per split and polarity + 4 texts that are in both splits

# Bounds of the reviews contract that the few-hundred-review fixture satisfies.
FIXTURE_CONTRACT = {"min_rows": 100}

MODEL_NAME = "imdb_sentiment"

TINY_TOKENISER = TokeniserConfig(vocab_size=2000, maxlen=40)
# Two branches like the default model (LSTM on the last 30 of 40 tokens + n-grams).
TINY_MODEL = ModelConfig(units=8, embedding_dim=8, lstm_maxlen=30, ngram_buckets=4096)
TINY_TRAIN = TrainConfig(epochs=2, ngram_epochs=2, batch_size=32)
# The mobile file is tested where it is the subject (test_mobile, the first retrain run).
TINY_EXPORT = ExportConfig(tflite_batch_size=16, mobile=False)
# On the fixture's 204 test reviews one changed label moves accuracy by 0.49 points.
TINY_MOBILE_EXPORT = ExportConfig(tflite_batch_size=16, mobile_accuracy_tolerance=0.02)


def tiny_flow_kwargs(**overrides: object) -> dict[str, object]:
    """Flow parameters for a model that trains on the fixture in seconds."""
    from data_contracts.config import ReviewsContractConfig
    from lstm_model.evaluation.config import GateConfig

    return {
        "tokeniser": TINY_TOKENISER,
        "model": ModelConfig(units=8, embedding_dim=8, ngram_buckets=4096),
        "training": TINY_TRAIN,
        # the tiny model need not beat the fixture's baseline
        "gate_config": GateConfig(min_accuracy=0.0, min_margin_over_baseline=None),
        "export_config": TINY_EXPORT,
        "reviews_contract": ReviewsContractConfig(**FIXTURE_CONTRACT),
        **overrides,
    }
