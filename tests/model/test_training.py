from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
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


def test_a_split_by_runs_of_ids_keeps_each_run_on_one_side() -> None:
    from lstm_model.data.splits import id_blocks

    labels = np.repeat([0, 1], 500)
    ids = np.tile(np.arange(500), 2)  # each class numbers its reviews from 0, as aclImdb's
    assert id_blocks(ids, 1) is None  # single rows: the plain split
    runs = id_blocks(ids, 20)
    train, val = stratified_split(labels, 0.1, seed=3, groups=runs)
    held = np.isin(np.arange(1000), val)
    for label in (0, 1):
        mine = labels == label
        assert 50 <= held[mine].sum() < 70  # the share, overshot by less than one run
        for run in np.unique(runs[mine]):
            assert len(set(held[mine & (runs == run)])) == 1  # a run is never cut
    assert not set(train) & set(val) and len(train) + len(val) == 1000
    assert np.array_equal(val, stratified_split(labels, 0.1, seed=3, groups=runs)[1])
    assert not np.array_equal(val, stratified_split(labels, 0.1, seed=4, groups=runs)[1])
    assert len(stratified_split(labels, 0.0, seed=3, groups=runs)[1]) == 0
    with pytest.raises(ValueError, match="class 0 would hold out 250 of its 500 rows"):
        stratified_split(labels, 0.1, seed=3, groups=id_blocks(ids, 250))
    with pytest.raises(ValueError, match="999 groups for 1000 rows"):
        stratified_split(labels, 0.1, seed=3, groups=runs[1:])
    with pytest.raises(ValueError, match="at least 1 id, not 0"):
        id_blocks(ids, 0)


def test_training_validates_on_runs_of_ids_when_asked(  # type: ignore[no-untyped-def]
    tokenised, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lstm_model.training.fit as fit
    from lstm_model.data.dataset import load_review_ids

    splits: list[tuple[np.ndarray, np.ndarray]] = []

    def recorded(*args, **kwargs):  # type: ignore[no-untyped-def]
        splits.append(stratified_split(*args, **kwargs))
        return splits[-1]

    monkeypatch.setattr(fit, "stratified_split", recorded)
    config = TrainConfig(epochs=1, ngram_epochs=1, batch_size=32, validation_block=500)
    train_model(tokenised, TINY_MODEL, config, tmp_path / "run", verbose=0)
    ids = load_review_ids(tokenised, "train")
    _, y = fit.load_split(tokenised, "train")
    _, val = splits[0]
    held = np.isin(np.arange(len(ids)), val)
    for label in (0, 1):
        for run in np.unique(ids[y == label] // 500):
            rows = (y == label) & (ids // 500 == run)
            assert len(set(held[rows])) == 1
    assert not np.array_equal(val, stratified_split(y, 0.1, config.seed)[1])  # not single rows


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
    # Other threads of the process draw from Python's global random state, as Prefect's
    # clients do: the seed alone must still fix the model.
    stop = threading.Event()

    def draw() -> None:
        while not stop.wait(0.001):
            random.random()

    drawing = threading.Thread(target=draw, daemon=True)
    drawing.start()
    try:
        again = train_model(tokenised, TINY_MODEL, TINY_TRAIN, tmp_path, verbose=0)
    finally:
        stop.set()
        drawing.join()
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


def test_out_of_fold_logits_never_see_their_own_row_or_its_copies() -> None:
    from lstm_model.model.builders import build_model
    from lstm_model.model.config import ModelConfig
    from lstm_model.training.nbsvm import out_of_fold_logits

    model = build_model(ModelConfig(units=2, embedding_dim=2, ngram_buckets=256),
                        vocab_size=60, maxlen=12, seed=0)  # fmt: skip
    rng = np.random.default_rng(3)
    rows = rng.integers(2, 60, size=(40, 12)).astype("int32")
    labels = rng.integers(0, 2, size=40)
    x = np.concatenate([rows, rows])  # each row and one copy, as augmentation makes them
    groups = np.arange(80) % 40

    def logits(y: np.ndarray) -> np.ndarray:
        return out_of_fold_logits(model, x, np.concatenate([y, y]), groups, folds=4, c=1.0, seed=0)

    before = logits(labels)
    flipped = labels.copy()
    flipped[7] = 1 - flipped[7]  # the row and its copy
    after = logits(flipped)
    assert after[7] == before[7] and after[47] == before[47]  # neither helped score itself
    assert not np.allclose(np.delete(after, [7, 47]), np.delete(before, [7, 47]))  # others did
    with pytest.raises(ValueError, match="at least 2 folds"):
        out_of_fold_logits(model, x, np.concatenate([labels, labels]), groups, folds=1, c=1.0,
                           seed=0)  # fmt: skip
    with pytest.raises(ValueError, match="40 groups of rows cannot make 50 folds"):
        out_of_fold_logits(model, x, np.concatenate([labels, labels]), groups, folds=50, c=1.0,
                           seed=0)  # fmt: skip


def test_a_residual_lstm_fits_beside_the_nbsvm_logits(tokenised, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The LSTM stage's validation loss is that of sigmoid(LSTM logit + NBSVM logit)."""
    import keras
    from pydantic import ValidationError

    from lstm_model.data.dataset import load_split
    from lstm_model.model.builders import LSTM_LOGIT, NBSVM_LOGIT

    with pytest.raises(ValidationError, match="lstm_residual_folds is 0 \\(off\\) or at least 2"):
        TrainConfig(lstm_residual_folds=1)
    config = TrainConfig(epochs=2, ngram_epochs=1, batch_size=32, lstm_residual_folds=3)
    with pytest.raises(ValueError, match="lstm_residual_folds and lstm_nbsvm_scores cannot"):
        train_model(tokenised, TINY_MODEL.model_copy(update={"lstm_nbsvm_scores": True}),
                    config, tmp_path / "both", verbose=0)  # fmt: skip
    with pytest.raises(ValueError, match="lstm_residual_folds needs the NBSVM branch"):
        train_model(tokenised, TINY_MODEL.model_copy(update={"nbsvm": False}), config,
                    tmp_path / "refused", verbose=0)  # fmt: skip
    result = train_model(tokenised, TINY_MODEL, config, tmp_path / "run", verbose=0)
    model = load_model(result.model_path)
    assert [i.name for i in model.inputs] == ["token_ids"]  # the offset was the stage's alone
    x, y = load_split(tokenised, "train")
    _, val_idx = stratified_split(y, config.validation_fraction, config.seed)
    both = keras.Model(model.inputs, [model.get_layer(LSTM_LOGIT).output,
                                      model.get_layer(NBSVM_LOGIT).output])  # fmt: skip
    lstm, nbsvm = (
        np.asarray(v, dtype="float64").ravel() for v in both.predict(x[val_idx], verbose=0)
    )

    def loss(logit: np.ndarray) -> float:
        p = np.clip(1.0 / (1.0 + np.exp(-logit)), 1e-7, 1 - 1e-7)
        truth = y[val_idx]
        return float(-np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p)))

    seen = np.array(result.history["val_loss"])
    assert np.isclose(loss(lstm + nbsvm), seen, atol=1e-3).any()
    assert not np.isclose(loss(lstm), seen, atol=1e-3).any()  # not the labels alone


def test_residual_folds_keep_runs_of_ids_and_augmented_copies_together(  # type: ignore[no-untyped-def]
    tokenised, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lstm_model.training.fit as fit
    from lstm_model.data.dataset import load_review_ids

    calls: list[dict[str, object]] = []
    real = fit.out_of_fold_logits

    def recorded(model, x_fit, y_fit, groups, **kwargs):  # type: ignore[no-untyped-def]
        calls.append({"x": x_fit, "y": y_fit, "groups": groups, **kwargs})
        return real(model, x_fit, y_fit, groups, **kwargs)

    monkeypatch.setattr(fit, "out_of_fold_logits", recorded)
    config = TrainConfig(epochs=1, ngram_epochs=1, batch_size=32, lstm_residual_folds=3,
                         augment_copies=1, crop_copies=1)  # fmt: skip
    train_model(tokenised, TINY_MODEL, config, tmp_path / "run", verbose=0)
    (call,) = calls
    _, y = fit.load_split(tokenised, "train")
    train_idx, _ = stratified_split(y, config.validation_fraction, config.seed)
    runs = load_review_ids(tokenised, "train")[train_idx] // 100
    # the rows, their synonym copies, their crops: each in a row's own run of ids
    assert np.array_equal(call["groups"], np.tile(runs, 3))
    assert np.array_equal(call["y"], np.tile(y[train_idx], 3))
    assert call["folds"] == 3 and call["seed"] == config.seed
