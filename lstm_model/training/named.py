"""Configurations saved by name, and what a search returns: free of Keras and Keras Tuner,
so that retraining can load a named configuration without importing either."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import atomic_write_json
from lstm_model.data.config import TokeniserConfig
from lstm_model.errors import PipelineError
from lstm_model.model.config import ModelConfig
from lstm_model.training.config import TrainConfig


class NamedConfig(BaseModel):
    """A tokeniser, model and training configuration saved under a name."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    name: str
    tokeniser: TokeniserConfig
    model: ModelConfig
    training: TrainConfig
    provenance: dict[str, Any]


class TuningResult(BaseModel):
    """Every trial (best first) and the configuration saved from the best."""

    model_config = ConfigDict(frozen=True)

    algorithm: str
    directory: Path
    trials: list[dict[str, Any]]
    best: NamedConfig
    named_config_path: Path
    train_rows: int
    validation_rows: int
    seconds: float


def save_named_config(workspace: Path, config: NamedConfig) -> Path:
    """Write ``<workspace>/configs/<name>.json`` atomically."""
    path = workspace / "configs" / f"{config.name}.json"
    atomic_write_json(path, config.model_dump(mode="json"))
    return path


def load_named_config(workspace: Path, name: str) -> NamedConfig:
    """A configuration saved by the tuning flow; the error names what is there instead."""
    path = workspace / "configs" / f"{name}.json"
    if not path.is_file():
        there = sorted(p.stem for p in (workspace / "configs").glob("*.json"))
        raise PipelineError(f"no named config {name!r} in {path.parent}; saved ones: {there}")
    return NamedConfig.model_validate_json(path.read_text())
