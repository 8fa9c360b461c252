"""Fit a classifier on the tokenised train split (never the test split).

Keras callbacks do the work: EarlyStopping restores the best weights, BackupAndRestore
resumes an interrupted fit from its last finished epoch, TensorBoard writes the curves,
and a small callback logs the mean global gradient norm of each epoch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np

from lstm_model.artifacts import atomic_write_json, sha256_file
from lstm_model.data.dataset import TokenisedResult, load_review_ids, load_split
from lstm_model.data.spans import Span, row_domains
from lstm_model.data.splits import id_blocks, stratified_split
from lstm_model.data.tokeniser import Tokeniser
from lstm_model.model.builders import (
    NBSVM_LOGIT,
    branch_logit,
    branch_models,
    build_model,
    gpu_visible,
    lstm_kernel,
    residual_model,
)
from lstm_model.model.config import ModelConfig
from lstm_model.training.augment import augment, build_synonyms, crop
from lstm_model.training.config import TrainConfig
from lstm_model.training.nbsvm import fit_nbsvm, out_of_fold_logits
from lstm_model.training.optimizer import compile_model
from lstm_model.training.result import HISTORY_FILE, MODEL_FILE, TrainResult
from lstm_model.training.weights import choose_domain_weights, sample_weights

log = logging.getLogger(__name__)

_RESIDUAL_ID_RUN = 100
"""Review ids per group of the out-of-fold NBSVM fits (aclImdb has at most 30 reviews per
film, numbered consecutively within a polarity)."""

EpochHook = Callable[[int, int, Mapping[str, float]], None]
"""Called after each epoch with (epoch number from 1, epochs planned, logs)."""


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
    def __init__(self, hook: Callable[[int, Mapping[str, float]], None]) -> None:
        super().__init__()
        self.hook = hook
        self.first_epoch: int | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.hook(epoch + 1, {k: float(v) for k, v in (logs or {}).items()})


def train_model(
    tokenised: TokenisedResult,
    model_config: ModelConfig,
    train_config: TrainConfig,
    run_dir: Path,
    spans: list[Span] | None = None,
    *,
    on_epoch_end: EpochHook | None = None,
    verbose: int | str = "auto",
) -> TrainResult:
    """Fit on the train split minus a stratified validation share; save ``model.keras``.

    A two-branch model is fit in stages: the n-gram branch alone, then the LSTM branch
    alone (each with its own learning rate and early stopping), then the two-weight
    combiner by logistic regression on the validation logits. Joint training lets the
    fast-overfitting LSTM stop the fit before the n-gram branch has learnt (measured:
    87.4% test accuracy jointly against 89-90% staged).

    Rows of labelled ``spans`` (their train share, in the training set) count with their
    domain's weight (``lstm_model.training.weights``) in every stage.

    Re-running with the same ``run_dir`` after an interruption resumes: finished stages are
    loaded from their weights, the unfinished one from its last finished epoch (Keras
    BackupAndRestore); the backups are removed when the fit ends.
    """
    if train_config.lstm_residual_folds and not model_config.has_nbsvm:
        raise ValueError(
            "lstm_residual_folds needs the NBSVM branch (ModelConfig.nbsvm on, "
            "ngram_order >= 1): the LSTM learns beside the NBSVM's logits"
        )
    if train_config.lstm_residual_folds and model_config.lstm_nbsvm_scores:
        # The scores the LSTM would read come from the fit that saw each row's label, the
        # logit it learns beside from one that did not: their gap would teach it the labels.
        raise ValueError("lstm_residual_folds and lstm_nbsvm_scores cannot both be on")
    x, y = load_split(tokenised, "train")
    review_ids = load_review_ids(tokenised, "train")
    domains = row_domains(review_ids, spans or [])
    train_idx, val_idx = stratified_split(
        y, train_config.validation_fraction, train_config.seed,
        groups=id_blocks(review_ids, train_config.validation_block),
    )  # fmt: skip
    domain_weights = choose_domain_weights(
        (x[train_idx], y[train_idx], domains[train_idx]),
        (x[val_idx], y[val_idx], domains[val_idx]),
        tokenised.config.vocab_size,
        train_config,
    )
    chosen = {w.domain: w.weight for w in domain_weights}
    # without labelled rows the fit stays exactly the unweighted one
    w_fit = sample_weights(domains[train_idx], chosen) if chosen else None
    w_val = sample_weights(domains[val_idx], chosen) if chosen else None
    keras.utils.set_random_seed(train_config.seed)
    _deterministic_ops()
    model = build_model(
        model_config, vocab_size=tokenised.config.vocab_size, maxlen=tokenised.config.maxlen,
        seed=train_config.seed,
    )  # fmt: skip
    kernel = lstm_kernel(model_config)
    log.info("training %s on %d reviews (%d held out)", model.name, len(train_idx), len(val_idx))
    if not gpu_visible():
        log.warning("no GPU visible to Keras: training on the CPU (%s)", kernel)
    else:
        log.info("training on the GPU: %s", kernel)
    branches = branch_models(model)
    run_dir.mkdir(parents=True, exist_ok=True)
    history: dict[str, list[float]] = {}
    started = time.perf_counter()
    x_fit, y_fit = x[train_idx], y[train_idx]
    w_rows = w_fit
    if train_config.augment_copies:
        # Synonyms from the fit rows only: the validation share stays unseen.
        words = Tokeniser.load(tokenised.tokeniser_dir).vocabulary
        synonyms = build_synonyms(
            x_fit, y_fit, tokenised.config.vocab_size, words=words, seed=train_config.seed
        )
        x_fit, y_fit = augment(
            x_fit, y_fit, synonyms, rate=train_config.augment_rate,
            copies=train_config.augment_copies, seed=train_config.seed,
        )  # fmt: skip
        if w_fit is not None:
            w_fit = np.tile(w_fit, train_config.augment_copies + 1)
        log.info("augmented the fit rows with synonyms: %d rows", len(x_fit))
    if train_config.crop_copies:
        # Crops of the training rows themselves, not of their synonym copies.
        rows = len(train_idx)
        cropped, cropped_y = crop(
            x[train_idx], y[train_idx], copies=train_config.crop_copies,
            min_tokens=train_config.crop_min_tokens, max_tokens=train_config.crop_max_tokens,
            seed=train_config.seed, padding=tokenised.config.padding,
        )  # fmt: skip
        x_fit, y_fit = (
            np.concatenate([x_fit, cropped[rows:]]),
            np.concatenate([y_fit, cropped_y[rows:]]),
        )
        if w_fit is not None and w_rows is not None:
            w_fit = np.concatenate([w_fit, np.tile(w_rows, train_config.crop_copies)])
        log.info("augmented the fit rows with short crops: %d rows", len(x_fit))
    validation = (x[val_idx], y[val_idx].astype("float32"))
    data = _FitData(x_fit, y_fit.astype("float32"), w_fit,
                    validation if w_val is None else (*validation, w_val))  # fmt: skip
    if model_config.has_nbsvm:
        history["nbsvm_val_accuracy"] = [
            fit_nbsvm(model, x_fit, y_fit, (x[val_idx], y[val_idx]), model_config.nbsvm_c, w_fit)
        ]
    residual = None
    if train_config.lstm_residual_folds and not _stage_finished(run_dir, "lstm"):
        # Folds hold out whole runs of review ids, so a row's logit mostly comes from a fit
        # that saw no review of its film (aclImdb numbers a film's reviews of one polarity
        # consecutively), as a new review's does; augmented copies follow their rows.
        runs = review_ids[train_idx].astype(np.int64) // _RESIDUAL_ID_RUN
        groups = runs[np.arange(len(x_fit)) % len(train_idx)]
        residual = (
            out_of_fold_logits(
                model, x_fit, y_fit, groups, folds=train_config.lstm_residual_folds,
                c=model_config.nbsvm_c, seed=train_config.seed, weights=w_fit,
            ),
            branch_logit(model, NBSVM_LOGIT, x[val_idx]),
        )  # fmt: skip
    stages = (
        [
            _Stage("ngram", branches["ngram"], train_config.ngram_learning_rate,
                   train_config.ngram_epochs, "ngram_"),
            _Stage("lstm", branches["lstm"] if residual is None else residual_model(model),
                   train_config.learning_rate, train_config.epochs, "", residual),
        ]
        if branches
        else [_Stage("model", model, train_config.learning_rate, train_config.epochs, "")]
    )  # fmt: skip
    planned = sum(stage.epochs for stage in stages)
    hook = on_epoch_end or (lambda *_: None)
    offset = resumed = epochs_run = best = 0
    for stage in stages:
        outcome = _fit_stage(
            stage, model, data, train_config, run_dir,
            hook=lambda epoch, logs, at=offset: hook(at + epoch, planned, logs),
            verbose=verbose,
        )  # fmt: skip
        history.update({stage.prefix + k: v for k, v in outcome.history.items()})
        resumed += outcome.resumed_from
        epochs_run += outcome.epochs_run
        best = outcome.best_epoch
        offset += stage.epochs
    if branches:
        history["combiner"] = fit_combiner(model, x[val_idx], y[val_idx], w_val)
    seconds = time.perf_counter() - started

    model_path = run_dir / MODEL_FILE
    tmp = run_dir / f".{MODEL_FILE}.tmp.keras"
    model.save(tmp)
    tmp.replace(model_path)
    atomic_write_json(run_dir / HISTORY_FILE, history)
    _remove_resume_state(run_dir, stages)
    fitted = epochs_run - resumed
    result = TrainResult(
        model_path=model_path,
        model_sha256=sha256_file(model_path),
        run_dir=run_dir,
        epochs_run=epochs_run,
        best_epoch=best,
        resumed_from_epoch=resumed,
        history=history,
        backend=keras.backend.backend(),
        lstm_kernel=kernel,
        train_seconds=round(seconds, 2),
        samples_per_second=round(fitted * len(x_fit) / seconds, 1) if seconds else 0.0,
        domain_weights=domain_weights,
    )
    log.info(
        "trained %d epochs (best %d) in %.0f s, %.0f samples/s",
        result.epochs_run,
        best,
        seconds,
        result.samples_per_second,
    )
    return result


def fit_combiner(
    model: keras.Model, x_val: np.ndarray, y_val: np.ndarray, weights: np.ndarray | None = None
) -> list[float]:
    """Fit the sigmoid over the two branch logits on validation data; returns its weights.

    Three parameters, so the 10% validation share is plenty, and the branches' own
    training data (which both fit almost perfectly) never decides how to weigh them.
    """
    from sklearn.linear_model import LogisticRegression

    logits = keras.Model(model.inputs, model.get_layer("branch_logits").output)
    features = np.asarray(logits.predict(x_val, batch_size=512, verbose=0), dtype="float64")
    combiner = LogisticRegression(C=1.0).fit(features, y_val, sample_weight=weights)
    kernel = combiner.coef_.reshape(-1, 1).astype("float32")
    bias = combiner.intercept_.astype("float32")
    model.get_layer("probability").set_weights([kernel, bias])
    weights = [*(float(k) for k in kernel[:, 0]), float(bias[0])]
    names = ["ngram", "lstm", "nbsvm"][: len(kernel)]
    log.info(
        "combiner: %s + %.3f",
        " + ".join(f"{w:.3f} x {n} logit" for w, n in zip(weights, names, strict=False)),
        weights[-1],
    )
    return weights


def _remove_resume_state(run_dir: Path, stages: list[_Stage]) -> None:
    """The fit is complete: drop finished-stage weights and the (now empty) backup folder."""
    for stage in stages:
        for path in _stage_files(run_dir, stage.name):
            path.unlink(missing_ok=True)
    with contextlib.suppress(FileNotFoundError, OSError):
        (run_dir / "backup").rmdir()


class _Stage(NamedTuple):
    name: str
    net: keras.Model
    learning_rate: float
    epochs: int
    prefix: str  # of this stage's keys in the merged history
    # (fit rows, validation rows): a logit the stage's net adds to its own, for a residual fit
    offsets: tuple[np.ndarray, np.ndarray] | None = None


class _FitData(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None
    validation: tuple[np.ndarray, ...]  # (x, y) or (x, y, weights)


class _StageOutcome(NamedTuple):
    history: dict[str, list[float]]
    resumed_from: int
    epochs_run: int
    best_epoch: int


def _fit_stage(
    stage: _Stage,
    model: keras.Model,
    data: _FitData,
    config: TrainConfig,
    run_dir: Path,
    *,
    hook: Callable[[int, Mapping[str, float]], None],
    verbose: int | str,
) -> _StageOutcome:
    """Fit one stage, or load it when a previous run finished it."""
    done, record = _stage_files(run_dir, stage.name)
    if _stage_finished(run_dir, stage.name):
        model.load_weights(done)
        saved = json.loads(record.read_text())
        log.info("stage %s: finished by an earlier run, loaded %s", stage.name, done.name)
        epochs = saved["epochs_run"]
        return _StageOutcome(saved["history"], epochs, epochs, saved["best_epoch"])

    compile_model(stage.net, config, learning_rate=stage.learning_rate)
    epoch_hook = _EpochHook(hook)
    callbacks = [
        GradientNormLogger(),  # first, so later callbacks see grad_norm in the logs
        keras.callbacks.EarlyStopping(
            monitor=config.early_stopping_monitor,
            patience=config.early_stopping_patience,
            restore_best_weights=True,
        ),
        keras.callbacks.BackupAndRestore(
            str(run_dir / "backup" / stage.name), delete_checkpoint=True
        ),
        *_tensorboard(run_dir / "tensorboard" / stage.name),
        epoch_hook,
    ]
    x: np.ndarray | list[np.ndarray] = data.x
    validation: tuple[Any, ...] = data.validation
    if stage.offsets is not None:
        x = [data.x, stage.offsets[0][:, None]]
        validation = ([validation[0], stage.offsets[1][:, None]], *validation[1:])
    fitted = stage.net.fit(
        x,
        data.y,
        sample_weight=data.weights,
        validation_data=validation,
        epochs=stage.epochs,
        batch_size=config.batch_size,
        callbacks=callbacks,
        verbose=verbose,
    )
    resumed = epoch_hook.first_epoch or 0
    history = {k: [float(v) for v in vs] for k, vs in fitted.history.items()}
    watched = history.get(config.early_stopping_monitor, [])
    pick = np.argmax if config.early_stopping_monitor == "val_accuracy" else np.argmin
    best = resumed + int(pick(watched)) + 1 if watched else resumed
    epochs_run = resumed + len(history.get("loss", []))
    if stage.name != "model":  # a one-stage fit is finished by saving the model itself
        tmp = run_dir / f".stage_{stage.name}.tmp.weights.h5"
        model.save_weights(tmp)
        tmp.replace(done)
        atomic_write_json(
            record, {"history": history, "epochs_run": epochs_run, "best_epoch": best}
        )
    return _StageOutcome(history, resumed, epochs_run, best)


def _stage_files(run_dir: Path, name: str) -> tuple[Path, Path]:
    """A finished stage's weights and its record (history, epochs) in the run folder."""
    return run_dir / f"stage_{name}.weights.h5", run_dir / f"stage_{name}.json"


def _stage_finished(run_dir: Path, name: str) -> bool:
    """Whether an earlier run of this fit finished the stage (its weights and record saved)."""
    return all(path.exists() for path in _stage_files(run_dir, name))


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
