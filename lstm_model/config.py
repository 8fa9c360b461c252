"""The base of every configuration model, and the workspace every artifact goes under.

Each sub-package owns the configuration of what it does (``data.config``,
``model.config``, ...); the models are frozen pydantic models so that Prefect renders them
as forms and a configuration can be hashed into artifact cache keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

WORKSPACE_ENV = "LSTM_PIPELINE_HOME"


class FrozenConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def fingerprint(self) -> str:
        """Stable sha256 of the configuration, for cache keys and manifests."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def default_workspace() -> Path:
    """Root folder of all artifacts: ``$LSTM_PIPELINE_HOME`` or ``./artifacts``."""
    return Path(os.environ.get(WORKSPACE_ENV) or "artifacts")
