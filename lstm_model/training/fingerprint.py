"""The fingerprint of a model build: everything a trained model is a function of.

Two builds with the same fingerprint train the same model (up to the seed, which is part
of the training config), so a retrain whose fingerprint the registry already holds has
nothing new to learn. The parts are kept beside the hash, so a manifest says which of them
changed between two versions.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import sha256_text
from lstm_model.data.config import TokeniserConfig
from lstm_model.model.config import ModelConfig
from lstm_model.training.config import TrainConfig

PACKAGE = "lstm-pipeline"
# The packages whose code decides what a fit produces: reading and encoding the data,
# the architecture, and the fit itself.
TRAINING_CODE = ("data", "model", "training")


class Fingerprint(BaseModel):
    """What a model is built from, part by part, and one sha256 over all of them."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    dataset: str
    tokeniser: str
    model: str
    training: str
    code: str


def training_code_sha256(root: Path | None = None) -> str:
    """sha256 over the package version and the source of the code that trains a model
    (under ``root``, the ``lstm_model`` package folder; default: this installation's)."""
    try:
        package_version = version(PACKAGE)
    except PackageNotFoundError:  # run from a checkout that was never installed
        package_version = "unknown"
    digest = hashlib.sha256(package_version.encode())
    root = root or Path(__file__).resolve().parent.parent
    for package in TRAINING_CODE:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(b"\0" + path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_fingerprint(
    dataset_version: str, tokeniser: TokeniserConfig, model: ModelConfig, training: TrainConfig
) -> Fingerprint:
    """The fingerprint of training ``model`` with ``training`` on ``dataset_version``."""
    parts = {
        "dataset": dataset_version,
        "tokeniser": tokeniser.fingerprint(),
        "model": model.fingerprint(),
        "training": training.fingerprint(),
        "code": training_code_sha256(),
    }
    return Fingerprint(sha256=sha256_text(*(f"{k}={v}" for k, v in parts.items())), **parts)
