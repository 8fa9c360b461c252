"""Export formats and their parity check."""

from __future__ import annotations

from pydantic import Field

from lstm_model.config import FrozenConfig


class ExportConfig(FrozenConfig):
    """Exported formats and their parity check."""

    model_name: str = Field(
        "imdb_sentiment",
        pattern=r"^[a-z0-9_]+$",
        description="Name in the TensorFlow Serving layout <model_name>/<version>/.",
    )
    parity_tolerance: float = Field(
        1e-4, gt=0.0, description="Largest |p_export - p_keras| allowed on the test set."
    )
    tflite_batch_size: int = Field(
        64, ge=1, le=4096, description="Static batch size of the TFLite model."
    )
