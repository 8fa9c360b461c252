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
    tflite_unroll_max_steps: int = Field(
        1000,
        ge=0,
        le=10_000,
        description="The TFLite model's LSTM is unrolled (it scores faster) when it reads "
        "at most this many steps; longer, it stays a loop (unrolling converts slower).",
    )
    mobile: bool = Field(
        True,
        description="Also write export/mobile.tflite for phones and edge devices: int8 "
        "weights, and the metadata MediaPipe Tasks' TextClassifier reads (tokenizer, "
        "vocabulary, labels), checked by accuracy on the test split.",
    )
    mobile_accuracy_tolerance: float = Field(
        0.002,
        ge=0.0,
        le=1.0,
        description="Largest |accuracy of mobile.tflite - accuracy of the Keras model| "
        "allowed on the test split (0.002 = 0.2 points).",
    )


class RetentionConfig(FrozenConfig):
    """What retention (``lstm-pipeline gc``) keeps whole; it frees the model files of the
    other versions and the working files of finished runs, never their records."""

    keep_accepted: int = Field(
        3,
        ge=0,
        le=10_000,
        description="Newest versions that passed the gate (accepted or retired) kept whole, "
        "beside the champion.",
    )
    rollback_depth: int = Field(
        2,
        ge=0,
        le=1_000,
        description="Previous champions kept whole for 'models rollback', newest first.",
    )
    candidate_hours: float = Field(
        24.0,
        ge=1.0,
        description="Hours a version stays whole while still a candidate (a retrain between "
        "registering it and its gate).",
    )
    run_days: float = Field(
        7.0,
        ge=1.0,
        description="Days the working files of a run whose model was never registered (an "
        "interrupted or failed fit) are kept, from their last change.",
    )
