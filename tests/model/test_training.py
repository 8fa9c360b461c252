from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lstm_model.artifacts import sha256_file
from lstm_model.data.splits import stratified_split
from lstm_model.model.builders import load_model
from lstm_model.training.config import TrainConfig
from lstm_model.training.fit import train_model
from tests.helpers.tiny import TINY_MODEL, TINY_TRAIN

ROOT = Path(__file__).resolve().parents[2]


def test_stratified_split_keeps_class_shares_and_is_seeded() -> None:
    labels = np.array([0] * 700 + [1] * 300)
    train, val = stratified_split(labels, 0.1, seed=3)
    assert len(val) == 100 and labels[val].sum() == 30
    assert not set(train) & set(val) and len(train) + len(val) == 1000
    _, again_val = stratified_split(labels, 0.1, seed=3)
    assert np.array_equal(val, again_val)
    assert not np.array_equal(val, stratified_split(labels, 0.1, seed=4)[1])


def test_training_logs_what_it_should(trained) -> None:  # type: ignore[no-untyped-def]
    # 2 epochs of the n-gram branch, 2 of the LSTM branch, then the combiner
    assert trained.epochs_run == 4 and trained.resumed_from_epoch == 0
    lstm_keys = {"loss", "val_loss", "accuracy", "val_accuracy", "grad_norm"}
    assert set(trained.history) >= lstm_keys | {f"ngram_{k}" for k in lstm_keys} | {"combiner"}
    assert all(n > 0 for n in trained.history["grad_norm"] + trained.history["ngram_grad_norm"])
    assert len(trained.history["combiner"]) == 4  # three logit weights and a bias
    assert 0.0 < trained.history["nbsvm_val_accuracy"][0] <= 1.0
    kernel, bias = load_model(trained.model_path).get_layer("probability").get_weights()
    assert np.allclose([*kernel.ravel(), *bias], trained.history["combiner"])
    assert sha256_file(trained.model_path) == trained.model_sha256
    for stage in ("ngram", "lstm"):
        assert list((trained.run_dir / "tensorboard" / stage).rglob("events.out.tfevents*"))
    assert not (trained.run_dir / "backup").exists()  # removed once the fit completed
    assert "CPU" in trained.lstm_kernel


def test_same_seed_same_model(tokenised, trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    again = train_model(tokenised, TINY_MODEL, TINY_TRAIN, tmp_path, verbose=0)
    for a, b in zip(
        load_model(trained.model_path).get_weights(),
        load_model(again.model_path).get_weights(),
        strict=True,
    ):
        assert np.array_equal(a, b)
    assert again.history["loss"] == trained.history["loss"]


@pytest.mark.parametrize(
    ("model", "crash_at", "resumed_from", "epochs_after"),
    [
        # one-stage LSTM model: epoch 2 of 3 done when killed
        (TINY_MODEL.model_copy(update={"ngram_order": 0}), 2, 2, [3]),
        # two-stage model: the n-gram stage (2 epochs) and LSTM epoch 1 done when killed
        (TINY_MODEL, 3, 3, [4, 5]),
    ],
    ids=["lstm-only", "two-branch"],
)
def test_interrupted_fit_resumes_from_its_last_epoch(  # type: ignore[no-untyped-def]
    tokenised, tmp_path: Path, model, crash_at: int, resumed_from: int, epochs_after: list[int]
) -> None:
    config = TrainConfig(epochs=3, ngram_epochs=2, batch_size=32, early_stopping_patience=5)

    def crash(epoch: int, epochs: int, logs: object) -> None:
        if epoch == crash_at:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        train_model(tokenised, model, config, tmp_path, on_epoch_end=crash, verbose=0)
    assert list((tmp_path / "backup").iterdir())
    seen: list[int] = []
    resumed = train_model(
        tokenised,
        model,
        config,
        tmp_path,
        on_epoch_end=lambda e, *_: seen.append(e),
        verbose=0,
    )
    assert resumed.resumed_from_epoch == resumed_from
    assert seen == epochs_after  # only the epochs that had not finished
    assert resumed.epochs_run == epochs_after[-1]


def test_test_split_is_never_read_in_training(tokenised, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Poison the test rows with ids far outside the vocabulary: training must not notice."""
    table = pq.read_table(tokenised.path)
    ids = table["ids"].combine_chunks().values.to_numpy().reshape(table.num_rows, -1).copy()
    ids[table["split"].to_numpy() == "test"] = 10**8
    poisoned = table.set_column(
        table.schema.get_field_index("ids"),
        table.schema.field("ids"),
        pa.FixedSizeListArray.from_arrays(pa.array(ids.ravel(), pa.int32()), ids.shape[1]),
    )
    path = tmp_path / "poisoned.parquet"
    pq.write_table(poisoned, path)
    result = train_model(
        tokenised.model_copy(update={"path": path, "sha256": sha256_file(path)}),
        TINY_MODEL,
        TrainConfig(epochs=1, ngram_epochs=1, batch_size=32),
        tmp_path / "run",
        verbose=0,
    )
    assert result.epochs_run == 2  # one epoch per branch


def test_training_runs_on_the_jax_backend(fixture_archive: Path, tmp_path: Path) -> None:
    """The model and training code are backend-agnostic Keras 3 (here: JAX on CPU)."""
    code = f"""
import json
from pathlib import Path
from lstm_model.data.config import TokeniserConfig
from lstm_model.model.config import ModelConfig
from lstm_model.training.config import TrainConfig
from lstm_model.data.dataset import tokenise_reviews
from lstm_model.data.ingest import ingest_reviews
from lstm_model.data.sources import resolve_source
from lstm_model.training.fit import train_model
ws = Path({str(tmp_path)!r})
reviews = ingest_reviews(resolve_source({str(fixture_archive)!r}), ws)
tok = tokenise_reviews(reviews, TokeniserConfig(vocab_size=500, maxlen=20), ws)
result = train_model(tok, ModelConfig(units=4, embedding_dim=4, ngram_buckets=1024), TrainConfig(epochs=1, ngram_epochs=1), ws / "run", verbose=0)
h = result.history
print(json.dumps({{"backend": result.backend, "grad_norm": h["grad_norm"], "ngram_grad_norm": h["ngram_grad_norm"]}}))
"""
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    first = json.loads(out.stdout.strip().splitlines()[-1])
    assert first["backend"] == "jax"
    assert first["grad_norm"][0] > 0 and first["ngram_grad_norm"][0] > 0


def test_early_stopping_can_watch_validation_accuracy(tokenised, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = TrainConfig(epochs=3, batch_size=32, early_stopping_monitor="val_accuracy",
                         early_stopping_patience=3)  # fmt: skip
    result = train_model(tokenised, TINY_MODEL, config, tmp_path, verbose=0)
    accuracies = result.history["val_accuracy"]
    assert result.best_epoch == int(np.argmax(accuracies)) + 1


def test_a_worker_without_a_gpu_trains_on_the_cpu_with_a_warning(  # type: ignore[no-untyped-def]
    tokenised, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="lstm_model.training.fit"):
        result = train_model(tokenised, TINY_MODEL, TrainConfig(epochs=1, ngram_epochs=1,
                             batch_size=64), tmp_path, verbose=0)  # fmt: skip
    warnings = [
        r
        for r in caplog.records
        if r.name == "lstm_model.training.fit" and r.levelno == logging.WARNING
    ]  # TensorFlow's own retracing warnings may appear too, from other loggers
    assert [r.getMessage() for r in warnings] == [
        "no GPU visible to Keras: training on the CPU (generic LSTM kernel on CPU (tensorflow))"
    ]
    assert result.model_path.is_file()  # the fallback trains; it does not crash
