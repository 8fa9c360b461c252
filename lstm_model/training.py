"""Fit a classifier on the tokenised train split (never the test split).

Keras callbacks do the work: EarlyStopping restores the best weights, BackupAndRestore
resumes an interrupted fit from its last finished epoch, TensorBoard writes the curves,
and a small callback logs the mean global gradient norm of each epoch.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import numpy as np
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import atomic_write_json, sha256_file, sha256_text
from lstm_model.config import ModelConfig, TrainConfig
from lstm_model.dataset import TokenisedResult, load_split
from lstm_model.model import build_model, compile_model, lstm_kernel

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
EpochHook = Callable[[int, int, Mapping[str, float]], None]
"""Called after each epoch with (epoch number from 1, epochs planned, logs)."""


class TrainResult(BaseModel):
    """The fitted model and how the fit went."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model_path: Path
    model_sha256: str
    run_dir: Path
    epochs_run: int
    best_epoch: int
    resumed_from_epoch: int
    history: dict[str, list[float]]
    backend: str
    lstm_kernel: str
    train_seconds: float
    samples_per_second: float


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): ``fraction`` of each class to validation, seeded."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    validation: list[np.ndarray] = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = round(len(members) * fraction)
        validation.append(members[:cut])
        train.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))


class GradientNormLogger(keras.callbacks.Callback):
    """Adds ``grad_norm``, the mean pre-clipping global gradient norm, to each epoch's logs."""

    def __init__(self) -> None:
        super().__init__()
        self._seen = (0.0, 0.0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        optimizer = self.model.optimizer
        total = float(keras.ops.convert_to_numpy(optimizer.grad_norm_sum.value))
        steps = float(keras.ops.convert_to_numpy(optimizer.grad_norm_steps.value))
        done = steps - self._seen[1]
        if logs is not None and done > 0:
            logs["grad_norm"] = (total - self._seen[0]) / done
            log.info("epoch %d: mean global gradient norm %.4f", epoch + 1, logs["grad_norm"])
        self._seen = (total, steps)


class _EpochHook(keras.callbacks.Callback):
    def __init__(self, hook: EpochHook, epochs: int) -> None:
        super().__init__()
        self.hook, self.epochs = hook, epochs
        self.first_epoch: int | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.hook(epoch + 1, self.epochs, {k: float(v) for k, v in (logs or {}).items()})


def train_model(
    tokenised: TokenisedResult,
    model_config: ModelConfig,
    train_config: TrainConfig,
    run_dir: Path,
    *,
    on_epoch_end: EpochHook | None = None,
    verbose: int | str = "auto",
) -> TrainResult:
    """Fit on the train split minus a stratified validation share; save ``model.keras``.

    Re-running with the same ``run_dir`` after an interruption resumes from the last
    finished epoch (Keras BackupAndRestore); the backup is removed when the fit ends.
    """
    x, y = load_split(tokenised, "train")
    train_idx, val_idx = stratified_split(y, train_config.validation_fraction, train_config.seed)
    keras.utils.set_random_seed(train_config.seed)
    _deterministic_ops()
    model = compile_model(
        build_model(
            model_config, vocab_size=tokenised.config.vocab_size, maxlen=tokenised.config.maxlen
        ),
        train_config,
    )
    kernel = lstm_kernel(model_config)
    log.info(
        "training %s on %d reviews (%d held out): %s",
        model.name,
        len(train_idx),
        len(val_idx),
        kernel,
    )

    run_dir.mkdir(parents=True, exist_ok=True)
    hook = _EpochHook(on_epoch_end or (lambda *_: None), train_config.epochs)
    callbacks = [
        GradientNormLogger(),  # first, so later callbacks see grad_norm in the logs
        keras.callbacks.EarlyStopping(
            monitor=train_config.early_stopping_monitor,
            patience=train_config.early_stopping_patience,
            restore_best_weights=True,
        ),
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=True),
        *_tensorboard(run_dir / "tensorboard"),
        hook,
    ]
    started = time.perf_counter()
    history = model.fit(
        x[train_idx],
        y[train_idx].astype("float32"),
        validation_data=(x[val_idx], y[val_idx].astype("float32")),
        epochs=train_config.epochs,
        batch_size=train_config.batch_size,
        callbacks=callbacks,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    resumed = hook.first_epoch or 0
    epochs_run = len(history.history.get("loss", []))
    watched = history.history.get(train_config.early_stopping_monitor, [])
    pick = np.argmax if train_config.early_stopping_monitor == "val_accuracy" else np.argmin
    best = resumed + int(pick(watched)) + 1 if watched else resumed

    model_path = run_dir / MODEL_FILE
    tmp = run_dir / f".{MODEL_FILE}.tmp.keras"
    model.save(tmp)
    tmp.replace(model_path)
    clean = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    atomic_write_json(run_dir / HISTORY_FILE, clean)
    result = TrainResult(
        model_path=model_path,
        model_sha256=sha256_file(model_path),
        run_dir=run_dir,
        epochs_run=resumed + epochs_run,
        best_epoch=best,
        resumed_from_epoch=resumed,
        history=clean,
        backend=keras.backend.backend(),
        lstm_kernel=kernel,
        train_seconds=round(seconds, 2),
        samples_per_second=round(epochs_run * len(train_idx) / seconds, 1) if seconds else 0.0,
    )
    log.info(
        "trained %d epochs (best %d) in %.0f s, %.0f samples/s",
        result.epochs_run,
        best,
        seconds,
        result.samples_per_second,
    )
    return result


def run_folder(
    workspace: Path, tokenised: TokenisedResult, model: ModelConfig, train: TrainConfig
) -> Path:
    """Where a fit of this data and config runs; re-running it there resumes it."""
    key = sha256_text("train", tokenised.sha256, model.fingerprint(), train.fingerprint())
    return workspace / "runs" / key[:16]


def load_history(run_dir: Path) -> dict[str, list[float]]:
    """The per-epoch metrics a fit saved."""
    return json.loads((run_dir / HISTORY_FILE).read_text())


def _tensorboard(log_dir: Path) -> list[keras.callbacks.Callback]:
    """TensorBoard logging needs TensorFlow's summary writer; skip it where TF is absent."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        log.warning("TensorFlow not installed: no TensorBoard logs for this run")
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(log_dir), histogram_freq=0)]


def _deterministic_ops() -> None:
    """Repeatable runs on CPU: TensorFlow needs op determinism switched on as well."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
