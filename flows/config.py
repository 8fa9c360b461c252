"""Settings that belong to the flows, not the library: where scoring runs (Dask).

It also re-exports every configuration model, so a flow or the CLI imports them from one
place.
"""

from __future__ import annotations

from pydantic import Field

from data_contracts.config import ResultsRetentionConfig, ReviewsContractConfig
from lstm_model.config import WORKSPACE_ENV, FrozenConfig, default_workspace
from lstm_model.data.config import (
    CACHE_ENV,
    LOCAL_SOURCE_CANDIDATES,
    OFFICIAL_ARCHIVE_URL,
    SOURCE_ENV,
    LabelledConfig,
    TokeniserConfig,
)
from lstm_model.evaluation.config import BaselineConfig, GateConfig
from lstm_model.model.config import PRESETS, ModelConfig
from lstm_model.release.config import ExportConfig, RetentionConfig
from lstm_model.scoring.config import ScoringConfig
from lstm_model.training.config import SearchSpace, TrainConfig, TuningConfig
from serving.config import API_KEY_ENV, ServingConfig

__all__ = [
    "API_KEY_ENV",
    "CACHE_ENV",
    "LOCAL_SOURCE_CANDIDATES",
    "OFFICIAL_ARCHIVE_URL",
    "PRESETS",
    "SOURCE_ENV",
    "WORKSPACE_ENV",
    "BaselineConfig",
    "ExportConfig",
    "GateConfig",
    "LabelledConfig",
    "ModelConfig",
    "ResultsRetentionConfig",
    "RetentionConfig",
    "ReviewsContractConfig",
    "ScaleOutConfig",
    "ScoringConfig",
    "SearchSpace",
    "ServingConfig",
    "TokeniserConfig",
    "TrainConfig",
    "TuningConfig",
    "default_workspace",
]


class ScaleOutConfig(FrozenConfig):
    """Where scoring runs: in the flow's process (default), or spread over Dask workers."""

    dask_workers: int = Field(
        0,
        ge=0,
        le=256,
        description="0: score file by file in the flow's process (no Dask). N > 0: start a "
        "local Dask cluster of N worker processes and score files, and the chunks of large "
        "files, in parallel.",
    )
    dask_address: str | None = Field(
        None,
        pattern=r"^[a-z]+://\S+$",
        description="Address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786) to use "
        "instead of a local cluster. Its workers need this package and the scoring folders.",
    )

    @property
    def parallel(self) -> bool:
        return self.dask_workers > 0 or self.dask_address is not None
