"""Hyperparameter search with Keras Tuner, on the train split's validation share only.

Every trial is cut from one tokenisation (``SearchSpace.widest_tokeniser``): ids at or
above the trial's vocabulary size become the out-of-vocabulary id and only the last
``maxlen`` columns are kept, which equals tokenising with those sizes. The test split is
never read. Keras Tuner keeps each trial's state under ``<workspace>/tuning/<key>/``, so a
search that is interrupted and started again continues from the finished trials. The best
configuration is saved by name (``configs/<name>.json``) for the retraining flow.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
from keras_tuner.engine.trial import Trial, TrialStatus

from lstm_model.artifacts import atomic_write_json, remove_temporary_files, sha256_text
from lstm_model.data.config import TokeniserConfig
from lstm_model.data.dataset import TokenisedResult, load_review_ids, load_split
from lstm_model.data.splits import id_blocks, stratified_split
from lstm_model.data.tokeniser import OOV_ID
from lstm_model.errors import PipelineError
from lstm_model.model.builders import build_model
from lstm_model.model.config import ModelConfig
from lstm_model.training.config import SearchSpace, TrainConfig, TuningConfig
from lstm_model.training.named import NamedConfig, TuningResult, save_named_config
from lstm_model.training.optimizer import compile_model

log = logging.getLogger(__name__)

OBJECTIVE = "val_accuracy"


def cut(ids: np.ndarray, vocab_size: int, maxlen: int) -> np.ndarray:
    """The rows as tokenised with a smaller vocabulary and a shorter length (pre/pre)."""
    rows = ids[:, -maxlen:]
    return np.where(rows >= vocab_size, OOV_ID, rows).astype("int32")


def configs_of(hp: Any, space: SearchSpace) -> tuple[TokeniserConfig, ModelConfig]:
    """Declare (or read back) the hyperparameters of a trial as pipeline configurations."""
    family = hp.Choice("family", list(space.families))
    pooling = hp.Choice("pooling", list(space.poolings))
    units = hp.Int("units", space.units_min, space.units_max, step=2, sampling="log")
    embedding_dim = hp.Choice("embedding_dim", list(space.embedding_dims))
    dropout = hp.Float("dropout", space.dropout_min, space.dropout_max, step=0.1)
    vocab_size = hp.Choice("vocab_size", list(space.vocab_sizes))
    maxlen = hp.Int("maxlen", space.maxlen_min, space.maxlen_max, step=space.maxlen_step)
    model = ModelConfig(
        architecture=family,
        pooling=pooling,
        units=units,
        embedding_dim=embedding_dim,
        head_dropout=round(dropout, 4),
        ngram_order=0,  # the LSTM alone: the two-branch model trains in stages
        nbsvm=False,
        lstm_maxlen=None,
    )
    return TokeniserConfig(vocab_size=vocab_size, maxlen=maxlen), model


def run_search(
    tokenised: TokenisedResult,
    space: SearchSpace,
    config: TuningConfig,
    training: TrainConfig,
    workspace: Path,
) -> TuningResult:
    """Run (or continue) a Keras Tuner search and save the best configuration by name."""
    widest = space.widest_tokeniser()
    if tokenised.config.padding != "pre" or tokenised.config.truncating != "pre":
        raise PipelineError("tuning cuts rows from the left: tokenise with pre padding/truncating")
    if tokenised.config.vocab_size < widest.vocab_size or tokenised.config.maxlen < widest.maxlen:
        raise PipelineError(
            f"the tokenised data ({tokenised.config.vocab_size} words, {tokenised.config.maxlen} "
            f"tokens) is narrower than the search space ({widest.vocab_size}, {widest.maxlen})"
        )
    started = time.perf_counter()
    ids, labels = load_split(tokenised, "train")  # the test split is never loaded
    fit_rows, val_rows = stratified_split(
        labels, training.validation_fraction, training.seed,
        groups=id_blocks(load_review_ids(tokenised, "train"), training.validation_block),
    )  # fmt: skip
    key = sha256_text(
        tokenised.sha256, space.fingerprint(), training.fingerprint(),
        config.model_copy(update={"max_trials": 0, "name": ""}).fingerprint(),
    )[:16]  # fmt: skip  # max_trials may grow and the name change: the same search goes on
    directory = workspace / "tuning" / key
    hypermodel = LstmHyperModel(space, training)
    common: dict[str, Any] = {
        "directory": str(directory),
        "project_name": config.algorithm,
        "overwrite": False,
    }
    project = directory / config.algorithm
    for folder in (project, *project.glob("trial_*")):  # a kill's half-written state
        remove_temporary_files(folder)
    _check_state_files(project)
    if config.algorithm == "random":
        oracle: kt.Oracle = _RandomSearchOracle(OBJECTIVE, config.max_trials, seed=training.seed)
        tuner: kt.Tuner = _Tuner(oracle=oracle, hypermodel=hypermodel, **common)
    else:
        oracle = _HyperbandOracle(
            OBJECTIVE, max_epochs=config.epochs, factor=config.hyperband_factor,
            seed=training.seed,
        )  # fmt: skip
        tuner = _Hyperband(oracle=oracle, hypermodel=hypermodel, **common)
    finished = _finished(tuner)
    log.info("%s search in %s: %d trials already finished", config.algorithm, directory, finished)
    keras.utils.set_random_seed(training.seed)
    tuner.search(
        ids[fit_rows],
        labels[fit_rows],
        validation_data=(ids[val_rows], labels[val_rows]),
        epochs=config.epochs,
        batch_size=training.batch_size,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor=OBJECTIVE, mode="max", patience=config.early_stopping_patience
            )
        ],
        verbose=0,
    )
    trials = trial_table(tuner)
    if not trials or trials[0]["val_accuracy"] is None:
        raise PipelineError(f"no trial of the search in {directory} finished")
    tokeniser, model = configs_of(tuner.get_best_hyperparameters(1)[0], space)
    best = NamedConfig(
        name=config.name,
        tokeniser=tokeniser,
        model=model,
        training=training,
        provenance={
            "tuning_directory": str(directory),
            "algorithm": config.algorithm,
            "best_trial": trials[0]["trial"],
            "val_accuracy": trials[0]["val_accuracy"],
            "trials": len(trials),
            "tokenised_sha256": tokenised.sha256,
            "created_at": datetime.now(UTC).isoformat(),
        },
    )
    path = save_named_config(workspace, best)
    seconds = time.perf_counter() - started
    log.info("best of %d trials: val_accuracy %.4f, saved as %s", len(trials),
             trials[0]["val_accuracy"], path)  # fmt: skip
    return TuningResult(
        algorithm=config.algorithm,
        directory=directory,
        trials=trials,
        best=best,
        named_config_path=path,
        train_rows=len(fit_rows),
        validation_rows=len(val_rows),
        seconds=round(seconds, 1),
    )


def trial_table(tuner: Any) -> list[dict[str, Any]]:
    """One row per trial, best validation accuracy first (unfinished trials last)."""
    rows = []
    for trial in tuner.oracle.trials.values():
        values = {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in trial.hyperparameters.values.items()
            if "/" not in k  # Keras Tuner's own bookkeeping (tuner/epochs, ...)
        }
        rows.append(
            {
                "trial": trial.trial_id,
                "val_accuracy": None if trial.score is None else round(float(trial.score), 4),
                "status": str(trial.status),
                "epochs": trial.hyperparameters.values.get("tuner/epochs"),
                **values,
            }
        )
    return sorted(rows, key=lambda r: (r["val_accuracy"] is None, -(r["val_accuracy"] or 0)))


def _finished(tuner: Any) -> int:
    return sum(1 for t in tuner.oracle.trials.values() if t.score is not None)


class LstmHyperModel(kt.HyperModel):
    """Builds and fits one trial's model on the trial's cut of the rows."""

    def __init__(self, space: SearchSpace, training: TrainConfig) -> None:
        super().__init__(name="lstm_family")
        self.space = space
        self.training = training

    def build(self, hp: Any) -> keras.Model:
        tokeniser, model = configs_of(hp, self.space)
        # Every trial's layers start from the same seeds: trials differ by their config alone.
        built = build_model(
            model, vocab_size=tokeniser.vocab_size, maxlen=tokeniser.maxlen,
            seed=self.training.seed,
        )  # fmt: skip
        return compile_model(built, self.training)

    def fit(self, hp: Any, model: keras.Model, x: Any, y: Any, **kwargs: Any) -> Any:
        tokeniser, _ = configs_of(hp, self.space)
        x_val, y_val = kwargs.pop("validation_data")
        size, length = tokeniser.vocab_size, tokeniser.maxlen
        return model.fit(
            cut(x, size, length), y, validation_data=(cut(x_val, size, length), y_val), **kwargs
        )


def _check_state_files(project: Path) -> None:
    """Refuse a search folder whose state files (those Keras Tuner reloads) do not parse."""
    names = ("oracle.json", "tuner*.json", "trial_*/trial.json")
    for path in sorted(p for name in names for p in project.glob(name)):
        try:
            json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise PipelineError(
                f"the search state file {path} is damaged ({error}): the search cannot "
                f"continue; delete the folder {project} to start it afresh"
            ) from error


# Keras Tuner writes its state files in place, so a search killed during a write could
# not be continued: these classes write the same state through a temporary file.
class _AtomicOracle(kt.Oracle):
    def save(self) -> None:
        atomic_write_json(Path(self._get_oracle_fname()), self.get_state())

    def _save_trial(self, trial: Trial) -> None:
        atomic_write_json(Path(self._get_trial_dir(trial.trial_id)) / "trial.json",
                          trial.get_state())  # fmt: skip

    def reload(self) -> None:
        super().reload()
        # A trial's file is written before the oracle's: a kill between the two leaves a
        # started trial that the oracle never recorded, which would never run again and
        # would still take one of max_trials. It is retried like the ones it recorded.
        for trial_id, trial in self.trials.items():
            if trial.status == TrialStatus.RUNNING and trial_id not in self.start_order:
                log.info("trial %s was started but never recorded: running it again", trial_id)
                self._record_values(trial)
                self.start_order.append(trial_id)
                self._retry_queue.append(trial_id)


class _RandomSearchOracle(_AtomicOracle, kt.oracles.RandomSearchOracle):
    pass


class _HyperbandOracle(_AtomicOracle, kt.oracles.HyperbandOracle):
    pass


class _Tuner(kt.Tuner):
    def save(self) -> None:
        if not self._is_worker():
            self.oracle.save()
        atomic_write_json(Path(self._get_tuner_fname()), self.get_state())


class _Hyperband(_Tuner, kt.Hyperband):
    def __init__(self, oracle: kt.Oracle, hypermodel: kt.HyperModel, **kwargs: Any) -> None:
        # kt.Hyperband.__init__ only builds a HyperbandOracle; this one is given instead.
        kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)
