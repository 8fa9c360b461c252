"""Behavioural checks of any registered version (``lstm-pipeline models check``)."""

from __future__ import annotations

import logging
from pathlib import Path

from lstm_model.evaluation.behaviour import BehaviourReport, check_behaviour
from lstm_model.release import layout
from lstm_model.release.promotion import _keras_predictor
from lstm_model.release.registry import Registry, RegistryError

log = logging.getLogger(__name__)


def check_version(registry_root: Path, version: int | None = None) -> BehaviourReport:
    """Run the behavioural checks on a version's Keras model (None: the champion), after
    checking its files against its manifest."""
    registry = Registry(registry_root)
    if version is None:
        version = registry.champion()
        if version is None:
            raise RegistryError(f"no champion in {registry_root}: name a version to check")
    folder = registry.load_version(version)
    predict = _keras_predictor(folder / layout.MODEL, folder / layout.TOKENISER_DIR)
    log.info("behavioural checks of model version %d", version)
    return check_behaviour(predict).model_copy(update={"version": version})
