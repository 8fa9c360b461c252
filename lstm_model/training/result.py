"""What a fit leaves behind, and where: free of Keras, so that the flow and the release
code can name a fit's outcome without importing the framework (20 s on a cold start)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import sha256_text
from lstm_model.data.dataset import TokenisedResult
from lstm_model.model.config import ModelConfig
from lstm_model.training.config import TrainConfig

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"


class DomainWeight(BaseModel):
    """The weight one domain's rows had in a fit, and how it was decided."""

    model_config = ConfigDict(frozen=True)

    domain: str
    weight: float
    chosen_by: Literal["fixed", "validation", "no validation rows"]
    fit_rows: int
    validation_rows: int
    tried: dict[str, dict[str, float]] = {}
    """Candidate weight -> its validation log loss and accuracy on the domain's rows, and
    the aclImdb validation accuracy beside it."""

    def describe(self) -> str:
        """One line for logs and reports."""
        return (
            f"{self.domain}: weight {self.weight:g} ({self.chosen_by}; "
            f"{self.fit_rows} fit rows, {self.validation_rows} validation rows)"
        )


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
    domain_weights: list[DomainWeight] = []


def run_folder(
    workspace: Path, tokenised: TokenisedResult, model: ModelConfig, train: TrainConfig
) -> Path:
    """Where a fit of this data and config runs; re-running it there resumes it."""
    key = sha256_text("train", tokenised.sha256, model.fingerprint(), train.fingerprint())
    return workspace / "runs" / key[:16]


def load_history(run_dir: Path) -> dict[str, list[float]]:
    """The per-epoch metrics a fit saved."""
    return json.loads((run_dir / HISTORY_FILE).read_text())
